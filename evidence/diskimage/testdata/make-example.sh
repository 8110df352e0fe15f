#!/bin/bash
# Makes example.raw, the small disk of ExampleOpen: a GPT disk (sgdisk) with two ext4 filesystems made
# by mke2fs -d from directory trees (no mount, no root needed): p1 the node's root, whose /etc/fstab
# mounts p2 (by LABEL) on /var/lib/containerd. Ids and times are fixed (inode change times and generations still differ from run to run).
#   bash make-example.sh [OUT]     (needs gdisk, e2fsprogs)
set -euo pipefail
out=${1:-example.raw}
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT
export E2FSPROGS_FAKE_TIME=1795746600 # 2026-11-27T02:30:00Z
mkdir -p "$W/root/etc" "$W/root/var/lib/containerd" "$W/data/io.containerd.content.v1.content"
printf 'UUID=d15ce001-0000-4000-8000-000000000001\t/\text4\tdefaults\t0 1\nLABEL=ctrdata\t/var/lib/containerd\text4\tdefaults\t0 2\n' >"$W/root/etc/fstab"
echo node-1 >"$W/root/etc/hostname"
echo 'containerd state lives here' >"$W/data/README"
find "$W" -exec touch -h -d @1795746600 {} +
rm -f "$out"
truncate -s 3104K "$out"
sgdisk -U d15ce000-0000-4000-8000-000000000000 -n1:2048:+1M -c1:root -u1:d15ce0a1-0000-4000-8000-000000000001 \
	-n2:0:+1M -c2:data -u2:d15ce0a2-0000-4000-8000-000000000002 "$out" >/dev/null
mk() { # TREE LABEL UUID FILE
	mke2fs -q -F -t ext4 -b 1024 -N 32 -O ^has_journal -L "$2" -U "$3" -E root_owner=0:0,hash_seed=d15ce0ff-0000-4000-8000-000000000000 -d "$1" "$4" 1M >/dev/null
}
mk "$W/root" root d15ce001-0000-4000-8000-000000000001 "$W/p1"
mk "$W/data" ctrdata d15ce002-0000-4000-8000-000000000002 "$W/p2"
dd if="$W/p1" of="$out" bs=1024 seek=1024 conv=notrunc status=none
dd if="$W/p2" of="$out" bs=1024 seek=2048 conv=notrunc status=none
