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
	parts := []string{[...]string{"O_RDONLY", "O_WRONLY", "O_RDWR", "O_ACCMODE"}[f&3]}
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

// A kernel number's name, or prefix+number for one not in the table.
type numNames struct {
	prefix string
	names  map[uint32]string
}

func (n numNames) name(v uint32) string {
	if s, ok := n.names[v]; ok {
		return s
	}
	return n.prefix + strconv.Itoa(int(v))
}

var (
	families  = numNames{"af", map[uint32]string{1: "unix", 2: "inet", 10: "inet6", 16: "netlink", 17: "packet"}}
	sockTypes = numNames{"type", map[uint32]string{1: "stream", 2: "dgram", 3: "raw", 4: "rdm", 5: "seqpacket", 10: "packet"}}
	protocols = numNames{"proto", map[uint32]string{0: "", 1: "icmp", 6: "tcp", 17: "udp", 58: "icmpv6", 136: "udplite", 255: "raw"}}
	// The kernel's TCP_* states, which CRIU also uses for unix sockets.
	tcpStates = numNames{"STATE", map[uint32]string{1: "ESTABLISHED", 2: "SYN_SENT", 3: "SYN_RECV", 4: "FIN_WAIT1",
		5: "FIN_WAIT2", 6: "TIME_WAIT", 7: "CLOSE", 8: "CLOSE_WAIT", 9: "LAST_ACK", 10: "LISTEN", 11: "CLOSING", 12: "NEW_SYN_RECV"}}
	// Task states (compel/include/uapi/task-state.h).
	taskStates = numNames{"state", map[uint32]string{1: StateAlive, 2: StateDead, 3: StateStopped, 6: StateZombie}}
)

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
	for i, c := range "rwx" {
		if prot&(1<<i) != 0 {
			b[i] = byte(c)
		}
	}
	if flags&1 != 0 { // MAP_SHARED
		b[3] = 's'
	}
	return string(b)
}

// vmaKinds names a VMA by the first status bit it has, in this order.
var vmaKinds = []struct {
	bits uint32
	kind string
}{
	{VMAAreaHeap, "heap"}, {VMAAreaStack, "stack"}, {VMAAreaVdso, "vdso"}, {VMAAreaVvar, "vvar"},
	{VMAAreaVsyscall, "vsyscall"}, {VMAAreaSysvipc, "sysvipc"}, {VMAAreaSocket, "socket"}, {VMAAreaAio, "aio"},
	{VMAAreaMemfd, "memfd"}, {VMAFilePrivate | VMAFileShared, "file"}, {VMAAnonShared, "shmem"}, {VMAAnonPrivate, "anon"},
}

func vmaKind(status uint32) string {
	for _, k := range vmaKinds {
		if status&k.bits != 0 {
			return k.kind
		}
	}
	return ""
}

var fstypeNames = map[uint32]string{
	1: "proc", 2: "sysfs", 3: "devtmpfs", 4: "binfmt_misc", 5: "tmpfs", 6: "devpts", 7: "simfs",
	8: "pstore", 9: "securityfs", 10: "fusectl", 11: "debugfs", 12: "cgroup", 13: "aufs",
	14: "mqueue", 15: "fuse", 16: "auto", 17: "overlay", 18: "autofs", 19: "tracefs", 23: "cgroup2",
}

func seccompName(m int32) string {
	if m >= 0 && m < 3 {
		return [...]string{"disabled", "strict", "filter"}[m]
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
