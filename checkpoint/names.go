package checkpoint

// On-disk schema names of the formats this package reads, in one place:
// CRIU image magics (criu/include/magic.h), the file names CRIU, Podman,
// CRI-O and the kubelet give their artefacts, and containerd's media types.
// Other packages (memory) reach these images through this package's
// methods, never by name.
//
// A Podman, CRI-O or kubelet checkpoint archive (.tar, .tar.gz, .tar.zst):
//
//	config.dump             the engine's container config (JSON)
//	spec.dump               the OCI runtime spec (JSON)
//	network.status          the container's networks (JSON)
//	deleted.files           paths deleted from the image (JSON list)
//	stats-dump              CRIU's dump statistics (also inside checkpoint/)
//	rootfs-diff.tar         the container's changed files
//	checkpoint/             the CRIU images:
//	    inventory.img           image format version, root namespace ids
//	    pstree.img              the tasks: pid, ppid, pgid, sid, threads
//	    core-<tid>.img          a thread: registers, signals, creds, comm
//	    ids-<pid>.img           a task's namespace and files ids
//	    mm-<pid>.img            a task's memory descriptor and VMAs
//	    pagemap-<pid>.img       a task's runs of pages: which are in
//	    pages-<id>.img              this raw image (PE_PRESENT, in order),
//	    parent/                     in the parent dump (PE_PARENT), or lazy
//	    pagemap-shmem-<shmid>.img   shared memory objects, same scheme
//	    fs-<pid>.img            cwd, root, umask
//	    fdinfo-<files_id>.img   a task's fds -> file ids
//	    files.img               every open file by id (reg, sockets, pipes…)
//	    reg-files.img …         the same, per kind, before CRIU 3
//	    remap-fpath.img         deleted (ghost, linked) files
//	    tty-info.img            ttys
//	    memfd.img               memfd inodes -> shmem ids
//	    mountpoints-<ns>.img    a mount namespace's mounts
//	    dump.log                CRIU's log (its version line)
//
// A raw CRIU dump is the checkpoint/ directory alone. containerd keeps a
// checkpoint as an OCI index in its content store whose manifests name a
// tar of the CRIU images, the OCI spec (a protobuf Any) and the RW layer.

// CRIU image magics. An image starts with one of the two prefix magics
// (IMG_COMMON or IMG_SERVICE) followed by the image's own magic, except for
// inventory.img (its magic stands alone) and raw images (pages, tar dumps).
const (
	magicImgCommon  uint32 = 0x54564319 // IMG_COMMON, "Pskov"
	magicImgService uint32 = 0x55105940 // IMG_SERVICE, "Zlatoust"

	magicInventory   uint32 = 0x58313116 // INVENTORY
	magicPstree      uint32 = 0x50273030 // PSTREE
	magicCore        uint32 = 0x55053847 // CORE
	magicIDs         uint32 = 0x54432030 // IDS
	magicMM          uint32 = 0x57492820 // MM
	magicPagemap     uint32 = 0x56084025 // PAGEMAP
	magicFiles       uint32 = 0x56303138 // FILES
	magicFdinfo      uint32 = 0x56213732 // FDINFO
	magicFs          uint32 = 0x51403912 // FS
	magicMountpoints uint32 = 0x55563928 // MNTS
	magicRemapFpath  uint32 = 0x59133954 // REMAP_FPATH
	magicTtyInfo     uint32 = 0x59453036 // TTY_INFO
	magicStats       uint32 = 0x57093306 // STATS
	magicMemfdInode  uint32 = 0x48453499 // MEMFD_INODE
	// Images of CRIU before 3.x kept each file kind in its own image.
	magicRegFiles uint32 = 0x50363636 // REG_FILES
	magicInetSk   uint32 = 0x56443851 // INETSK
	magicUnixSk   uint32 = 0x54373943 // UNIXSK
	magicPipes    uint32 = 0x56513555 // PIPES
)

// Image file names; the per-task and per-id ones take a number.
const (
	imgInventory       = "inventory.img"
	imgPstree          = "pstree.img"
	imgFiles           = "files.img"
	imgRemapFpath      = "remap-fpath.img"
	imgTtyInfo         = "tty-info.img"
	imgMemfdInode      = "memfd.img"
	imgStatsDump       = "stats-dump"
	imgRegFiles        = "reg-files.img" // before CRIU 3
	imgInetSk          = "inetsk.img"    // before CRIU 3
	imgUnixSk          = "unixsk.img"    // before CRIU 3
	imgPipes           = "pipes.img"     // before CRIU 3
	imgCoreFmt         = "core-%d.img"   // per thread id
	imgIDsFmt          = "ids-%d.img"    // per pid
	imgMMFmt           = "mm-%d.img"     // per pid
	imgFsFmt           = "fs-%d.img"     // per pid
	imgPagemapFmt      = "pagemap-%d.img"
	imgPagemapShmemFmt = "pagemap-shmem-%d.img" // anon shared, memfd and SysV shm pages, per shmid
	imgPagesFmt        = "pages-%d.img"         // per pages id (pagemap head)
	imgPagesPrefix     = "pages-"
	imgFdinfoFmt       = "fdinfo-%d.img"      // per files id
	imgMountpointsFmt  = "mountpoints-%d.img" // per mount namespace id
	fileDumpLog        = "dump.log"
	// parentLink is the symlink (or directory) of an incremental dump that
	// names the images of the previous (pre-)dump.
	parentLink = "parent"
)

// Container engine files around the CRIU images (Podman, CRI-O and the
// kubelet use the same layout, which checkpointctl reads too).
const (
	fileConfigDump    = "config.dump"
	fileSpecDump      = "spec.dump"
	fileNetworkStatus = "network.status"
	fileDeletedFiles  = "deleted.files"
	fileRootfsDiff    = "rootfs-diff.tar"
	dirCheckpoint     = "checkpoint"
	// The kubelet's checkpoint directory; its file names are
	// checkpoint-<pod>_<namespace>-<container>-<RFC3339 time>.tar.
	kubeletCheckpointDir = "var/lib/kubelet/checkpoints"
)

// containerd checkpoint images (an OCI index).
const (
	mediaTypeCriuTar          = "application/vnd.containerd.container.criu.checkpoint.criu.tar"
	mediaTypeCheckpointConfig = "application/vnd.containerd.container.checkpoint.config.v1+proto"
	mediaTypeLayerGzip        = "application/vnd.oci.image.layer.v1.tar+gzip"
	mediaTypeLayerTar         = "application/vnd.oci.image.layer.v1.tar"
	mediaTypeImageManifest    = "application/vnd.oci.image.manifest.v1+json"
	annotationIndexImageName  = "image.name"
	annotationContainerdName  = "io.containerd.image.name"
	// containerd names checkpoint images containerd.io/checkpoint/<id>:<time>.
	containerdCheckpointPrefix  = "containerd.io/checkpoint/"
	containerdCheckpointTimeFmt = "01-02-2006-15:04:05"
	containerdBlobsDir          = "blobs/sha256"
)

// Annotations and labels that name a Kubernetes pod.
const (
	annKubePodName       = "io.kubernetes.pod.name"
	annKubePodNamespace  = "io.kubernetes.pod.namespace"
	annKubeContainerName = "io.kubernetes.container.name"
	annCRIOCreated       = "io.kubernetes.cri-o.Created"
	annCRIOName          = "io.kubernetes.cri-o.Name"
	annCRIOImageName     = "io.kubernetes.cri-o.ImageName"
	annContainerManager  = "io.container.manager"
	annCRIContainerName  = "io.kubernetes.cri.container-name"
	annCRIImageName      = "io.kubernetes.cri.image-name"
	annCRISandboxName    = "io.kubernetes.cri.sandbox-name"
	annCRISandboxNs      = "io.kubernetes.cri.sandbox-namespace"
)

// Pagemap entry flags (criu/include/pagemap.h).
const (
	PageParent  uint32 = 1 << 0 // PE_PARENT: the pages are in the parent (pre-dump) image
	PageLazy    uint32 = 1 << 1 // PE_LAZY: may be restored lazily
	PagePresent uint32 = 1 << 2 // PE_PRESENT: the pages are in this pages image
)

// VMA status bits (criu/include/image.h), used in summaries here and by
// package memory to place pages.
const (
	VMAAreaRegular  uint32 = 1 << 0
	VMAAreaStack    uint32 = 1 << 1
	VMAAreaVsyscall uint32 = 1 << 2
	VMAAreaVdso     uint32 = 1 << 3
	VMAAreaHeap     uint32 = 1 << 5
	VMAFilePrivate  uint32 = 1 << 6
	VMAFileShared   uint32 = 1 << 7
	VMAAnonShared   uint32 = 1 << 8
	VMAAnonPrivate  uint32 = 1 << 9
	VMAAreaSysvipc  uint32 = 1 << 10
	VMAAreaSocket   uint32 = 1 << 11
	VMAAreaVvar     uint32 = 1 << 12
	VMAAreaAio      uint32 = 1 << 13
	VMAAreaMemfd    uint32 = 1 << 14
	VMAUnsupp       uint32 = 1 << 31
)

// Limits on what a hostile image may make us read or allocate.
const (
	maxRecord      = 16 << 20 // bytes of one protobuf record
	maxRecords     = 1 << 20  // records in one image
	maxProcesses   = 1 << 16  // entries of pstree.img
	maxThreads     = 1 << 16  // threads of one task
	maxMetadata    = 16 << 20 // config.dump, spec.dump, …
	maxDumpLogHead = 64 << 10 // bytes of dump.log read for the CRIU version
	maxIndex       = 4 << 20  // an OCI index blob
	maxArgBytes    = 256 << 10
	maxPath        = 4096 // PATH_MAX: no file name the kernel gives is longer
	maxMemfdName   = 249  // MFD_NAME_MAX_LEN: NAME_MAX less "memfd:"
	maxWarnings    = 1000
	pageSize       = 4096
)
