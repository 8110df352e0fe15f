#!/usr/bin/env bash
# The whole test suite, from a fresh machine: installs what the real-tool
# tests need, then gofmt, go vet and every test (as root: the overlay and
# fixture tests extract whiteouts and trusted.* xattrs, mount overlayfs and
# loop devices, and build disk images with the real tools).
set -euo pipefail
cd "$(dirname "$0")/.."

# Debian packages the real-tool tests use: tar, gdb and binutils (cores),
# sleuthkit (mactime reads our bodyfiles), chromium (the HTML report as a
# person sees it), and the disk tools that build and check the disk-image
# fixtures (gdisk, fdisk, e2fsprogs, xfsprogs, dosfstools, lvm2, qemu-utils,
# zstd, python3-vmdkstream, jq), and systemd (systemd-escape, against which
# mount unit names are checked).
pkgs=(tar gdb binutils sleuthkit chromium gdisk fdisk e2fsprogs xfsprogs dosfstools lvm2 qemu-utils zstd python3-vmdkstream jq util-linux attr acl systemd)
need=()
for p in "${pkgs[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || need+=("$p")
done
if [ "${#need[@]}" -gt 0 ]; then
	echo "installing: ${need[*]}"
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}"
fi

go version
unformatted=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))
if [ -n "$unformatted" ]; then
	echo "gofmt would change:" >&2
	echo "$unformatted" >&2
	exit 1
fi
go vet ./...
go test -count=1 -timeout 45m ./...
