#!/bin/bash
# Derives the committed host fixture from the shared one (../shared/fixtures/kube-host/node-host-a.tar.zst,
# made by forge-host.sh: a real Debian 12 minbase root from mmdebstrap, the containerd node collection laid
# over it, a kubelet layout and a planted compromise). Run as root:
#   bash trim-host.sh SHARED_HOST_TAR_ZST NODE_TGZ OUT_TAR_ZST
# Two things make it small, both reversible by the tests:
#  1. Only a subset of Debian's packages is kept, each kept whole: the ones the ground truth names
#     (cron, apt, dpkg, e2fsprogs, openssh-server, util-linux, curl) and the base of the system. A
#     dropped package goes entirely: its dpkg status stanza, info/<pkg>.* files, and every file it
#     lists that no kept package also lists. The dpkg database stays consistent with the files.
#  2. Entries identical to the committed containerd node collection (NODE_TGZ, same path, type, bytes,
#     link target, mode, owner, mtime, xattrs) are left out: a test extracts NODE_TGZ first and this
#     fixture over it (internal/testfix), which gives back the whole host. Directories are always kept.
set -euo pipefail
SRC=$(realpath "${1:?shared host tar.zst}"); NODE=$(realpath "${2:?node collection}"); OUT=${3:?output tar.zst}
KEEP="base-files base-passwd bash cron cron-daemon-common curl dash debianutils dpkg e2fsprogs apt openssh-server init-system-helpers usrmerge util-linux"
W=$(mktemp -d); trap 'rm -rf "$W"' EXIT
mkdir -p "$W/root" "$W/node"
zstd -dc "$SRC" | tar --xattrs --xattrs-include='*' --numeric-owner -xp -C "$W/root"
tar --xattrs --xattrs-include='*' --numeric-owner -xpzf "$NODE" -C "$W/node"
N=$W/node; [ -d "$N/var" ] || N=$(find "$W/node" -mindepth 1 -maxdepth 1 -type d | head -1)
python3 - "$W/root" "$N" "$KEEP" <<'PY'
import os, sys, stat, re
root, node, keep = sys.argv[1], sys.argv[2], set(sys.argv[3].split())
info = os.path.join(root, "var/lib/dpkg/info")
def pkgname(f):
    return re.sub(r"\.[^.]+$", "", f).split(":")[0]
kept_paths, drop_paths, drop_pkgs = set(), set(), set()
for f in os.listdir(info):
    if not f.endswith(".list"):
        continue
    p = pkgname(f)
    paths = [l.rstrip("\n") for l in open(os.path.join(info, f), encoding="utf-8", errors="surrogateescape") if l.strip()]
    (kept_paths if p in keep else drop_paths).update(paths)
    if p not in keep:
        drop_pkgs.add(p)
missing = keep - {pkgname(f) for f in os.listdir(info) if f.endswith(".list")}
if missing:
    sys.exit("kept packages not installed: %s" % sorted(missing))
def lexists(p):
    return os.path.lexists(p)
# dpkg lists some files under their pre-merged-usr names (/bin/x for /usr/bin/x): resolve through
# the root's own links to find the real entry, never outside the root.
def real(p):
    parts, cur = p.strip("/").split("/"), ""
    for i, c in enumerate(parts):
        nxt = cur + "/" + c
        full = root + nxt
        if i < len(parts) - 1 and os.path.islink(full):
            t = os.readlink(full)
            cur = ("/" + t.strip("/")) if t.startswith("/") else os.path.normpath(cur + "/" + t)
            if cur == ".":
                cur = ""
            continue
        cur = nxt
    return cur
keep_real = {real(p) for p in kept_paths}
# directory times as forged: restored after the removals below
dir_times = {}
for dp, dns, fns in os.walk(root):
    st = os.lstat(dp)
    dir_times[dp] = (st.st_atime_ns, st.st_mtime_ns)
removed = 0
for p in sorted(drop_paths, key=len, reverse=True):
    r = real(p)
    if r in keep_real:
        continue
    full = root + r
    if lexists(full) and (os.path.islink(full) or not os.path.isdir(full)):
        os.unlink(full); removed += 1
for f in os.listdir(info):
    if pkgname(f) in drop_pkgs and not f.startswith("format"):
        os.unlink(os.path.join(info, f))
for st in ("status", "status-old"):
    sp = os.path.join(root, "var/lib/dpkg", st)
    if not os.path.exists(sp):
        continue
    t = os.lstat(sp)
    stanzas = open(sp, encoding="utf-8").read().split("\n\n")
    out = [s for s in stanzas if s.strip() and re.search(r"^Package: (\S+)", s, re.M).group(1) in keep]
    open(sp, "w", encoding="utf-8").write("\n\n".join(out) + "\n")
    os.utime(sp, ns=(t.st_atime_ns, t.st_mtime_ns))
# leave out what the node collection gives back identically
def same(a, b):
    sa, sb = os.lstat(a), os.lstat(b)
    if (sa.st_mode, sa.st_uid, sa.st_gid, sa.st_mtime_ns) != (sb.st_mode, sb.st_uid, sb.st_gid, sb.st_mtime_ns):
        return False
    if stat.S_ISDIR(sa.st_mode):
        return False
    xa = {k: os.getxattr(a, k, follow_symlinks=False) for k in os.listxattr(a, follow_symlinks=False)}
    xb = {k: os.getxattr(b, k, follow_symlinks=False) for k in os.listxattr(b, follow_symlinks=False)}
    if xa != xb:
        return False
    if stat.S_ISLNK(sa.st_mode):
        return os.readlink(a) == os.readlink(b)
    if stat.S_ISREG(sa.st_mode):
        if sa.st_size != sb.st_size:
            return False
        with open(a, "rb") as fa, open(b, "rb") as fb:
            return fa.read() == fb.read()
    if stat.S_ISCHR(sa.st_mode) or stat.S_ISBLK(sa.st_mode):
        return sa.st_rdev == sb.st_rdev
    return True
same_n = 0
for dp, dns, fns in os.walk(node):
    for fn in fns + [d for d in dns if os.path.islink(os.path.join(dp, d))]:
        nb = os.path.join(dp, fn)
        rel = os.path.relpath(nb, node)
        ra = os.path.join(root, rel)
        if lexists(ra) and same(ra, nb):
            os.unlink(ra); same_n += 1
for d, (a, m) in dir_times.items():
    os.utime(d, ns=(a, m), follow_symlinks=False)
print("dropped %d packages, %d of their files; %d entries identical to the node collection left out" % (len(drop_pkgs), removed, same_n), file=sys.stderr)
PY
tar --xattrs --xattrs-include='*' --numeric-owner --sort=name -C "$W/root" -cf - . | zstd -q -19 -T2 >"$OUT"
ls -la "$OUT"
