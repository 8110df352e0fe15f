#!/usr/bin/env bash
# Makes the small real images committed under testdata/ext4/seeds/ (gzip):
# the seeds of the evidence/ext4 fuzz targets, made by mkfs.ext4/mkfs.ext3,
# a kernel loop mount and debugfs, with one of each structure the reader
# parses (extent tree of depth 1, block maps with an indirect block, htree
# and inline directories, fast and slow symlinks, devices, xattrs in the
# inode and in a block, ACLs, a journal holding transactions, deleted files).
#
#   make-seeds.sh [OUTDIR]   (default: the seeds/ directory beside this script)
#
# Run as root. The fuzz tests read the committed output; rerun this only
# to change the seeds.
set -euo pipefail
out=${1:-"$(cd "$(dirname "$0")" && pwd)/seeds"}
[ "$(id -u)" = 0 ] || { echo "make-seeds.sh: must run as root" >&2; exit 1; }
mkdir -p "$out"
work=$(mktemp -d)
mnt="$work/mnt"
mkdir -p "$mnt"
cleanup() {
	if mountpoint -q "$mnt"; then
		umount "$mnt" || { sleep 1; umount "$mnt"; } || umount -l "$mnt"
	fi
	rm -rf "$work"
}
trap cleanup EXIT

pattern() {
	(set +o pipefail; yes "seed: $1" | head -c "$2")
}

seed() {
	local name=$1 size=$2
	shift 2
	local img="$work/$name.img"
	truncate -s "$size" "$img"
	"$@" -q -F -U 6e8b6e53-1d6b-4a55-9e4f-0e0e4d0e4f10 -E root_owner=0:0,hash_seed=2f1c8a2e-5d3b-4c7a-8e9f-102030405060,lazy_itable_init=0 -L "$name" "$img"
	mount -o loop "$img" "$mnt"
	local d=$mnt
	mkdir -p "$d/dir/sub" "$d/htree" "$d/del"
	(cd "$d/htree" && seq -f 'name-%03g' 1 80 | xargs touch)
	pattern small 50 >"$d/dir/small"
	pattern medium 20000 >"$d/dir/medium"
	for i in $(seq 0 2 24); do
		pattern "frag $i" 1024 | dd of="$d/dir/frag" bs=1024 seek="$i" conv=notrunc status=none
	done
	truncate -s 300K "$d/dir/sparse"
	pattern sparse 100 | dd of="$d/dir/sparse" bs=1K seek=280 conv=notrunc status=none
	ln -s small "$d/dir/fast-link"
	ln -s "$(printf 'x%.0s' $(seq 100))" "$d/dir/slow-link"
	ln "$d/dir/small" "$d/dir/hard"
	mkfifo "$d/dir/fifo"
	mknod "$d/dir/whiteout" c 0 0
	mknod "$d/dir/blk" b 259 70000
	setfattr -n user.a -v 1 "$d/dir/small"
	setfattr -n trusted.overlay.opaque -v y "$d/dir/sub"
	setfattr -n user.big -v "0s$(pattern xattr 400 | base64 -w0)" "$d/dir/medium"
	setfacl -m u:1000:rwx "$d/dir/medium"
	touch -d '2100-01-01 00:00:00.5 UTC' "$d/dir/small"
	pattern deleted 5000 >"$d/del/kernel-rm"
	pattern kept 30 >"$d/del/a"
	pattern debugfs-rm 3000 >"$d/del/dbg-rm"
	pattern kept 30 >"$d/del/z"
	sync
	rm "$d/del/kernel-rm"
	sync
	umount "$mnt"
	debugfs -w -R 'rm /del/dbg-rm' "$img" >/dev/null 2>&1
	gzip -9 -n -c "$img" >"$out/$name.img.gz"
}

seed ext4 3M mkfs.ext4 -b 1024 -I 256 -N 256 -J size=1 -O metadata_csum,64bit,ea_inode
seed ext3 3M mkfs.ext3 -b 1024 -I 128 -N 256 -J size=1
seed inline 3M mkfs.ext4 -b 1024 -I 256 -N 256 -J size=1 -O inline_data,^64bit,^metadata_csum
ls -l "$out"
