package docker

// On-disk names of a Docker data root, and the labels dockershim and
// cri-dockerd put on the containers they create.
const (
	// Namespace is the runtime namespace Docker containers are listed
	// under: the containerd namespace dockerd runs its tasks in.
	Namespace = "moby"

	defaultRoot   = "var/lib/docker"
	rootlessRoot  = ".local/share/docker" // in a user's home
	daemonConfig  = "etc/docker/daemon.json"
	containersDir = "containers"
	configV2File  = "config.v2.json"
	hostConfig    = "hostconfig.json"

	imageDir         = "image"
	repositoriesFile = "repositories.json"
	imageDBContent   = "imagedb/content/sha256"
	layerDBSha       = "layerdb/sha256"
	layerDBMounts    = "layerdb/mounts"
	mountIDFile      = "mount-id"
	initIDFile       = "init-id"
	parentFile       = "parent"
	diffIDFile       = "diff"
	cacheIDFile      = "cache-id"
	sizeFile         = "size"
	// tarSplitFile is a layer's tar-split metadata in its layerdb
	// directory: the tar headers and padding of the layer as it was
	// pulled and a crc64 of every file, from which the original tar (and
	// so its diff_id) is rebuilt from the unpacked directory.
	tarSplitFile = "tar-split.json.gz"

	driverOverlay2 = "overlay2"
	linkDir        = "l"
	lowerFile      = "lower"
	linkFile       = "link"
	diffDir        = "diff"
	initSuffix     = "-init"

	// mediaTypeImageConfig is the media type of an image id's blob.
	mediaTypeImageConfig = "application/vnd.docker.container.image.v1+json"

	labelPodName       = "io.kubernetes.pod.name"
	labelPodNamespace  = "io.kubernetes.pod.namespace"
	labelPodUID        = "io.kubernetes.pod.uid"
	labelContainerName = "io.kubernetes.container.name"
	labelDockerType    = "io.kubernetes.docker.type"
	labelSandboxID     = "io.kubernetes.sandbox.id"
	dockerTypeSandbox  = "podsandbox"
	annotationPrefix   = "annotation."
)

// Bounds on what is read from the evidence.
const (
	maxConfig    = 1 << 20  // daemon.json
	maxJSON      = 16 << 20 // a config.v2.json, hostconfig.json, image config, repositories.json
	maxSmallFile = 4096     // mount-id, init-id, cache-id, parent, size, diff, link
	maxLowerFile = 64 << 10 // a lower file
	maxLowers    = 512      // entries of a lower file
	maxChain     = 4096     // layers of a parent chain
	maxEntries   = 1 << 20  // containers, images or layers in one directory
)
