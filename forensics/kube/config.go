package kube

import (
	"context"
	"io/fs"
	"path"
	"sort"
	"strconv"
	"strings"

	"github.com/deadnode/deadnode/evidence"
	"github.com/deadnode/deadnode/forensics/internal/pathutil"
	"github.com/deadnode/deadnode/forensics/model"
)

// Origins of a setting's value.
const (
	OriginConfigFile   = "config_file"    // the KubeletConfiguration file (--config)
	OriginConfigDropIn = "config_drop_in" // a file of --config-dir
	OriginFlag         = "flag"           // the command line systemd runs
	OriginDefault      = "default"        // absent everywhere: the kubelet's v1beta1 default
	OriginFlagDefault  = "flag_default"   // absent, and no --config: the command line's legacy default
	OriginUnset        = "unset"          // absent, and the kubelet has no default
)

// Provenance says where a setting's value came from.
type Provenance struct {
	Origin string `json:"origin"`
	// Source is the file (config file, drop-in) or the flag ("--read-only-port")
	// the value came from, or the default it fell back to.
	Source string `json:"source"`
	// Key is the field in the config file ("authentication.anonymous.enabled").
	Key string `json:"key,omitempty"`
	// DefinedIn is, for a flag, the unit, drop-in or environment file that
	// carries it; Var the variable it was expanded from.
	DefinedIn string `json:"defined_in,omitempty"`
	Var       string `json:"var,omitempty"`
	// Shadowed are values set earlier that a later source overrode (the
	// file's value under a flag).
	Shadowed []Prior `json:"shadowed,omitempty"`
	// Before is the value in an earlier copy of the config file found in
	// the evidence (a backup), when it differs. Nil when the evidence does
	// not tell.
	Before *Prior `json:"before,omitempty"`
}

// Prior is a value a setting had somewhere else.
type Prior struct {
	Value  any        `json:"value"`
	Origin string     `json:"origin"`
	Source string     `json:"source"`
	Key    string     `json:"key,omitempty"`
	Mtime  model.Time `json:"mtime"`
}

// Setting is one kubelet setting: its effective value and where it came
// from.
type Setting[T any] struct {
	Value T `json:"value"`
	Provenance
}

// IsSet reports whether the evidence set the value (not a default).
func (s Setting[T]) IsSet() bool {
	return s.Origin == OriginConfigFile || s.Origin == OriginConfigDropIn || s.Origin == OriginFlag
}

type setter interface {
	apply(v any, p Provenance) bool
	current() (any, *Provenance)
}

func (s *Setting[T]) apply(v any, p Provenance) bool {
	t, ok := v.(T)
	if !ok {
		return false
	}
	shadowed := s.Shadowed
	if s.IsSet() {
		shadowed = append(shadowed, Prior{Value: s.Value, Origin: s.Origin, Source: s.Source, Key: s.Key})
	}
	before := s.Before
	s.Value, s.Provenance = t, p
	s.Shadowed, s.Before = shadowed, before
	return true
}

func (s *Setting[T]) current() (any, *Provenance) { return s.Value, &s.Provenance }

// KubeletConfig is the kubelet's effective configuration: the config file
// with the kubelet's defaults for absent fields, the drop-ins over it and
// the command line's flags over both, as the kubelet applies them.
type KubeletConfig struct {
	// ConfigFile is the --config file (nil when the kubelet runs on flags
	// only). APIVersion and Kind are what it declares.
	ConfigFile  *FileInfo  `json:"config_file"`
	APIVersion  string     `json:"api_version,omitempty"`
	Kind        string     `json:"kind,omitempty"`
	DropIns     []FileInfo `json:"drop_ins"`
	PriorCopies []FileInfo `json:"prior_copies"` // earlier copies of the config file (backups)
	// FlagsOnly is true when no config file is in use: the command line's
	// legacy defaults apply (anonymous auth on, AlwaysAllow, port 10255).
	FlagsOnly bool `json:"flags_only"`

	Address                        Setting[string] `json:"address"`
	Port                           Setting[int64]  `json:"port"`
	ReadOnlyPort                   Setting[int64]  `json:"read_only_port"`
	EnableServer                   Setting[bool]   `json:"enable_server"`
	AnonymousAuth                  Setting[bool]   `json:"anonymous_auth"`
	WebhookAuthn                   Setting[bool]   `json:"webhook_authn"`
	ClientCAFile                   Setting[string] `json:"client_ca_file"`
	AuthorizationMode              Setting[string] `json:"authorization_mode"`
	TLSCertFile                    Setting[string] `json:"tls_cert_file"`
	TLSPrivateKeyFile              Setting[string] `json:"tls_private_key_file"`
	StaticPodPath                  Setting[string] `json:"static_pod_path"`
	StaticPodURL                   Setting[string] `json:"static_pod_url"`
	ProtectKernelDefaults          Setting[bool]   `json:"protect_kernel_defaults"`
	RotateCertificates             Setting[bool]   `json:"rotate_certificates"`
	ServerTLSBootstrap             Setting[bool]   `json:"server_tls_bootstrap"`
	EnableDebuggingHandlers        Setting[bool]   `json:"enable_debugging_handlers"`
	MakeIPTablesUtilChains         Setting[bool]   `json:"make_iptables_util_chains"`
	SeccompDefault                 Setting[bool]   `json:"seccomp_default"`
	StreamingConnectionIdleTimeout Setting[string] `json:"streaming_connection_idle_timeout"`
	EventRecordQPS                 Setting[int64]  `json:"event_record_qps"`
	ContainerRuntimeEndpoint       Setting[string] `json:"container_runtime_endpoint"`
	CgroupDriver                   Setting[string] `json:"cgroup_driver"`
	PodLogsDir                     Setting[string] `json:"pod_logs_dir"`
	// Command-line only (KubeletFlags).
	Config              Setting[string] `json:"config"`
	ConfigDir           Setting[string] `json:"config_dir"`
	Kubeconfig          Setting[string] `json:"kubeconfig"`
	BootstrapKubeconfig Setting[string] `json:"bootstrap_kubeconfig"`
	RootDir             Setting[string] `json:"root_dir"`
	CertDir             Setting[string] `json:"cert_dir"`
	HostnameOverride    Setting[string] `json:"hostname_override"`
	NodeIP              Setting[string] `json:"node_ip"`
}

const (
	kBool = iota
	kInt
	kString
)

// settingSpec maps a setting to its config-file field and its flag, with
// the kubelet's defaults. Sources for the defaults:
//   - v1beta1 defaults: kubernetes pkg/kubelet/apis/config/v1beta1/defaults.go
//     (SetDefaults_KubeletConfiguration): anonymous.enabled false,
//     webhook.enabled true, authorization.mode Webhook, port 10250, address
//     0.0.0.0, enableServer/enableDebuggingHandlers/makeIPTablesUtilChains
//     true, eventRecordQPS 50, streamingConnectionIdleTimeout 4h,
//     cgroupDriver cgroupfs, containerRuntimeEndpoint
//     unix:///run/containerd/containerd.sock, podLogsDir /var/log/pods.
//     readOnlyPort, protectKernelDefaults, rotateCertificates,
//     serverTLSBootstrap, seccompDefault are not defaulted: 0/false
//     (the v1beta1 reference documents "readOnlyPort … Default: 0").
//     staticPodPath has no default ("").
//   - flags-only defaults: kubernetes cmd/kubelet/app/options/options.go
//     (applyLegacyDefaults, used when no --config is given):
//     --anonymous-auth=true, --authentication-token-webhook=false,
//     --authorization-mode=AlwaysAllow, --read-only-port=10255.
//   - KubeletFlags defaults (same file): --root-dir /var/lib/kubelet,
//     --cert-dir /var/lib/kubelet/pki.
type settingSpec struct {
	name   string
	yaml   []string // nil for command-line-only settings
	flag   string
	kind   int
	def    any // nil: no default (OriginUnset)
	legacy any // the flags-only default when it differs
	field  func(c *KubeletConfig) setter
}

var settingSpecs = []settingSpec{
	{"address", []string{"address"}, "address", kString, "0.0.0.0", nil, func(c *KubeletConfig) setter { return &c.Address }},
	{"port", []string{"port"}, "port", kInt, int64(10250), nil, func(c *KubeletConfig) setter { return &c.Port }},
	{"read_only_port", []string{"readOnlyPort"}, "read-only-port", kInt, int64(0), int64(10255), func(c *KubeletConfig) setter { return &c.ReadOnlyPort }},
	{"enable_server", []string{"enableServer"}, "enable-server", kBool, true, nil, func(c *KubeletConfig) setter { return &c.EnableServer }},
	{"anonymous_auth", []string{"authentication", "anonymous", "enabled"}, "anonymous-auth", kBool, false, true, func(c *KubeletConfig) setter { return &c.AnonymousAuth }},
	{"webhook_authn", []string{"authentication", "webhook", "enabled"}, "authentication-token-webhook", kBool, true, false, func(c *KubeletConfig) setter { return &c.WebhookAuthn }},
	{"client_ca_file", []string{"authentication", "x509", "clientCAFile"}, "client-ca-file", kString, nil, nil, func(c *KubeletConfig) setter { return &c.ClientCAFile }},
	{"authorization_mode", []string{"authorization", "mode"}, "authorization-mode", kString, "Webhook", "AlwaysAllow", func(c *KubeletConfig) setter { return &c.AuthorizationMode }},
	{"tls_cert_file", []string{"tlsCertFile"}, "tls-cert-file", kString, nil, nil, func(c *KubeletConfig) setter { return &c.TLSCertFile }},
	{"tls_private_key_file", []string{"tlsPrivateKeyFile"}, "tls-private-key-file", kString, nil, nil, func(c *KubeletConfig) setter { return &c.TLSPrivateKeyFile }},
	{"static_pod_path", []string{"staticPodPath"}, "pod-manifest-path", kString, nil, nil, func(c *KubeletConfig) setter { return &c.StaticPodPath }},
	{"static_pod_url", []string{"staticPodURL"}, "manifest-url", kString, nil, nil, func(c *KubeletConfig) setter { return &c.StaticPodURL }},
	{"protect_kernel_defaults", []string{"protectKernelDefaults"}, "protect-kernel-defaults", kBool, false, nil, func(c *KubeletConfig) setter { return &c.ProtectKernelDefaults }},
	{"rotate_certificates", []string{"rotateCertificates"}, "rotate-certificates", kBool, false, nil, func(c *KubeletConfig) setter { return &c.RotateCertificates }},
	{"server_tls_bootstrap", []string{"serverTLSBootstrap"}, "rotate-server-certificates", kBool, false, nil, func(c *KubeletConfig) setter { return &c.ServerTLSBootstrap }},
	{"enable_debugging_handlers", []string{"enableDebuggingHandlers"}, "enable-debugging-handlers", kBool, true, nil, func(c *KubeletConfig) setter { return &c.EnableDebuggingHandlers }},
	{"make_iptables_util_chains", []string{"makeIPTablesUtilChains"}, "make-iptables-util-chains", kBool, true, nil, func(c *KubeletConfig) setter { return &c.MakeIPTablesUtilChains }},
	{"seccomp_default", []string{"seccompDefault"}, "seccomp-default", kBool, false, nil, func(c *KubeletConfig) setter { return &c.SeccompDefault }},
	{"streaming_connection_idle_timeout", []string{"streamingConnectionIdleTimeout"}, "streaming-connection-idle-timeout", kString, "4h0m0s", nil, func(c *KubeletConfig) setter { return &c.StreamingConnectionIdleTimeout }},
	{"event_record_qps", []string{"eventRecordQPS"}, "event-qps", kInt, int64(50), nil, func(c *KubeletConfig) setter { return &c.EventRecordQPS }},
	{"container_runtime_endpoint", []string{"containerRuntimeEndpoint"}, "container-runtime-endpoint", kString, "unix:///run/containerd/containerd.sock", nil, func(c *KubeletConfig) setter { return &c.ContainerRuntimeEndpoint }},
	{"cgroup_driver", []string{"cgroupDriver"}, "cgroup-driver", kString, "cgroupfs", nil, func(c *KubeletConfig) setter { return &c.CgroupDriver }},
	{"pod_logs_dir", []string{"podLogsDir"}, "", kString, "/var/log/pods", nil, func(c *KubeletConfig) setter { return &c.PodLogsDir }},
	{"config", nil, "config", kString, nil, nil, func(c *KubeletConfig) setter { return &c.Config }},
	{"config_dir", nil, "config-dir", kString, nil, nil, func(c *KubeletConfig) setter { return &c.ConfigDir }},
	{"kubeconfig", nil, "kubeconfig", kString, nil, nil, func(c *KubeletConfig) setter { return &c.Kubeconfig }},
	{"bootstrap_kubeconfig", nil, "bootstrap-kubeconfig", kString, nil, nil, func(c *KubeletConfig) setter { return &c.BootstrapKubeconfig }},
	{"root_dir", nil, "root-dir", kString, "/var/lib/kubelet", nil, func(c *KubeletConfig) setter { return &c.RootDir }},
	{"cert_dir", nil, "cert-dir", kString, "/var/lib/kubelet/pki", nil, func(c *KubeletConfig) setter { return &c.CertDir }},
	{"hostname_override", nil, "hostname-override", kString, nil, nil, func(c *KubeletConfig) setter { return &c.HostnameOverride }},
	{"node_ip", nil, "node-ip", kString, nil, nil, func(c *KubeletConfig) setter { return &c.NodeIP }},
}

// boolFlags are the kubelet's boolean flags: "--flag" alone means true and
// the next word is not its value. Every other kubelet flag takes a value
// (the kubelet has no positional arguments).
var boolFlags = map[string]bool{
	"anonymous-auth": true, "authentication-token-webhook": true, "enable-server": true,
	"protect-kernel-defaults": true, "rotate-certificates": true, "rotate-server-certificates": true,
	"enable-debugging-handlers": true, "make-iptables-util-chains": true, "seccomp-default": true,
	"fail-swap-on": true, "register-node": true, "register-schedulable": true, "cgroups-per-qos": true,
	"enable-controller-attach-detach": true, "exit-on-lock-contention": true, "kernel-memcg-notification": true,
	"keep-terminated-pod-volumes": true, "localstorage-capacity-isolation": true, "serialize-image-pulls": true,
	"enable-load-reader": true, "experimental-mounter-path": false, "version": true, "help": true,
	"log-flush-frequency": false, "logtostderr": true, "alsologtostderr": true, "one-output": true,
	"skip-headers": true, "skip-log-headers": true, "add-dir-header": true, "cpu-cfs-quota": true,
	"experimental-allocatable-ignore-eviction": true, "image-credential-provider-config": false,
	"lock-file": false, "enable-cadvisor-json-endpoints": true, "runonce": true, "run-once": true,
	"fail-cgroupv1": true, "node-status-max-images": false,
}

// Flag is one flag of the kubelet's command line.
type Flag struct {
	Name      string `json:"name"` // without dashes
	Value     string `json:"value"`
	Raw       string `json:"raw"` // as it appears after expansion
	DefinedIn string `json:"defined_in"`
	Var       string `json:"var,omitempty"`
	Known     bool   `json:"known"` // deadnode maps it to a setting
}

// ParseFlags reads the kubelet's flags from an expanded command line
// (argv[0] is the binary and is skipped).
func ParseFlags(args []Arg) ([]Flag, []evidence.Warning) {
	known := map[string]bool{}
	for _, s := range settingSpecs {
		if s.flag != "" {
			known[s.flag] = true
		}
	}
	var out []Flag
	var warns []evidence.Warning
	for i := 1; i < len(args); i++ {
		a := args[i]
		w := a.Value
		if !strings.HasPrefix(w, "-") || w == "-" || w == "--" {
			warns = append(warns, evidence.Warnf("", -1, "kubelet command line: %q is not a flag (the kubelet takes no arguments)", w))
			continue
		}
		name := strings.TrimLeft(w, "-")
		val, hasVal := "", false
		if k, v, ok := strings.Cut(name, "="); ok {
			name, val, hasVal = k, v, true
		}
		// the kubelet's flag set normalises "_" to "-" (WordSepNormalizeFunc):
		// --anonymous_auth is --anonymous-auth
		name = strings.ReplaceAll(name, "_", "-")
		raw := w
		if !hasVal {
			if boolFlags[name] {
				val = "true"
			} else if i+1 < len(args) && !strings.HasPrefix(args[i+1].Value, "-") {
				i++
				val = args[i].Value
				raw += " " + val
			}
		}
		out = append(out, Flag{Name: name, Value: val, Raw: raw, DefinedIn: a.From, Var: a.Var, Known: known[name]})
	}
	return out, warns
}

func convertFlag(kind int, v string) (any, error) {
	switch kind {
	case kBool:
		return strconv.ParseBool(v)
	case kInt:
		// as pflag reads its int flags: 0x, 0o, 0b prefixes, a leading 0
		// octal, and _ separators (--read-only-port=10_255 is 10255)
		return strconv.ParseInt(v, 0, 64)
	}
	return v, nil
}

func convertField(kind int, v any) (any, bool) {
	switch kind {
	case kBool:
		b, ok := v.(bool)
		return b, ok
	case kInt:
		return toInt(v)
	default:
		s, ok := v.(string)
		return s, ok
	}
}

// configLayer is one parsed config file or drop-in.
type configLayer struct {
	info   FileInfo
	origin string
	doc    map[string]any
}

// resolveConfig computes the effective configuration from the flags and
// the config files they name.
func resolveConfig(src evidence.Source, flags []Flag, haveUnit bool) (*KubeletConfig, []evidence.Warning) {
	c := &KubeletConfig{}
	var warns []evidence.Warning
	// warn is for the messages that name no file first: each says which
	// setting or file it is about in its own words.
	warn := func(format string, a ...any) { warns = append(warns, evidence.Warnf("", -1, format, a...)) }
	lastFlag := map[string]Flag{}
	for _, f := range flags {
		lastFlag[f.Name] = f
	}
	cfgPath := ""
	if f, ok := lastFlag["config"]; ok && f.Value != "" {
		cfgPath = f.Value
	} else if !haveUnit {
		// No unit to tell how the kubelet was started: kubeadm's layout.
		if _, _, st, _ := statPath(src, defaultConfigFile); st != nil {
			cfgPath = pathutil.Abs(defaultConfigFile)
			warn("no kubelet unit found: assuming the kubelet ran with --config=%s (kubeadm's layout)", cfgPath)
		}
	}
	c.FlagsOnly = cfgPath == ""
	// Defaults first.
	for _, s := range settingSpecs {
		st := s.field(c)
		switch {
		case c.FlagsOnly && s.legacy != nil:
			st.apply(s.legacy, Provenance{Origin: OriginFlagDefault, Source: "kubelet command-line default (no --config)"})
		case s.def != nil:
			st.apply(s.def, Provenance{Origin: OriginDefault, Source: "kubelet default (kubelet.config.k8s.io/v1beta1)"})
		default:
			applyZero(st, Provenance{Origin: OriginUnset, Source: "not set (no default)"})
		}
	}
	var layers []configLayer
	if cfgPath != "" {
		name, err := hostPath(cfgPath, "/")
		if err != nil {
			warn("--config=%s: %v", cfgPath, err)
		} else {
			l, err := readConfigLayer(src, name, OriginConfigFile)
			fi := l.info
			c.ConfigFile = &fi
			if err != nil {
				warn("kubelet config %s: %v", pathutil.Abs(name), err)
			} else {
				c.APIVersion, c.Kind = getString(l.doc, "apiVersion"), getString(l.doc, "kind")
				if c.Kind != "KubeletConfiguration" {
					warn("kubelet config %s: kind %q, not KubeletConfiguration (the kubelet refuses it)", pathutil.Abs(name), c.Kind)
				}
				if !strings.HasPrefix(c.APIVersion, "kubelet.config.k8s.io/") {
					warn("kubelet config %s: apiVersion %q is not kubelet.config.k8s.io/…", pathutil.Abs(name), c.APIVersion)
				}
				layers = append(layers, l)
			}
			c.PriorCopies = priorCopies(src, name)
		}
	}
	if f, ok := lastFlag["config-dir"]; ok && f.Value != "" {
		dir, err := hostPath(f.Value, "/")
		if err == nil {
			// The kubelet walks the directory (filepath.WalkDir: lexical,
			// subdirectories too, links to directories not followed) and
			// merges every *.conf in that order.
			res, rerr := evidence.Resolve(src, dir, true)
			if rerr != nil {
				warn("--config-dir=%s: %v", f.Value, rerr)
			}
			var names []string
			visited := 0
			werr := evidence.Walk(context.Background(), src, res, func(st *evidence.Stat, err error) error { // bounded by visited
				if err != nil {
					if st == nil || !notExist(err) {
						warn("--config-dir=%s: %v", f.Value, err)
					}
					return nil
				}
				if visited++; visited > MaxDropIns*16 {
					return fs.SkipAll
				}
				if !st.Mode.IsDir() && strings.HasSuffix(st.Name, ".conf") {
					names = append(names, st.Name)
				}
				return nil
			})
			if werr != nil && rerr == nil {
				warn("--config-dir=%s: %v", f.Value, werr)
			}
			for i, n := range names {
				if i >= MaxDropIns {
					warn("--config-dir=%s: more than %d drop-ins, the rest not read", f.Value, MaxDropIns)
					break
				}
				l, err := readConfigLayer(src, n, OriginConfigDropIn)
				c.DropIns = append(c.DropIns, l.info)
				if err != nil {
					warn("kubelet config drop-in %s: %v", pathutil.Abs(n), err)
					continue
				}
				layers = append(layers, l)
			}
		}
	}
	for _, l := range layers {
		warns = append(warns, applyLayer(c, l)...)
	}
	// Flags last: the kubelet re-applies the command line over the files.
	for _, f := range flags {
		for _, s := range settingSpecs {
			if s.flag != f.Name {
				continue
			}
			v, err := convertFlag(s.kind, f.Value)
			if err != nil {
				warn("flag --%s=%q: %v (the kubelet refuses it)", f.Name, f.Value, err)
				continue
			}
			s.field(c).apply(v, Provenance{Origin: OriginFlag, Source: "--" + f.Name, Key: "--" + f.Name, DefinedIn: f.DefinedIn, Var: f.Var})
		}
	}
	if len(layers) > 0 && layers[0].origin == OriginConfigFile {
		applyBefore(src, c, layers[0], &warns)
	}
	return c, warns
}

// applyLayer sets the settings a config file or drop-in holds.
func applyLayer(c *KubeletConfig, l configLayer) []evidence.Warning {
	var warns []evidence.Warning
	for _, s := range settingSpecs {
		if s.yaml == nil {
			continue
		}
		v, ok := lookup(l.doc, s.yaml...)
		if !ok || v == nil {
			continue
		}
		cv, ok := convertField(s.kind, v)
		if !ok || !s.field(c).apply(cv, Provenance{Origin: l.origin, Source: l.info.Path, Key: strings.Join(s.yaml, ".")}) {
			warns = append(warns, evidence.Warnf(l.info.Path, -1, "%s is a %s, not what the kubelet expects (the kubelet refuses the file)", strings.Join(s.yaml, "."), jsonKind(v)))
		}
	}
	return warns
}

func zeroOf(kind int) any {
	switch kind {
	case kBool:
		return false
	case kInt:
		return int64(0)
	}
	return ""
}

func applyZero(st setter, p Provenance) {
	switch v, _ := st.current(); v.(type) {
	case bool:
		st.apply(false, p)
	case int64:
		st.apply(int64(0), p)
	case string:
		st.apply("", p)
	}
}

func firstErr(errs ...error) error {
	for _, e := range errs {
		if e != nil {
			return e
		}
	}
	return nil
}

func readConfigLayer(src evidence.Source, name, origin string) (configLayer, error) {
	b, fi, err := readSmall(src, name, MaxConfigBytes)
	l := configLayer{info: fi, origin: origin}
	if err != nil {
		return l, err
	}
	doc, err := decodeYAML(b)
	if err != nil {
		return l, &evidence.FormatError{File: pathutil.Abs(name), Offset: -1, Msg: "not a YAML/JSON KubeletConfiguration", Err: err}
	}
	l.doc = doc
	return l, nil
}

// priorCopySuffixes are the names editors, package managers and admins
// give an earlier copy of a file.
var priorCopySuffixes = []string{"~", ".bak", ".backup", ".orig", ".old", ".save", ".prev", ".dpkg-old", ".dpkg-dist", ".rpmsave", ".rpmorig", ".ucf-old"}

// priorCopies finds earlier copies of the config file: siblings named
// after it with a backup suffix, and kubeadm's upgrade backups.
func priorCopies(src evidence.Source, name string) []FileInfo {
	var out []FileInfo
	dir, base := path.Dir(name), path.Base(name)
	if res, err := evidence.Resolve(src, dir, true); err == nil {
		if ents, err := src.ReadDir(res); err == nil {
			for _, e := range ents {
				b := path.Base(e.Name)
				if b == base || !strings.HasPrefix(b, base) || !e.Mode.IsRegular() {
					continue
				}
				suffix := b[len(base):]
				ok := false
				for _, s := range priorCopySuffixes {
					if suffix == s || strings.HasPrefix(suffix, s+".") {
						ok = true
					}
				}
				// config.yaml.20261120, config.yaml-2026-11-20
				if !ok && len(suffix) > 1 && (suffix[0] == '.' || suffix[0] == '-') && suffix[1] >= '0' && suffix[1] <= '9' {
					ok = true
				}
				if ok {
					out = append(out, statInfo(dir+"/"+b, e.Name, e))
				}
			}
		}
	}
	if ents, err := src.ReadDir(kubeadmBackupDir); err == nil {
		for _, e := range ents {
			if !e.Mode.IsDir() || !strings.HasPrefix(path.Base(e.Name), kubeadmBackupPrefix) {
				continue
			}
			if fi, _, st, err := statPath(src, e.Name+"/config.yaml"); err == nil && st != nil && st.Mode.IsRegular() {
				out = append(out, fi)
			}
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Mtime.After(out[j].Mtime.Time) })
	return out
}

// applyBefore sets Before on the settings whose value in the newest prior
// copy of the config file differs from the current file's (defaults
// applied to both), when the current value comes from the file.
func applyBefore(src evidence.Source, c *KubeletConfig, cur configLayer, warns *[]evidence.Warning) {
	if len(c.PriorCopies) == 0 {
		return
	}
	p := c.PriorCopies[0]
	prev, err := readConfigLayer(src, strings.TrimPrefix(p.EvidencePath, "/"), OriginConfigFile)
	if err != nil {
		*warns = append(*warns, evidence.Warnf("", -1, "prior copy %s: %v", p.Path, err))
		return
	}
	fileValue := func(doc map[string]any, s settingSpec) any {
		if v, ok := lookup(doc, s.yaml...); ok && v != nil {
			if cv, ok := convertField(s.kind, v); ok {
				return cv
			}
			return nil
		}
		if s.def == nil {
			return zeroOf(s.kind)
		}
		return s.def
	}
	for _, s := range settingSpecs {
		if s.yaml == nil {
			continue
		}
		_, prov := s.field(c).current()
		if prov.Origin != OriginConfigFile && prov.Origin != OriginDefault {
			continue
		}
		now, then := fileValue(cur.doc, s), fileValue(prev.doc, s)
		if then == nil || now == then {
			continue
		}
		prov.Before = &Prior{Value: then, Origin: OriginConfigFile, Source: p.Path, Key: strings.Join(s.yaml, "."), Mtime: p.Mtime}
	}
}
