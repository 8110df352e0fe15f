package checkpoint

import (
	"sync"
	"time"

	"github.com/deadnode/deadnode/evidence"
)

// Checkpoint is what a container checkpoint holds, decoded. Its fields are
// filled by Open and only read afterwards; its methods (Images, Pagemap,
// Registers, MemfdShmid, RootfsDiffSource, …) decode from the source on
// demand and may be called from several goroutines at once. Close it
// once, when no call is running.
type Checkpoint struct {
	Source      string    `json:"source"`                 // the archive, directory or content blob read
	Format      string    `json:"format"`                 // "podman", "cri-o", "kubelet", "containerd", "criu"
	ImagesDir   string    `json:"images_dir"`             // directory of the CRIU images inside the source
	Container   Container `json:"container"`              // what the engine recorded about the container
	CRIUVersion string    `json:"criu_version,omitempty"` // from dump.log, when present
	// ImageVersion is the CRIU image format version (inventory img_version).
	ImageVersion uint32     `json:"image_version"`
	CRIURunID    string     `json:"criu_run_id,omitempty"`
	Stats        *DumpStats `json:"stats,omitempty"`
	Processes    []Process  `json:"processes"` // in pstree order (parents before children)
	Mounts       []Mount    `json:"mounts,omitempty"`
	// DeletedFiles lists the paths the engine saw deleted from the image
	// (deleted.files).
	DeletedFiles []string `json:"deleted_files,omitempty"`
	Network      *Network `json:"network,omitempty"`
	// RootfsDiff describes the container's changes to its image, stored
	// with the checkpoint (rootfs-diff.tar or containerd's RW layer).
	RootfsDiff *RootfsDiff `json:"rootfs_diff,omitempty"`
	// StaleImages lists per-task images for pids absent from pstree.img
	// (left over in a reused checkpoint directory); they were ignored.
	StaleImages []string `json:"stale_images,omitempty"`
	// Warnings are problems of the evidence that did not stop the decoding
	// (each marshals to one line: "file: message").
	Warnings []evidence.Warning `json:"warnings,omitempty"`

	imgs   *ImageDir // the CRIU images
	top    *ImageDir // the engine files around them
	closer func() error

	mu    sync.Mutex // guards what follows: caches of on-demand reads
	byPID map[uint32]int
	diff  *diffSource
	memfd *memfdIndex
}

// Container is the engine's metadata about the checkpointed container.
type Container struct {
	ID             string    `json:"id,omitempty"`
	Name           string    `json:"name,omitempty"`
	Image          string    `json:"image,omitempty"`
	ImageID        string    `json:"image_id,omitempty"`
	Pod            string    `json:"pod,omitempty"`
	Namespace      string    `json:"namespace,omitempty"`
	Engine         string    `json:"engine,omitempty"`  // podman, cri-o, containerd
	Runtime        string    `json:"runtime,omitempty"` // the OCI runtime (runc, crun) when recorded
	CreatedAt      time.Time `json:"created_at"`
	CheckpointedAt time.Time `json:"checkpointed_at"`
	// CheckpointedAtSource says where CheckpointedAt comes from:
	// "config.dump", "file_name", "image_name" or "mtime".
	CheckpointedAtSource string            `json:"checkpointed_at_source,omitempty"`
	Args                 []string          `json:"args,omitempty"`
	Hostname             string            `json:"hostname,omitempty"`
	Labels               map[string]string `json:"labels,omitempty"`
	Annotations          map[string]string `json:"annotations,omitempty"`
}

// DumpStats are CRIU's statistics of the dump (stats-dump).
type DumpStats struct {
	FreezingTimeUs uint32 `json:"freezing_time_us"`
	FrozenTimeUs   uint32 `json:"frozen_time_us"`
	MemdumpTimeUs  uint32 `json:"memdump_time_us"`
	MemwriteTimeUs uint32 `json:"memwrite_time_us"`
	PagesScanned   uint64 `json:"pages_scanned"`
	PagesWritten   uint64 `json:"pages_written"`
	PagesLazy      uint64 `json:"pages_lazy"`
}

// Network is the engine's record of the container's network (network.status).
type Network struct {
	IPs  []string `json:"ips,omitempty"`
	MACs []string `json:"macs,omitempty"`
	Raw  string   `json:"raw,omitempty"`
}

// RootfsDiff summarises the stored changes to the container's filesystem.
type RootfsDiff struct {
	Member string `json:"member"` // rootfs-diff.tar, or the RW layer digest
	Size   int64  `json:"size"`
	Files  int    `json:"files"`
}

// Task states (compel/include/uapi/task-state.h).
const (
	StateAlive   = "alive"
	StateDead    = "dead"
	StateStopped = "stopped"
	StateZombie  = "zombie"
)

// Where a process's executable comes from.
const (
	OriginContainerDiff = "container_diff" // written by the container (in its diff)
	OriginImage         = "image"          // present in the container image
	OriginUnknown       = "unknown"
	OriginDeleted       = "deleted" // unlinked while running
)

// Process is one task of the pstree.
type Process struct {
	PID     uint32   `json:"pid"`
	PPID    uint32   `json:"ppid"`
	PGID    uint32   `json:"pgid"`
	SID     uint32   `json:"sid"`
	Comm    string   `json:"comm"`
	Exe     string   `json:"exe,omitempty"`
	Cmdline []string `json:"cmdline,omitempty"` // read from the pages when they are available
	Environ []string `json:"environ,omitempty"`
	// ExeOrigin is "container_diff", "image", "deleted" or "unknown".
	ExeOrigin string   `json:"exe_origin"`
	State     string   `json:"state"`
	ExitCode  uint32   `json:"exit_code,omitempty"`
	Threads   []Thread `json:"threads"`
	// Creds are the task's credentials (creds-<id>.img), their JSON
	// fields inline.
	Creds
	Cwd     string   `json:"cwd,omitempty"`
	Root    string   `json:"root,omitempty"`
	Umask   uint32   `json:"umask"`
	FDs     []FD     `json:"fds"`
	Sockets []Socket `json:"sockets"`
	// MM is the memory layout (mm-<id>.img), its JSON fields inline.
	MM
	// PagesID names pages-<id>.img that holds this task's memory.
	PagesID     uint32 `json:"pages_id,omitempty"`
	PageCount   uint64 `json:"page_count"` // pages present in the pages image
	OOMScoreAdj int32  `json:"oom_score_adj"`
	Loginuid    uint32 `json:"loginuid"`
	// Errors are the per-image problems of this task (a missing or
	// damaged image); the rest of the task was still decoded.
	Errors []evidence.Warning `json:"errors,omitempty"`
}

// Creds are a task's credentials and security settings, as
// creds-<id>.img records them.
type Creds struct {
	UID        uint32   `json:"uid"`
	GID        uint32   `json:"gid"`
	EUID       uint32   `json:"euid"`
	EGID       uint32   `json:"egid"`
	Groups     []uint32 `json:"groups,omitempty"`
	Caps       *Caps    `json:"caps,omitempty"`
	NoNewPrivs bool     `json:"no_new_privs,omitempty"`
	Seccomp    string   `json:"seccomp,omitempty"` // disabled, strict, filter
	LSMProfile string   `json:"lsm_profile,omitempty"`
}

// MM is a task's memory layout, as mm-<id>.img records it: its mappings,
// auxiliary vector and the bounds of its arguments, environment, heap and
// stack.
type MM struct {
	VMAs       []VMA    `json:"vmas,omitempty"`
	Auxv       []uint64 `json:"auxv,omitempty"`
	ArgStart   uint64   `json:"arg_start,omitempty"`
	ArgEnd     uint64   `json:"arg_end,omitempty"`
	EnvStart   uint64   `json:"env_start,omitempty"`
	EnvEnd     uint64   `json:"env_end,omitempty"`
	StartBrk   uint64   `json:"start_brk,omitempty"`
	Brk        uint64   `json:"brk,omitempty"`
	StartStack uint64   `json:"start_stack,omitempty"`
}

// Caps are the capability sets, as 64-bit masks.
type Caps struct {
	Inheritable uint64 `json:"inheritable"`
	Permitted   uint64 `json:"permitted"`
	Effective   uint64 `json:"effective"`
	Bounding    uint64 `json:"bounding"`
	Ambient     uint64 `json:"ambient"`
}

// Thread is one thread of a task (core-<tid>.img).
type Thread struct {
	TID         uint32 `json:"tid"`
	Comm        string `json:"comm,omitempty"`
	State       string `json:"state,omitempty"`
	BlockedSigs uint64 `json:"blocked_signals"`
	PendingSigs int    `json:"pending_signals,omitempty"`
	Seccomp     string `json:"seccomp,omitempty"`
	Arch        string `json:"arch,omitempty"`
	IP          uint64 `json:"ip,omitempty"` // instruction pointer
	SP          uint64 `json:"sp,omitempty"` // stack pointer
}

// FD is an open file descriptor of a task.
type FD struct {
	FD    uint32 `json:"fd"`
	Type  string `json:"type"` // reg, pipe, inet, unix, eventfd, eventpoll, signalfd, inotify, fanotify, timerfd, memfd, tty, fifo, …
	ID    uint32 `json:"id"`   // file id in files.img
	Path  string `json:"path,omitempty"`
	Flags string `json:"flags,omitempty"` // O_WRONLY|O_APPEND|…
	// Mode and Size are the file's, when CRIU recorded them.
	Mode    uint32 `json:"mode,omitempty"`
	Size    uint64 `json:"size,omitempty"`
	Pos     uint64 `json:"pos,omitempty"`
	Deleted bool   `json:"deleted,omitempty"` // unlinked while open
	Ghost   bool   `json:"ghost,omitempty"`   // CRIU saved its contents in a ghost image
	PipeID  uint32 `json:"pipe_id,omitempty"`
	Detail  string `json:"detail,omitempty"` // socket summary, inotify watches, …
	Inode   uint32 `json:"inode,omitempty"`
	CloExec bool   `json:"cloexec,omitempty"`
}

// Socket is a socket a task holds.
type Socket struct {
	FD       uint32 `json:"fd"`
	Family   string `json:"family"` // inet, inet6, unix
	Type     string `json:"type"`   // stream, dgram, seqpacket, raw
	Protocol string `json:"protocol,omitempty"`
	State    string `json:"state"`
	Src      string `json:"src,omitempty"` // addr:port, or the unix path ("@name" when abstract)
	Dst      string `json:"dst,omitempty"`
	SrcAddr  string `json:"src_addr,omitempty"`
	SrcPort  uint32 `json:"src_port,omitempty"`
	DstAddr  string `json:"dst_addr,omitempty"`
	DstPort  uint32 `json:"dst_port,omitempty"`
	Backlog  uint32 `json:"backlog,omitempty"`
	Inode    uint32 `json:"inode"`
	Peer     uint32 `json:"peer,omitempty"` // unix peer inode
}

// VMA is one mapping of a task's address space.
type VMA struct {
	Start  uint64 `json:"start"`
	End    uint64 `json:"end"`
	Pgoff  uint64 `json:"pgoff"`
	Prot   uint32 `json:"prot"`
	Flags  uint32 `json:"flags"`
	Status uint32 `json:"status"`
	Perms  string `json:"perms"`          // rwxp
	Kind   string `json:"kind,omitempty"` // heap, stack, vdso, vvar, vsyscall, anon, file, shmem, memfd, socket, sysvipc, aio
	File   string `json:"file,omitempty"`
	FileID uint32 `json:"file_id,omitempty"`
	// Shmid is the VMA's shmid field as CRIU wrote it: the shared memory
	// object of an anonymous shared or SysV mapping (its pages are in
	// pagemap-shmem-<shmid>.img), the file id of a file or memfd mapping
	// (also in FileID). Not in the JSON, which has always had FileID only.
	Shmid uint64 `json:"-"`
}

// Mount is a mount of the container's mount namespace.
type Mount struct {
	ID         uint32 `json:"id"`
	ParentID   uint32 `json:"parent_id"`
	Mountpoint string `json:"mountpoint"`
	Root       string `json:"root"`
	Source     string `json:"source"`
	FSType     string `json:"fstype"`
	Options    string `json:"options,omitempty"`
	External   bool   `json:"external,omitempty"`
	Deleted    bool   `json:"deleted,omitempty"`
}

// Pagemap is a task's pagemap-<pid>.img (or a shared memory object's
// pagemap-shmem-<shmid>.img).
type Pagemap struct {
	PID     uint32         `json:"pid"`
	PagesID uint32         `json:"pages_id"`
	Entries []PagemapEntry `json:"entries"`
	// Image names the image decoded, for messages: the source, then the
	// path inside it.
	Image string `json:"-"`
}

// PagemapEntry is one run of pages. NrPages is normalised across CRIU
// versions (nr_pages since 4.2, compat_nr_pages before). Flags are
// PagePresent/PageLazy/PageParent; an image older than the flags field gets
// PageParent when in_parent is set and PagePresent otherwise. Offset is the
// byte offset of the run in pages-<PagesID>.img (meaningful only when
// PagePresent is set).
type PagemapEntry struct {
	Vaddr   uint64 `json:"vaddr"`
	NrPages uint64 `json:"nr_pages"`
	Flags   uint32 `json:"flags"`
	Offset  int64  `json:"offset"`
}

// Registers are a thread's saved registers (core-<tid>.img). Only the set
// of the thread's architecture is filled: X86 (and X86FP) on x86-64.
type Registers struct {
	TID   uint32
	Arch  string // "x86_64", "aarch64", … as Thread.Arch
	X86   *X86Regs
	X86FP *X86FPRegs
	// PendingSigs counts the thread's pending signals; BlockedSigs is its
	// blocked signal mask.
	PendingSigs int
	BlockedSigs uint64
}

// X86Regs are the general-purpose registers of an x86-64 thread, as the
// kernel's struct user_regs_struct holds them.
type X86Regs struct {
	R15, R14, R13, R12, BP, BX, R11, R10, R9, R8, AX, CX, DX, SI, DI, OrigAX, IP,
	CS, Flags, SP, SS, FSBase, GSBase, DS, ES, FS, GS uint64
}

// X86FPRegs are an x86-64 thread's FPU and SSE state (the FXSAVE area of
// struct user_fpregs_struct): ST holds the x87 registers as 32 words, XMM
// the 16 XMM registers as 64 words.
type X86FPRegs struct {
	CWD, SWD, TWD, FOP uint32
	RIP, RDP           uint64
	MXCSR, MXCSRMask   uint32
	ST, XMM            []uint32
}
