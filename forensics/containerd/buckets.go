package containerd

// The on-disk schema containerd's metadata plugin keeps in
// io.containerd.metadata.v1.bolt/meta.db (schema "v1", db versions 3 and 4):
//
//	v1                                   schema bucket
//	├── version                          varint: 3 (containerd 1.x), 4 (2.x)
//	└── <namespace>
//	    ├── labels/<k> = <v>
//	    ├── containers/<id>
//	    │   ├── createdat, updatedat     time.Time.MarshalBinary
//	    │   ├── image, snapshotter, snapshotKey, sandboxid (2.x)
//	    │   ├── spec                     protobuf Any, value = OCI spec JSON
//	    │   ├── labels/<k> = <v>
//	    │   ├── runtime/{name, options}  options: protobuf Any
//	    │   └── extensions/<name>        protobuf Any (CRI: JSON value)
//	    ├── content/blob/<digest>/{createdat, updatedat, size (varint), labels/}
//	    ├── content/ingests/<ref>/...
//	    ├── images/<name>/{createdat, updatedat, labels/, annotations/,
//	    │                  target/{digest, mediatype, size (varint)}}
//	    ├── snapshots/<snapshotter>/<key>/{name, parent, createdat, updatedat,
//	    │                                   labels/, children/}
//	    └── leases/<id>/{createdat, labels/, content/<digest>,
//	                     snapshots/<snapshotter>/<key>, ingests/<ref>}
//
// and the one each snapshotter keeps in its metadata.db:
//
//	v1
//	├── snapshots/<name>                 name = "<namespace>/<n>/<key>"
//	│   ├── id                           uvarint: the directory snapshots/<id>
//	│   ├── kind                         byte: 1 view, 2 active, 3 committed
//	│   ├── parent                       name of the parent
//	│   ├── createdat, updatedat, inodes (varint), size (varint), labels/
//	└── parents/<parent id uvarint…>     index, not needed here
const (
	bucketV1         = "v1"
	keyVersion       = "version"
	bucketLabels     = "labels"
	bucketContainers = "containers"
	bucketContent    = "content"
	bucketBlob       = "blob"
	bucketImages     = "images"
	bucketSnapshots  = "snapshots"
	bucketLeases     = "leases"
	bucketRuntime    = "runtime"
	bucketExtensions = "extensions"
	bucketTarget     = "target"
	bucketAnnotation = "annotations"
	bucketIngests    = "ingests"

	keyCreatedAt   = "createdat"
	keyUpdatedAt   = "updatedat"
	keyImage       = "image"
	keySnapshotter = "snapshotter"
	keySnapshotKey = "snapshotKey"
	keySandboxID   = "sandboxid"
	keySpec        = "spec"
	keyName        = "name"
	keyOptions     = "options"
	keyDigest      = "digest"
	keyMediaType   = "mediatype"
	keySize        = "size"
	keyParent      = "parent"
	keyID          = "id"
	keyKind        = "kind"
	keyInodes      = "inodes"

	// Paths under the containerd root.
	metaDBPath       = "io.containerd.metadata.v1.bolt/meta.db"
	contentStoreDir  = "io.containerd.content.v1.content"
	contentBlobsDir  = contentStoreDir + "/blobs"
	snapshotterDir   = "io.containerd.snapshotter.v1." // + name
	criStateDir      = "io.containerd.grpc.v1.cri"
	taskV2Dir        = "io.containerd.runtime.v2.task"  // under the state dir: <ns>/<id>, the shim's bundle
	taskV1Dir        = "io.containerd.runtime.v1.linux" // the same for the old v1 shims
	defaultStateDir  = "/run/containerd"
	defaultRuncRoot  = "runc" // under the state dir
	criContainerMeta = "io.cri-containerd.container.metadata"
	criSandboxMeta   = "io.cri-containerd.sandbox.metadata"
	labelCRIKind     = "io.cri-containerd.kind"
	labelPodName     = "io.kubernetes.pod.name"
	labelPodNS       = "io.kubernetes.pod.namespace"
	labelPodUID      = "io.kubernetes.pod.uid"
	labelCtrName     = "io.kubernetes.container.name"
	labelCheckpoint  = "containerd.io/checkpoint"
	// checkpointImagePrefix starts the name of a checkpoint image
	// ("containerd.io/checkpoint/<container id>:<time>").
	checkpointImagePrefix = labelCheckpoint + "/"
)

// Snapshot kinds of the snapshotter database.
const (
	kindView      = 1
	kindActive    = 2
	kindCommitted = 3
)

// Where containerd's root is found on the distributions we know, tried in
// this order after the config file's own root.
var knownRoots = []string{
	"/var/lib/containerd",
	"/var/lib/rancher/k3s/agent/containerd",
	"/var/lib/rancher/rke2/agent/containerd",
	"/var/snap/microk8s/current/var/lib/containerd",
	"/var/lib/k0s/containerd",
	"/var/lib/docker/containerd/daemon",
}

// Config files that may name the root and state directories.
var knownConfigs = []string{
	"/etc/containerd/config.toml",
	"/var/lib/rancher/k3s/agent/etc/containerd/config.toml",
	"/var/lib/rancher/rke2/agent/etc/containerd/config.toml",
	"/var/snap/microk8s/current/args/containerd.toml",
	"/etc/k0s/containerd.toml",
}
