// Package classify judges a file by what it is and where it lies, in the
// same words for every analyzer that looks at files (container drift, the
// host's package drift, volumes, triage): its executable kind from its
// first bytes and mode (ELF, shared library, script, exec bit), the facts of
// an ELF header, and the flags a path earns by its location (hidden,
// volatile, persistence, a runtime's mount point). It reads only what it is
// handed: a header and an io.ReaderAt, with debug/elf's panics on hostile
// files contained.
package classify

import (
	"bytes"
	"debug/elf"
	"io"
	"io/fs"
	"path"
	"strings"
)

// MaxHeader is how much of a file is read to recognise its kind.
const MaxHeader = 4096

// Exec kinds.
const (
	ExecELF     = "elf"
	ExecScript  = "script"
	ExecBit     = "exec_bit"
	ExecLibrary = "shared_library"
)

// Flags of a file.
const (
	FlagHidden      = "hidden"
	FlagVolatile    = "volatile_location"
	FlagPersistence = "persistence_location"
	FlagBenign      = "benign_runtime"
	FlagSetuid      = "setuid"
	FlagSetgid      = "setgid"
	FlagCapability  = "file_capability"
	FlagWorldWrite  = "world_writable"
)

// ELFInfo describes an ELF file.
type ELFInfo struct {
	Machine   string `json:"machine"` // e.g. EM_X86_64
	Type      string `json:"type"`    // exec, dyn, rel, core
	Static    bool   `json:"static"`  // no program interpreter
	SharedLib bool   `json:"shared_lib"`
	Interp    string `json:"interp,omitempty"`
}

// Exec is what a file's first bytes and mode say it is.
type Exec struct {
	Kind        string   // ExecELF, ExecLibrary, ExecScript, ExecBit, or "" when not executable
	ELF         *ELFInfo // for ELF files
	Interpreter string   // a script's #! line
}

// File recognises an executable from hdr (its first bytes, up to
// MaxHeader), r (the whole file, for the ELF program headers) and mode.
func File(hdr []byte, r io.ReaderAt, mode fs.FileMode) Exec {
	var e Exec
	switch {
	case bytes.HasPrefix(hdr, []byte(elf.ELFMAG)):
		e.Kind = ExecELF
		e.ELF = ELF(r)
		if e.ELF != nil && e.ELF.SharedLib {
			e.Kind = ExecLibrary
		}
	case bytes.HasPrefix(hdr, []byte("#!")):
		e.Kind = ExecScript
		line := hdr[2:]
		if i := bytes.IndexByte(line, '\n'); i >= 0 {
			line = line[:i]
		}
		e.Interpreter = strings.TrimSpace(string(line))
	case mode.Perm()&0o111 != 0:
		e.Kind = ExecBit
	}
	return e
}

// ELF reads the ELF header and program headers (debug/elf, panics of a
// hostile file contained); nil when r is not a readable ELF file.
func ELF(r io.ReaderAt) (info *ELFInfo) {
	defer func() {
		if recover() != nil {
			info = nil
		}
	}()
	ef, err := elf.NewFile(r)
	if err != nil {
		return nil
	}
	defer ef.Close()
	info = &ELFInfo{Machine: ef.Machine.String(), Static: true}
	switch ef.Type {
	case elf.ET_EXEC:
		info.Type = "exec"
	case elf.ET_DYN:
		info.Type = "dyn"
	case elf.ET_REL:
		info.Type = "rel"
	case elf.ET_CORE:
		info.Type = "core"
	default:
		info.Type = ef.Type.String()
	}
	hasDynamic := false
	for _, p := range ef.Progs {
		switch p.Type {
		case elf.PT_INTERP:
			info.Static = false
			b := make([]byte, min(p.Filesz, 4096))
			if n, _ := p.ReadAt(b, 0); n > 0 {
				info.Interp = strings.TrimRight(string(b[:n]), "\x00")
			}
		case elf.PT_DYNAMIC:
			hasDynamic = true
		}
	}
	// A shared object: position independent, no interpreter, dynamic
	// section, and not flagged as a PIE executable.
	if ef.Type == elf.ET_DYN && info.Static && hasDynamic {
		pie := false
		if v, err := ef.DynValue(elf.DT_FLAGS_1); err == nil {
			for _, x := range v {
				pie = pie || x&uint64(elf.DF_1_PIE) != 0
			}
		}
		info.SharedLib = !pie
		info.Static = false
	}
	return info
}

// benignRuntime are the 0-byte mount points runc and the kubelet create in
// every container's upper layer.
var benignRuntime = map[string]bool{
	"/etc/hosts":           true,
	"/etc/hostname":        true,
	"/etc/resolv.conf":     true,
	"/etc/mtab":            true,
	"/dev/termination-log": true,
	"/run/.containerenv":   true,
	"/.dockerenv":          true,
}

// RuntimeMountPoint reports whether p (a container path) is one of the
// files runc and the kubelet create in every container as a mount point
// (they are 0 bytes in the upper layer).
func RuntimeMountPoint(p string) bool { return benignRuntime[p] }

var persistencePrefixes = []string{
	"/etc/cron", "/var/spool/cron/", "/etc/anacrontab", "/etc/periodic/",
	"/etc/systemd/", "/lib/systemd/system/", "/usr/lib/systemd/system/", "/etc/init.d/", "/etc/rc.local", "/etc/rc.d/",
	"/etc/profile", "/etc/bash.bashrc", "/etc/bashrc", "/etc/environment",
	"/etc/ld.so.preload", "/etc/ld.so.conf",
	"/etc/passwd", "/etc/shadow", "/etc/group", "/etc/gshadow", "/etc/sudoers",
	"/etc/ssh/sshd_config", "/etc/pam.d/", "/etc/security/", "/etc/xdg/autostart/", "/etc/update-motd.d/",
}

var persistenceNames = map[string]bool{
	".bashrc": true, ".bash_profile": true, ".bash_logout": true, ".bash_login": true, ".profile": true,
	".zshrc": true, ".zprofile": true, ".cshrc": true, ".tcshrc": true, "authorized_keys": true, "authorized_keys2": true,
	"rc.local": true,
}

// PathFlags are the flags a path earns by where it is: FlagHidden (a
// component starts with a dot), FlagVolatile (under /tmp, /var/tmp,
// /dev/shm, /run) and FlagPersistence (a file the system runs or trusts at
// boot, login or schedule).
func PathFlags(p string) []string {
	var out []string
	for _, c := range strings.Split(strings.TrimPrefix(p, "/"), "/") {
		if strings.HasPrefix(c, ".") && c != "." && c != ".." {
			out = append(out, FlagHidden)
			break
		}
	}
	if Volatile(p) {
		out = append(out, FlagVolatile)
	}
	pers := persistenceNames[path.Base(p)]
	for _, pre := range persistencePrefixes {
		if p == pre || strings.HasPrefix(p, pre) {
			pers = true
			break
		}
	}
	if pers {
		out = append(out, FlagPersistence)
	}
	return out
}

// Volatile reports whether p lies in a directory that is cleared at boot
// or writable by anyone (/tmp, /var/tmp, /dev/shm, /run).
func Volatile(p string) bool {
	for _, v := range []string{"/tmp", "/var/tmp", "/dev/shm", "/run"} {
		if p == v || strings.HasPrefix(p, v+"/") {
			return true
		}
	}
	return false
}

// Hidden reports whether a component of p starts with a dot.
func Hidden(p string) bool {
	for _, c := range strings.Split(strings.TrimPrefix(p, "/"), "/") {
		if strings.HasPrefix(c, ".") && c != "." && c != ".." {
			return true
		}
	}
	return false
}
