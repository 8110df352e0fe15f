// Package host reads what an attacker did to a node outside its containers:
// the host's persistence entries and its package drift.
//
// Persistence lists what the host would run on its own — cron and anacron
// jobs and run-parts scripts, systemd units and timers (system and user,
// drop-ins merged, enablement links resolved, a timer joined to the service
// it starts), /etc/ld.so.preload, every home's authorized_keys, shell
// startup files, rc.local and init scripts, boot-time kernel modules and
// modprobe commands, udev rules that run programs, OCI hooks, and the
// programs containerd's and CRI-O's configurations make run — each with
// what it runs, whether it is enabled, which package owns it (and whether
// that package's file was changed), its times, and a judgement. Packages
// checks every file the package database lists — dpkg's status, .list,
// .md5sums, conffiles and diversions, or rpm's rpmdb.sqlite, whose header
// blobs are parsed here — against the evidence (modified,
// conffile_modified, missing, type_changed, mode_changed), and looks for
// executables and setuid files no package owns in /usr, /etc and the
// /bin, /sbin, /lib* directories, with the same exec classification as
// container drift and identical_to (a renamed copy of a package binary).
//
// It reads only through an evidence.Source: nothing is written, every path
// (merged /usr, symlinked units, wants links climbing with "..") is
// resolved inside the evidence's own namespace, and the rpm database is
// copied to a private temp directory before SQLite opens it. Every length
// and count read from a file is bounded (MaxConfigFile, MaxLine,
// MaxDBLine, MaxRPMHeader, MaxOwnedPaths …); a malformed record is a
// warning naming the file and offset, and the rest is still read. Hashing
// runs on a bounded worker pool and StreamPackages emits results as it
// goes, so memory does not grow with the number of files.
//
// It returns typed reports (PersistenceReport, PackageReport), one
// model.Finding per judgement (analyzers "persistence" and "packages"),
// and the host's timestamps for the node's timeline (Events).
package host
