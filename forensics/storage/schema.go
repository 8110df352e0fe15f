package storage

// On-disk names of containers-storage, libpod and CRI-O.
const (
	// runtimeName is the runtime's name as the node lists it.
	runtimeName = "containers-storage"

	defaultGraphRoot = "var/lib/containers/storage"
	defaultRunRoot   = "run/containers/storage"
	storageConf      = "etc/containers/storage.conf"
	rootlessStore    = ".local/share/containers/storage"

	driverOverlay    = "overlay"
	containersSuffix = "-containers"
	// tarSplitSuffix names a layer's tar-split metadata:
	// overlay-layers/<layer id>.tar-split.gz (see docker's tarSplitFile).
	tarSplitSuffix    = ".tar-split.gz"
	layersSuffix      = "-layers"
	imagesSuffix      = "-images"
	containersJSON    = "containers.json"
	volatileCtrsJSON  = "volatile-containers.json"
	layersJSON        = "layers.json"
	volatileLayersJSN = "volatile-layers.json"
	mountpointsJSON   = "mountpoints.json"
	imagesJSON        = "images.json"
	manifestKey       = "manifest"
	userdataDir       = "userdata"
	ociConfigFile     = "config.json"
	crioStateFile     = "state.json"
	crioExitsDir      = "run/crio/exits" // conmon's --exit-dir under CRI-O: <id> holds the exit code

	linkDir   = "l"
	lowerFile = "lower"
	linkFile  = "link"
	diffDir   = "diff"

	libpodDir     = "libpod"
	boltStateFile = "bolt_state.db"
	sqliteState   = "db.sql"

	// libpod bolt buckets and keys.
	bktCtr          = "ctr"
	bktAllCtrs      = "all-ctrs"
	bktPod          = "pod"
	bktExitCode     = "exit-code"
	bktRuntimeCfg   = "runtime-config"
	bktExec         = "exec" // exec session id -> container id
	keyConfig       = "config"
	keyState        = "state"
	keyPodContainer = "containers"

	// CRI-O spec annotations.
	annCRIOContainerType = "io.kubernetes.cri-o.ContainerType"
	annCRIOSandboxID     = "io.kubernetes.cri-o.SandboxID"
	annCRIOLogPath       = "io.kubernetes.cri-o.LogPath"
	annCRIOLabels        = "io.kubernetes.cri-o.Labels"
	annCRIOImageName     = "io.kubernetes.cri-o.ImageName"
	annCRIOContainerName = "io.kubernetes.container.name"
	annPodName           = "io.kubernetes.pod.name"
	annPodNamespace      = "io.kubernetes.pod.namespace"
	annPodUID            = "io.kubernetes.pod.uid"
	crioTypeSandbox      = "sandbox"

	labelPodName       = "io.kubernetes.pod.name"
	labelPodNamespace  = "io.kubernetes.pod.namespace"
	labelPodUID        = "io.kubernetes.pod.uid"
	labelContainerName = "io.kubernetes.container.name"
)

// libpod's container states (define.ContainerStatus).
const (
	lpUnknown = iota
	lpConfigured
	lpCreated
	lpRunning
	lpStopped
	lpPaused
	lpExited
	lpRemoving
	lpStopping
)

// Bounds on what is read from the evidence.
const (
	maxConfig    = 1 << 20   // storage.conf
	maxListJSON  = 512 << 20 // containers.json, layers.json, images.json
	maxJSON      = 16 << 20  // a spec, a manifest, a state file
	maxSmallFile = 4096      // link
	maxLowerFile = 64 << 10  // a lower file
	maxLowers    = 512       // entries of a lower file
	maxChain     = 4096      // layers of a parent chain
	maxRecords   = 1 << 20   // records of one list
	maxDBSize    = 8 << 30   // a libpod bolt database
)
