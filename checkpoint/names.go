package checkpoint

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// Names of the kernel constants that appear in CRIU images.

var openFlagNames = []struct {
	bit  uint32
	name string
}{
	{0o100, "O_CREAT"}, {0o200, "O_EXCL"}, {0o400, "O_NOCTTY"}, {0o1000, "O_TRUNC"},
	{0o2000, "O_APPEND"}, {0o4000, "O_NONBLOCK"}, {0o10000, "O_DSYNC"}, {0o20000, "O_ASYNC"},
	{0o40000, "O_DIRECT"}, {0o100000, "O_LARGEFILE"}, {0o200000, "O_DIRECTORY"},
	{0o400000, "O_NOFOLLOW"}, {0o1000000, "O_NOATIME"}, {0o2000000, "O_CLOEXEC"},
	{0o4000000, "__O_SYNC"}, {0o10000000, "O_PATH"}, {0o20000000, "__O_TMPFILE"},
}

// OpenFlags renders open(2) flags as "O_WRONLY|O_APPEND|…".
func OpenFlags(f uint32) string {
	var parts []string
	switch f & 3 {
	case 0:
		parts = append(parts, "O_RDONLY")
	case 1:
		parts = append(parts, "O_WRONLY")
	case 2:
		parts = append(parts, "O_RDWR")
	default:
		parts = append(parts, "O_ACCMODE")
	}
	rest := f &^ 3
	for _, n := range openFlagNames {
		if rest&n.bit != 0 {
			parts = append(parts, n.name)
			rest &^= n.bit
		}
	}
	if rest != 0 {
		parts = append(parts, fmt.Sprintf("0%o", rest))
	}
	return strings.Join(parts, "|")
}

func familyName(f uint32) string {
	switch f {
	case 1:
		return "unix"
	case 2:
		return "inet"
	case 10:
		return "inet6"
	case 16:
		return "netlink"
	case 17:
		return "packet"
	}
	return "af" + strconv.Itoa(int(f))
}

func sockTypeName(t uint32) string {
	switch t {
	case 1:
		return "stream"
	case 2:
		return "dgram"
	case 3:
		return "raw"
	case 4:
		return "rdm"
	case 5:
		return "seqpacket"
	case 10:
		return "packet"
	}
	return "type" + strconv.Itoa(int(t))
}

func protoName(p uint32) string {
	switch p {
	case 0:
		return ""
	case 1:
		return "icmp"
	case 6:
		return "tcp"
	case 17:
		return "udp"
	case 58:
		return "icmpv6"
	case 136:
		return "udplite"
	case 255:
		return "raw"
	}
	return "proto" + strconv.Itoa(int(p))
}

// tcpStateName names the kernel's TCP_* states, which CRIU also uses for
// unix sockets.
func tcpStateName(s uint32) string {
	names := [...]string{"", "ESTABLISHED", "SYN_SENT", "SYN_RECV", "FIN_WAIT1", "FIN_WAIT2",
		"TIME_WAIT", "CLOSE", "CLOSE_WAIT", "LAST_ACK", "LISTEN", "CLOSING", "NEW_SYN_RECV"}
	if s > 0 && int(s) < len(names) {
		return names[s]
	}
	return "STATE" + strconv.Itoa(int(s))
}

// sockAddr turns CRIU's address words (the kernel's big-endian words as
// stored in memory of a little-endian host) into an address.
func sockAddr(family uint32, words []uint32) (netip.Addr, bool) {
	var b [16]byte
	switch {
	case family == 2 && len(words) >= 1:
		binary.LittleEndian.PutUint32(b[:4], words[0])
		return netip.AddrFrom4([4]byte(b[:4])), true
	case family == 10 && len(words) >= 4:
		for i := 0; i < 4; i++ {
			binary.LittleEndian.PutUint32(b[i*4:], words[i])
		}
		return netip.AddrFrom16(b), true
	}
	return netip.Addr{}, false
}

func permString(prot, flags uint32) string {
	b := []byte("---p")
	if prot&1 != 0 {
		b[0] = 'r'
	}
	if prot&2 != 0 {
		b[1] = 'w'
	}
	if prot&4 != 0 {
		b[2] = 'x'
	}
	if flags&1 != 0 { // MAP_SHARED
		b[3] = 's'
	}
	return string(b)
}

func vmaKind(status uint32) string {
	switch {
	case status&VMAAreaHeap != 0:
		return "heap"
	case status&VMAAreaStack != 0:
		return "stack"
	case status&VMAAreaVdso != 0:
		return "vdso"
	case status&VMAAreaVvar != 0:
		return "vvar"
	case status&VMAAreaVsyscall != 0:
		return "vsyscall"
	case status&VMAAreaSysvipc != 0:
		return "sysvipc"
	case status&VMAAreaSocket != 0:
		return "socket"
	case status&VMAAreaAio != 0:
		return "aio"
	case status&VMAAreaMemfd != 0:
		return "memfd"
	case status&(VMAFilePrivate|VMAFileShared) != 0:
		return "file"
	case status&VMAAnonShared != 0:
		return "shmem"
	case status&VMAAnonPrivate != 0:
		return "anon"
	}
	return ""
}

var fstypeNames = map[uint32]string{
	1: "proc", 2: "sysfs", 3: "devtmpfs", 4: "binfmt_misc", 5: "tmpfs", 6: "devpts", 7: "simfs",
	8: "pstore", 9: "securityfs", 10: "fusectl", 11: "debugfs", 12: "cgroup", 13: "aufs",
	14: "mqueue", 15: "fuse", 16: "auto", 17: "overlay", 18: "autofs", 19: "tracefs", 23: "cgroup2",
}

func taskState(s uint32) string {
	switch s {
	case 1:
		return StateAlive
	case 2:
		return StateDead
	case 3:
		return StateStopped
	case 6:
		return StateZombie
	}
	return "state" + strconv.Itoa(int(s))
}

func seccompName(m int32) string {
	switch m {
	case 0:
		return "disabled"
	case 1:
		return "strict"
	case 2:
		return "filter"
	}
	return "mode" + strconv.Itoa(int(m))
}

func caps64(w []uint32) uint64 {
	var v uint64
	for i := 0; i < len(w) && i < 2; i++ {
		v |= uint64(w[i]) << (32 * i)
	}
	return v
}
