#!/usr/bin/env bash
# The whole test suite, from a fresh machine: installs what the real-tool
# tests need, then gofmt, go vet and every test (as root: the overlay and
# fixture tests extract whiteouts and trusted.* xattrs and mount overlayfs).
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
for tool in tar gdb readelf mactime chromium; do
	command -v "$tool" >/dev/null 2>&1 || need+=("$tool")
done
if [ "${#need[@]}" -gt 0 ]; then
	pkgs=()
	for t in "${need[@]}"; do
		case "$t" in
		readelf) pkgs+=(binutils) ;;
		mactime) pkgs+=(sleuthkit) ;;
		*) pkgs+=("$t") ;;
		esac
	done
	echo "installing: ${pkgs[*]}"
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${pkgs[@]}"
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
