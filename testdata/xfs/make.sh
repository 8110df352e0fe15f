#!/usr/bin/env bash
# make.sh OUTDIR NODE_TARBALL — make the XFS images the evidence/xfs tests
# read, with the real tools (mkfs.xfs, a kernel loop mount, tar, cp -a,
# xfs_io, setfattr, setfacl), as root. Run by the Go tests (which cache
# OUTDIR by this script's hash); it can be run by hand the same way.
#
# Each image is a node root made from the committed containerd node
# collection (extracted with its whiteouts and trusted.overlay.* xattrs,
# copied in with cp -a), plus /edge, which makes every on-disk format
# appear: shortform/block/leaf/node/btree directories, local/leaf/node/
# btree attribute forks and remote values, POSIX ACLs, local and remote
# symlinks, hard links, sparse, unwritten and fragmented (bmbt) files,
# FIFOs, sockets, devices, odd times and owners. Last, files are deleted
# (written, synced, removed, synced), among them a dropper in container
# 4b324cab's upper dir.
#
# Images (OUTDIR/NAME.img):
#   v5      mkfs.xfs defaults (crc, ftype, finobt, sparse inodes, bigtime,
#           reflink, inobtcount), 4 KiB blocks, 512-byte inodes
#   small   1 KiB blocks, 8 KiB directory blocks, nrext64,
#           rmapbt, 2 AGs, mounted with 256 KiB log buffers
#   legacy  1 KiB inodes, no bigtime (32-bit second timestamps), no finobt, no sparse
#           inodes
#   orphan  a snapshot taken while a file unlinked but still open: on the
#           AGI unlinked list, its blocks still allocated
#   fuzz    a 32 MiB image with a little of everything (fuzz seeds)
set -euo pipefail

out=${1:?usage: make.sh OUTDIR NODE_TARBALL}
node=${2:?usage: make.sh OUTDIR NODE_TARBALL}
[ "$(id -u)" -eq 0 ] || { echo "make.sh: must run as root (loop mounts, trusted.* xattrs, mknod)" >&2; exit 1; }

need=()
command -v mkfs.xfs >/dev/null || need+=(xfsprogs)
command -v setfattr >/dev/null || need+=(attr)
command -v setfacl >/dev/null || need+=(acl)
if [ ${#need[@]} -gt 0 ]; then
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi

mkdir -p "$out"
work=$(mktemp -d)
mnt=$work/mnt
mkdir -p "$mnt"
cleanup() {
	if mountpoint -q "$mnt"; then umount "$mnt" 2>/dev/null || umount -l "$mnt"; fi
	rm -rf "$work"
}
trap cleanup EXIT

# The node, extracted once as an examiner's copy would be.
stage=$work/stage
mkdir -p "$stage"
tar --xattrs --xattrs-include='*' --numeric-owner -xpf "$node" -C "$stage"
upper=var/lib/containerd/io.containerd.snapshotter.v1.overlayfs/snapshots/6/fs

# pattern N SEED: N deterministic bytes
pattern() { (set +o pipefail; yes "deadnode xfs fixture $2" | tr '\n' ' ' | head -c "$1"); }

# xattrs from a getfattr-style dump, many in one process
restore_xattrs() { setfattr -h --restore="$1"; }

populate() {
	local m=$1 e=$1/edge
	cp -a "$stage/node/." "$m/"
	mkdir -p "$e/dirs" "$e/files" "$e/links" "$e/attrs" "$e/special" "$e/times"

	# --- directories of every format
	mkdir "$e/dirs/short"
	for i in 1 2 3; do : >"$e/dirs/short/s$i"; done
	mkdir "$e/dirs/block"
	# deleted at the end, in slots between live entries; reused.txt's
	# inode number is then taken by a new file
	pattern 2000 reused >"$e/dirs/block/reused.txt"
	pattern 3000 gone >"$e/dirs/block/gone.txt"
	for i in $(seq 1 40); do : >"$e/dirs/block/block-entry-$i"; done
	mkdir "$e/dirs/leaf"
	for i in $(seq 1 300); do : >"$e/dirs/leaf/leaf-entry-number-$i"; done
	mkdir "$e/dirs/node"
	for i in $(seq 1 5000); do : >"$e/dirs/node/n$i"; done
	mkdir "$e/dirs/odd"
	: >"$e/dirs/odd/sp ace"
	: >"$e/dirs/odd/ünïcödé"
	: >"$e/dirs/odd/$(printf 'x%.0s' $(seq 1 255))"
	: >"$e/dirs/odd/new
line"
	# btree: many long names, each directory block squeezed between
	# blocks preallocated to a filler, so its block map outgrows the inode
	mkdir "$e/dirs/btree"
	local long
	long=$(printf 'L%.0s' $(seq 1 200))
	for i in $(seq 1 1200); do
		: >"$e/dirs/btree/$long-$i"
		if [ $((i % 8)) -eq 0 ]; then
			xfs_io -f -c "falloc $((i * 1024)) 1k" "$e/dirs/btree/.filler"
		fi
	done

	# --- regular files
	: >"$e/files/empty"
	printf 'tiny\n' >"$e/files/tiny"
	pattern 1048576 big >"$e/files/big"
	truncate -s 100M "$e/files/sparse"
	xfs_io -c "pwrite -S 0x41 50m 64k" -c "pwrite -S 0x42 99m 4k" "$e/files/sparse" >/dev/null
	xfs_io -f -c "falloc 0 1m" -c "pwrite -S 0x11 4096 4096" "$e/files/unwritten" >/dev/null
	# fragmented: one written block every other block, 6000 extents, so the
	# block map is a btree of more than one level
	local cmds=()
	for i in $(seq 0 5999); do cmds+=(-c "pwrite -S $((i % 251)) $((i * 8192)) 4096"); done
	xfs_io -f "${cmds[@]}" "$e/files/fragmented" >/dev/null
	chmod 4755 "$e/files/tiny"
	cp "$e/files/big" "$e/files/setgid" && chmod 2750 "$e/files/setgid"
	chown 4000000000:3000000000 "$e/files/big"

	# --- links
	ln -s tiny "$e/links/short"
	ln -s "$(printf 'remote/%.0s' $(seq 1 140))end" "$e/links/long"
	ln -s "/$(printf 'a%.0s' $(seq 1 1022))" "$e/links/max"
	ln "$e/files/tiny" "$e/links/hard"
	ln "$e/files/tiny" "$e/dirs/short/hard2"

	# --- special files
	mkfifo "$e/special/fifo"
	perl -MSocket -e 'socket(my $s, PF_UNIX, SOCK_STREAM, 0) or die; bind($s, pack_sockaddr_un($ARGV[0])) or die' "$e/special/socket"
	mknod "$e/special/null" c 1 3
	mknod "$e/special/loop" b 7 0
	mknod "$e/special/maxdev" c 511 262143
	mknod "$e/special/whiteout" c 0 0
	chmod 1777 "$e/special"

	# --- extended attributes
	: >"$e/attrs/local"
	setfattr -n user.small -v hi "$e/attrs/local"
	setfattr -n trusted.overlay.opaque -v y "$e/attrs/local"
	setfattr -n security.test -v 0x00ff00 "$e/attrs/local"
	setfattr -h -n trusted.link -v on-a-symlink "$e/links/short"
	: >"$e/attrs/leaf"
	{
		echo "# file: $e/attrs/leaf"
		for i in $(seq 1 40); do echo "user.leaf$i=\"$(pattern 60 "leaf$i")\""; done
	} >"$work/leaf.dump"
	restore_xattrs "$work/leaf.dump"
	: >"$e/attrs/node"
	{
		echo "# file: $e/attrs/node"
		for i in $(seq 1 600); do echo "user.n$i=\"$(pattern 40 "node$i")\""; done
	} >"$work/node.dump"
	restore_xattrs "$work/node.dump"
	: >"$e/attrs/remote"
	setfattr -n user.big -v "0s$(pattern 65536 remote | base64 -w0)" "$e/attrs/remote"
	setfattr -n trusted.mid -v "0s$(pattern 5000 mid | base64 -w0)" "$e/attrs/remote"
	setfattr -n user.small -v x "$e/attrs/remote"
	# btree: attribute leaves squeezed between a filler's blocks
	: >"$e/attrs/btree"
	for b in $(seq 0 79); do
		{
			echo "# file: $e/attrs/btree"
			for i in $(seq 1 12); do echo "user.b$b-$i=\"$(pattern 200 "b$b-$i")\""; done
		} >"$work/b.dump"
		restore_xattrs "$work/b.dump"
		xfs_io -f -c "falloc $((b * 8192)) 4k" "$e/attrs/.filler"
	done
	: >"$e/attrs/acl"
	setfacl -m u:1000:rw,g:100:r "$e/attrs/acl"
	mkdir "$e/attrs/acldir"
	setfacl -d -m u:1000:rwx "$e/attrs/acldir"

	# --- times and owners
	: >"$e/times/old"
	touch -h -d '1960-01-01 00:00:00.123456789 UTC' "$e/times/old"
	: >"$e/times/future"
	touch -h -d '2200-06-01 12:00:00.5 UTC' "$e/times/future"
	: >"$e/times/epoch"
	touch -h -d '@0' "$e/times/epoch"
	chown 12345:54321 "$e/times/epoch"
	touch -h -d '1999-12-31 23:59:59.999999999 UTC' "$e/links/short"
}

# Deletions, last so that the log still holds them: a dropper in the
# attacked container's upper dir (a copy of its miner, a busybox), the
# version of its /etc/passwd that sed -i replaced, two files of a block
# directory (one's inode number is taken again at once), and entries of
# the node directory.
delete_files() {
	local m=$1 b=$1/edge/dirs/block
	# a fresh copy, as a download would be (not a reflink of the miner)
	cp --reflink=never "$m/$upper/tmp/.x/miner" "$m/$upper/usr/local/bin/dropper"
	chmod 0755 "$m/$upper/usr/local/bin/dropper"
	sync
	# sed -i writes a new file and renames it over the old one, whose
	# inode is freed: the earlier version of a tampered file
	sed -i '$a # deadnode' "$m/$upper/etc/passwd"
	rm "$b/reused.txt"
	sync
	# a new file takes a free inode number near its directory (usually
	# reused.txt's); its long name fits none of the freed slots
	pattern 100 new >"$b/$(printf 'n%.0s' $(seq 1 40))-takes-a-freed-inode"
	sync
	# nothing is allocated after these: their blocks stay as they were
	rm "$m/$upper/usr/local/bin/dropper" "$b/gone.txt"
	for i in 10 11 12 4000; do rm "$m/edge/dirs/node/n$i"; done
	sync
}

# make_image NAME SIZE MOUNTOPTS MKFSOPTS...
make_image() {
	local name=$1 size=$2 mopts=$3
	shift 3
	local img=$out/$name.img
	rm -f "$img"
	truncate -s "$size" "$img"
	mkfs.xfs -q -f -L "dn-$name" "$@" "$img"
	mount -o "loop,$mopts" "$img" "$mnt"
	populate "$mnt"
	delete_files "$mnt"
	umount "$mnt"
}

make_image v5 1G defaults
# 256 KiB log buffers: log records with extended headers
make_image small 1G logbsize=256k -b size=1024 -n size=8192 -i nrext64=1 -m rmapbt=1,reflink=0 -d agcount=2
make_image legacy 1G defaults -m bigtime=0,finobt=0,inobtcount=0 -i sparse=0,size=1024

# orphan: the dropper runs from an open descriptor after its name is gone,
# and the disk is snapshotted then (frozen, so that all metadata is
# written, and copied), as a cloud snapshot of a running node would be:
# the inode is on the AGI unlinked list with all its blocks.
img=$out/orphan.img
rm -f "$img" "$img.live"
truncate -s 512M "$img.live"
mkfs.xfs -q -f -L dn-orphan "$img.live"
mount -o loop "$img.live" "$mnt"
mkdir -p "$mnt/tmp"
cp "$stage/node/$upper/tmp/.x/miner" "$mnt/tmp/dropper"
pattern 4096 live >"$mnt/tmp/live"
sync
exec 9<"$mnt/tmp/dropper"
rm "$mnt/tmp/dropper"
sync
xfs_freeze -f "$mnt"
cp --sparse=always "$img.live" "$img" || { xfs_freeze -u "$mnt"; exit 1; }
xfs_freeze -u "$mnt"
exec 9<&-
umount "$mnt"
rm -f "$img.live"

# fuzz: small, for the committed fuzz base
img=$out/fuzz.img
rm -f "$img"
truncate -s 32M "$img"
TEST_DIR=1 TEST_DEV=1 QA_CHECK_FS=1 mkfs.xfs -q -f -L dn-fuzz "$img"
mount -o loop "$img" "$mnt"
e=$mnt
mkdir -p "$e/short" "$e/block" "$e/leaf" "$e/node"
: >"$e/short/a"
for i in $(seq 1 40); do : >"$e/block/block-entry-$i"; done
for i in $(seq 1 300); do : >"$e/leaf/leaf-entry-number-$i"; done
for i in $(seq 1 1200); do : >"$e/node/n$i"; done
printf 'tiny\n' >"$e/tiny"
cmds=()
for i in $(seq 0 299); do cmds+=(-c "pwrite -S $((i % 251)) $((i * 8192)) 4096"); done
xfs_io -f "${cmds[@]}" "$e/fragmented" >/dev/null
ln -s tiny "$e/short-link"
ln -s "$(printf 'remote/%.0s' $(seq 1 140))end" "$e/long-link"
mknod "$e/whiteout" c 0 0
setfattr -n trusted.overlay.opaque -v y "$e/short"
: >"$e/attr-leaf"
{
	echo "# file: $e/attr-leaf"
	for i in $(seq 1 40); do echo "user.leaf$i=\"$(pattern 60 "leaf$i")\""; done
} >"$work/leaf.dump"
restore_xattrs "$work/leaf.dump"
: >"$e/attr-node"
{
	echo "# file: $e/attr-node"
	for i in $(seq 1 300); do echo "user.n$i=\"$(pattern 40 "node$i")\""; done
} >"$work/node.dump"
restore_xattrs "$work/node.dump"
setfattr -n user.big -v "0s$(pattern 9000 remote | base64 -w0)" "$e/attr-leaf"
pattern 20000 gone >"$e/block/gone"
sync
rm "$e/block/gone"
sync
umount "$mnt"
echo "made: $(ls "$out")"
