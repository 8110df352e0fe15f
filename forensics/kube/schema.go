package kube

// The on-disk layout of a Kubernetes node, in one place.
//
//	/etc/systemd/system/kubelet.service            the unit (or /usr/lib/systemd/system/…)
//	/etc/systemd/system/kubelet.service.d/*.conf   drop-ins: Environment=, EnvironmentFile=, ExecStart=
//	/etc/default/kubelet, /etc/sysconfig/kubelet   KUBELET_EXTRA_ARGS (when a drop-in names them)
//	/var/lib/kubelet/kubeadm-flags.env             KUBELET_KUBEADM_ARGS (kubeadm)
//	/var/lib/kubelet/config.yaml                   KubeletConfiguration (--config)
//	/etc/kubernetes/kubelet.conf                   kubeconfig (--kubeconfig)
//	/etc/kubernetes/bootstrap-kubelet.conf         bootstrap kubeconfig (--bootstrap-kubeconfig)
//	/etc/kubernetes/manifests/*.yaml               static pods (staticPodPath / --pod-manifest-path)
//	/var/lib/kubelet/pods/<uid>/                   a pod's directory (--root-dir/pods)
//	    volumes/<plugin>/<name>/                   a volume: kubernetes.io~empty-dir, ~projected, ~secret, ~configmap, ~csi …
//	    volume-subpaths/<volume>/<container>/<n>   subPath bind sources
//	    containers/<name>/<8 hex>                  one termination-message file per container start
//	    plugins/<plugin>/…                         volume plugin state
//	    etc-hosts                                  the pod's /etc/hosts
//	/var/log/pods/<ns>_<pod>_<uid>/<container>/<attempt>.log[.<YYYYMMDD-hhmmss>[.gz]]   CRI logs
//	/var/log/containers/<pod>_<ns>_<container>-<id>.log -> the pod log                  links
//	/var/lib/docker/containers/<id>/<id>-json.log[.N[.gz]]                                Docker json-file logs

const (
	defaultRootDir       = "var/lib/kubelet"
	defaultConfigFile    = "var/lib/kubelet/config.yaml"
	defaultStaticPodPath = "etc/kubernetes/manifests"
	defaultPodLogsDir    = "var/log/pods"
	containersLogDir     = "var/log/containers"
	defaultDockerRoot    = "var/lib/docker"
	defaultStorageRoot   = "var/lib/containers/storage"
	kubeletUnit          = "kubelet.service"

	// kubeadm's upgrade backups of the kubelet config
	// (/etc/kubernetes/tmp/kubeadm-kubelet-config<timestamp>/config.yaml).
	kubeadmBackupDir    = "etc/kubernetes/tmp"
	kubeadmBackupPrefix = "kubeadm-kubelet-config"
)

// unitDirs are systemd's system unit directories, highest priority first.
var unitDirs = []string{
	"etc/systemd/system.control",
	"run/systemd/system.control",
	"run/systemd/transient",
	"etc/systemd/system",
	"etc/systemd/system.attached",
	"run/systemd/system",
	"run/systemd/system.attached",
	"usr/local/lib/systemd/system",
	"usr/lib/systemd/system",
	"lib/systemd/system",
}

// envFilesKnown are the distributions' kubelet environment files: read
// when the unit names them, and listed as unreferenced otherwise.
var envFilesKnown = []string{"etc/default/kubelet", "etc/sysconfig/kubelet", "var/lib/kubelet/kubeadm-flags.env"}

// Volume plugin directory names (pkg/volume: the escaped plugin name,
// "kubernetes.io/empty-dir" -> "kubernetes.io~empty-dir").
const (
	PluginEmptyDir    = "kubernetes.io~empty-dir"
	PluginProjected   = "kubernetes.io~projected"
	PluginSecret      = "kubernetes.io~secret"
	PluginConfigMap   = "kubernetes.io~configmap"
	PluginDownwardAPI = "kubernetes.io~downward-api"
	PluginCSI         = "kubernetes.io~csi"
	PluginHostPath    = "kubernetes.io~host-path"
	PluginLocal       = "kubernetes.io~local-volume"
	PluginNFS         = "kubernetes.io~nfs"
)

// Volume kinds, the plugin in our words.
const (
	VolEmptyDir    = "empty_dir"
	VolProjected   = "projected"
	VolSecret      = "secret"
	VolConfigMap   = "configmap"
	VolDownwardAPI = "downward_api"
	VolCSI         = "csi"
	VolHostPath    = "host_path"
	VolLocal       = "local"
	VolNFS         = "nfs"
	VolOther       = "other"
)

var pluginKinds = map[string]string{
	PluginEmptyDir:    VolEmptyDir,
	PluginProjected:   VolProjected,
	PluginSecret:      VolSecret,
	PluginConfigMap:   VolConfigMap,
	PluginDownwardAPI: VolDownwardAPI,
	PluginCSI:         VolCSI,
	PluginHostPath:    VolHostPath,
	PluginLocal:       VolLocal,
	PluginNFS:         VolNFS,
}

// Bounds on what is read from the evidence.
const (
	// MaxConfigBytes bounds a kubelet config, kubeconfig, unit, drop-in,
	// environment file or static pod manifest.
	MaxConfigBytes = 1 << 20
	// MaxDocuments bounds the YAML documents read from one manifest.
	MaxDocuments = 64
	// MaxManifests bounds the files read from the static pod directory.
	MaxManifests = 1024
	// MaxTokenBytes bounds a service-account token file (real ones are
	// about 1 KiB).
	MaxTokenBytes = 64 << 10
	// MaxVolumeScan bounds the entries looked at in one secret/projected
	// volume when looking for tokens, and their depth.
	MaxVolumeScan  = 4096
	MaxVolumeDepth = 8
	// MaxDropIns bounds the drop-ins read for the kubelet unit.
	MaxDropIns = 256
	// MaxArgs bounds the kubelet command line after expansion.
	MaxArgs = 4096
	// MaxLineBytes is the default bound on one log line; the rest of a
	// longer line is skipped and the line is marked truncated.
	MaxLineBytes = 1 << 20
	// MaxPods bounds the pod directories read.
	MaxPods = 100000
	// MaxTerminationMessage is the kubelet's own limit on a termination
	// message (4096 bytes).
	MaxTerminationMessage = 4096
)
