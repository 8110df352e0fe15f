package host

import (
	"cmp"
	"encoding/json"
	"fmt"
	"maps"
	"path"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/deadnode/deadnode/forensics/classify"
	"github.com/deadnode/deadnode/forensics/model"
	"github.com/pelletier/go-toml/v2"
)

// OCI hook directories (containers/common pkg/hooks) and runtime configs.
var ociHookDirs = []string{"/usr/share/containers/oci/hooks.d", "/etc/containers/oci/hooks.d"}

const (
	containerdConfig = "/etc/containerd/config.toml"
	crioConfig       = "/etc/crio/crio.conf"
	crioConfigDir    = "/etc/crio/crio.conf.d"
	maxImports       = 32
)

// OCIHook is a hook definition of hooks.d (oci-hooks(5)), version 1.0.0 or
// the legacy 0.1.0.
type OCIHook struct {
	Version     string            `json:"version"`
	Program     string            `json:"program"` // hook.path
	Args        []string          `json:"args"`
	Env         []string          `json:"env,omitempty"`
	Stages      []string          `json:"stages"`
	Always      bool              `json:"always"`
	Annotations map[string]string `json:"annotations,omitempty"`
	Commands    []string          `json:"commands,omitempty"`
	BindMounts  bool              `json:"has_bind_mounts"`
}

type hookJSON struct {
	Version string          `json:"version"`
	Hook    json.RawMessage `json:"hook"`
	When    struct {
		Always        *bool             `json:"always"`
		Annotations   map[string]string `json:"annotations"`
		Commands      []string          `json:"commands"`
		HasBindMounts *bool             `json:"hasBindMounts"`
	} `json:"when"`
	Stages []string `json:"stages"`
	// 0.1.0
	Arguments     []string `json:"arguments"`
	Stage         []string `json:"stage"`
	Cmds          []string `json:"cmds"`
	Annotation    []string `json:"annotation"`
	HasBindMounts *bool    `json:"hasbindmounts"`
}

// parseOCIHook reads a hooks.d JSON file.
func parseOCIHook(b []byte) (*OCIHook, error) {
	var j hookJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return nil, err
	}
	h := &OCIHook{Version: j.Version, Args: []string{}, Stages: []string{}}
	var hk struct {
		Path    string   `json:"path"`
		Args    []string `json:"args"`
		Env     []string `json:"env"`
		Timeout *int     `json:"timeout"`
	}
	if len(j.Hook) > 0 && j.Hook[0] == '"' {
		// 0.1.0: "hook": "/path"
		if err := json.Unmarshal(j.Hook, &hk.Path); err != nil {
			return nil, err
		}
		hk.Args = j.Arguments
		if h.Version == "" {
			h.Version = "0.1.0"
		}
		j.Stages = append(j.Stages, j.Stage...)
		h.Commands = j.Cmds
		for _, a := range j.Annotation {
			if h.Annotations == nil {
				h.Annotations = map[string]string{}
			}
			h.Annotations[a] = ".*"
		}
		if j.HasBindMounts != nil {
			h.BindMounts = *j.HasBindMounts
		}
	} else if len(j.Hook) > 0 {
		if err := json.Unmarshal(j.Hook, &hk); err != nil {
			return nil, err
		}
	}
	if hk.Path == "" {
		return nil, fmt.Errorf("no hook path")
	}
	h.Program, h.Env = hk.Path, hk.Env
	if hk.Args != nil {
		h.Args = hk.Args
	}
	h.Stages = append(h.Stages, j.Stages...)
	if j.When.Always != nil {
		h.Always = *j.When.Always
	}
	if j.When.Annotations != nil {
		h.Annotations = j.When.Annotations
	}
	if j.When.Commands != nil {
		h.Commands = j.When.Commands
	}
	if j.When.HasBindMounts != nil {
		h.BindMounts = *j.When.HasBindMounts
	}
	return h, nil
}

// shellJoin quotes words into a command line.
func shellJoin(words []string) string {
	var b strings.Builder
	for i, w := range words {
		if i > 0 {
			b.WriteByte(' ')
		}
		if w == "" || strings.ContainsAny(w, " \t\"'\\$`;&|<>()") {
			b.WriteString(strconv.Quote(w))
		} else {
			b.WriteString(w)
		}
	}
	return b.String()
}

func (ps *persist) ociHooks() {
	dirs := append([]string{}, ociHookDirs...)
	dirs = append(dirs, ps.crioHookDirs()...)
	seen := map[string]bool{}
	for _, d := range dirs {
		rd, ents := ps.listDir(d)
		if rd == "" || seen[rd] {
			continue
		}
		seen[rd] = true
		for _, en := range ents {
			n := baseName(en.Name)
			if en.Mode.IsDir() || !strings.HasSuffix(n, ".json") {
				continue
			}
			p := path.Join(rd, n)
			b, fp, err := ps.readFileAt(p)
			if err != nil {
				ps.w.at(p, -1, "%v", err)
				continue
			}
			e := Entry{Path: p, Kind: KindOCIHook, EvidencePath: fp, Flags: []string{}}
			ps.stamp(&e, p, en)
			h, err := parseOCIHook(b)
			if err != nil {
				e.Note = "the runtime cannot read this hook: " + short(err.Error())
				e.Severity, e.Why = judgeBroken(e)
				ps.add(e)
				continue
			}
			e.Hook, e.Target = h, h.Program
			e.Enabled = len(h.Stages) > 0
			words := append([]string{h.Program}, h.Args...)
			if len(h.Args) > 0 {
				words = append([]string{h.Program}, h.Args[1:]...) // args[0] is argv[0]
			}
			cmds := []string{shellJoin(words)}
			for _, env := range h.Env {
				cmds = append(cmds, "env "+shellJoin([]string{env}))
				if strings.HasPrefix(env, "LD_PRELOAD=") {
					addFlag(&e, FlagPreloadsLib)
				}
			}
			ps.runs(&e, "", cmds...)
			ps.add(e)
		}
	}
}

// judgeBroken judges an entry the tool that reads it would reject.
func judgeBroken(e Entry) (model.Severity, string) {
	if e.OwnerPackage != nil && !e.PackageModified {
		return model.SeverityInfo, "as package " + *e.OwnerPackage + " shipped it"
	}
	return model.SeverityLow, "the runtime would reject this file, so it runs nothing"
}

// RuntimeSetting is a container runtime setting that makes the runtime
// run a program: a runtime handler, an NRI plugin, a stream processor, a
// CNI or hooks directory.
type RuntimeSetting struct {
	Runtime     string `json:"runtime"` // containerd, cri-o
	Setting     string `json:"setting"` // the key, e.g. plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc
	Name        string `json:"name,omitempty"`
	RuntimeType string `json:"runtime_type,omitempty"`
	Program     string `json:"program"` // what it makes run ("" when the runtime's default)
	Detail      string `json:"detail,omitempty"`
}

// standardRuntimeTypes are the shims containerd ships or documents.
var standardRuntimeTypes = map[string]bool{
	"io.containerd.runc.v1": true, "io.containerd.runc.v2": true, "io.containerd.runsc.v1": true, "io.containerd.kata.v2": true,
	"io.containerd.runhcs.v1": true, "io.containerd.runtime.v1.linux": true, "io.containerd.crun.v2": true, "io.containerd.youki.v1": true,
	"oci": true, "vm": true, "pod": true, "": true,
}

// standardRuntimeBins are OCI runtimes (and their well-known wrappers).
var standardRuntimeBins = map[string]bool{
	"runc": true, "crun": true, "runsc": true, "kata-runtime": true, "youki": true, "containerd-shim-kata-v2": true,
	"nvidia-container-runtime": true, "nvidia-container-runtime-cdi": true, "sysbox-runc": true, "conmon": true, "conmonrs": true,
	"containerd-shim-runc-v2": true,
}

// standardCNIDirs hold CNI plugins on the common installs.
var standardCNIDirs = []string{"/opt/cni/bin", "/usr/lib/cni", "/usr/libexec/cni", "/usr/local/lib/cni", "/home/kubernetes/bin"}

// readTOML reads a runtime's TOML configuration file (nil when absent or
// unreadable, warned).
func (ps *persist) readTOML(p string) (*confFile, map[string]any) {
	cf := ps.readConf(p)
	if cf == nil {
		return nil, nil
	}
	var cfg map[string]any
	if err := toml.Unmarshal(cf.data, &cfg); err != nil {
		ps.w.at(p, -1, "not readable TOML: %v", err)
		return nil, nil
	}
	return cf, cfg
}

// addRuntime adds the entry of a runtime setting of configuration file cf
// naming target; ordinary says the setting is as shipped, unless the
// program it runs is flagged.
func (ps *persist) addRuntime(cf *confFile, rs RuntimeSetting, target string, ordinary bool) {
	e := Entry{Path: cf.path, Kind: KindRuntimeConfig, Target: target, Enabled: true, EvidencePath: cf.file, Runtime: &rs, Flags: []string{}}
	ps.stamp(&e, cf.path, cf.st)
	if rs.Program != "" {
		ps.runs(&e, "", rs.Program)
	}
	e.ordinary = ordinary && !hasAnyFlag(e.Flags, severeFlags...)
	ps.add(e)
}

func (ps *persist) containerd() {
	ps.containerdFile(containerdConfig, 0, map[string]bool{})
}

// containerdFile reads a containerd config and the files it imports.
func (ps *persist) containerdFile(p string, depth int, seen map[string]bool) {
	if depth > 4 || seen[p] || len(seen) > maxImports {
		return
	}
	seen[p] = true
	cf, cfg := ps.readTOML(p)
	if cf == nil {
		return
	}
	add := func(rs RuntimeSetting, ordinary bool) {
		ps.addRuntime(cf, rs, cmp.Or(rs.Program, rs.RuntimeType), ordinary)
	}
	version := toInt(cfg["version"])
	plugins, _ := cfg["plugins"].(map[string]any)
	for _, key := range []string{"io.containerd.grpc.v1.cri", "io.containerd.cri.v1.runtime"} {
		cri, _ := plugins[key].(map[string]any)
		ctr, _ := cri["containerd"].(map[string]any)
		rts, _ := ctr["runtimes"].(map[string]any)
		names := slices.Sorted(maps.Keys(rts))
		for _, n := range names {
			rt, _ := rts[n].(map[string]any)
			rs := RuntimeSetting{Runtime: "containerd", Setting: fmt.Sprintf("plugins.%q.containerd.runtimes.%s", key, n), Name: n}
			rs.RuntimeType, _ = rt["runtime_type"].(string)
			prog, _ := rt["runtime_path"].(string)
			opts, _ := rt["options"].(map[string]any)
			if bn, ok := opts["BinaryName"].(string); ok && bn != "" {
				prog = bn
			}
			rs.Program = prog
			ordinary := standardRuntimeTypes[rs.RuntimeType] && (prog == "" || standardRuntimeBins[path.Base(prog)] && (!strings.HasPrefix(prog, "/") || inDirs(prog, binDirs...)))
			if !ordinary {
				rs.Detail = "a runtime handler that is not a standard OCI runtime or runs a binary from an unusual place"
			}
			add(rs, ordinary)
		}
		for _, legacy := range []string{"default_runtime", "untrusted_workload_runtime"} {
			rt, ok := ctr[legacy].(map[string]any)
			if !ok {
				continue
			}
			rs := RuntimeSetting{Runtime: "containerd", Setting: fmt.Sprintf("plugins.%q.containerd.%s", key, legacy)}
			rs.RuntimeType, _ = rt["runtime_type"].(string)
			rs.Program, _ = rt["runtime_engine"].(string)
			if rs.RuntimeType == "" && rs.Program == "" {
				continue
			}
			add(rs, standardRuntimeTypes[rs.RuntimeType] && (rs.Program == "" || standardRuntimeBins[path.Base(rs.Program)]))
		}
		if cni, ok := cri["cni"].(map[string]any); ok {
			if d, _ := cni["bin_dir"].(string); d != "" && !inDirs(d, standardCNIDirs...) {
				add(RuntimeSetting{Runtime: "containerd", Setting: fmt.Sprintf("plugins.%q.cni.bin_dir", key), Program: d, Detail: "CNI plugins run from here for every pod sandbox"}, false)
			}
		}
	}
	if v1, ok := plugins["io.containerd.runtime.v1.linux"].(map[string]any); ok {
		for _, k := range []string{"runtime", "shim"} {
			if prog, _ := v1[k].(string); prog != "" {
				add(RuntimeSetting{Runtime: "containerd", Setting: `plugins."io.containerd.runtime.v1.linux".` + k, Program: prog}, standardRuntimeBins[path.Base(prog)] || prog == "containerd-shim")
			}
		}
	}
	// NRI: enabled by default from containerd 2.0 (config version 3)
	nri, hasNRI := plugins["io.containerd.nri.v1.nri"].(map[string]any)
	disabled := version < 3
	if hasNRI {
		if d, ok := nri["disable"].(bool); ok {
			disabled = d
		}
	}
	if !disabled {
		dir := "/opt/nri/plugins"
		if d, _ := nri["plugin_path"].(string); d != "" {
			dir = d
		}
		add(RuntimeSetting{Runtime: "containerd", Setting: `plugins."io.containerd.nri.v1.nri"`, Program: "", RuntimeType: "nri", Detail: "NRI is enabled; plugins in " + dir + " are started with containerd"}, true)
		ps.nriPlugins(cf.path, "containerd", dir)
	}
	if sp, ok := cfg["stream_processors"].(map[string]any); ok {
		names := slices.Sorted(maps.Keys(sp))
		for _, n := range names {
			s, _ := sp[n].(map[string]any)
			prog, _ := s["path"].(string)
			args := toStrings(s["args"])
			add(RuntimeSetting{Runtime: "containerd", Setting: "stream_processors." + n, Name: n, Program: prog, Detail: "runs on every layer it accepts: " + shellJoin(args)}, prog == "ctd-decoder" || path.Base(prog) == "ctd-decoder")
		}
	}
	for _, imp := range toStrings(cfg["imports"]) {
		if len(seen) > maxImports {
			break
		}
		dir, pat := path.Split(imp)
		if strings.ContainsAny(pat, "*?[") {
			_, ents := ps.listDir(dir)
			for _, e := range ents {
				if n := baseName(e.Name); fnmatch(pat, n) && !e.Mode.IsDir() {
					ps.containerdFile(path.Join(dir, n), depth+1, seen)
				}
			}
		} else {
			ps.containerdFile(imp, depth+1, seen)
		}
	}
}

// nriPlugins lists the executables of an NRI plugin directory: the
// runtime starts each at its own start.
func (ps *persist) nriPlugins(cfg, runtime, dir string) {
	rd, ents := ps.listDir(dir)
	for _, en := range ents {
		if en.Mode.IsDir() {
			continue
		}
		p := path.Join(rd, baseName(en.Name))
		rs := RuntimeSetting{Runtime: runtime, Setting: "nri plugin", Name: baseName(en.Name), Program: p, Detail: "a pre-registered NRI plugin, started by the runtime, in " + cfg}
		e := Entry{Path: p, Kind: KindRuntimeConfig, Target: p, Enabled: en.Mode.Perm()&0o111 != 0, EvidencePath: p, Runtime: &rs, Flags: []string{}}
		ps.stamp(&e, p, en)
		ps.runs(&e, "", p)
		ps.add(e)
	}
}

// crio reads CRI-O's configuration: runtime handlers, hooks_dir, NRI.
func (ps *persist) crio() {
	files := []string{crioConfig}
	rd, ents := ps.listDir(crioConfigDir)
	var names []string
	for _, e := range ents {
		if n := baseName(e.Name); strings.HasSuffix(n, ".conf") && !e.Mode.IsDir() {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	for _, n := range names {
		files = append(files, path.Join(rd, n))
	}
	for _, p := range files {
		cf, cfg := ps.readTOML(p)
		if cf == nil {
			continue
		}
		crio, _ := cfg["crio"].(map[string]any)
		rt, _ := crio["runtime"].(map[string]any)
		add := func(rs RuntimeSetting, ordinary bool) {
			ps.addRuntime(cf, rs, rs.Program, ordinary)
		}
		rts, _ := rt["runtimes"].(map[string]any)
		rnames := slices.Sorted(maps.Keys(rts))
		for _, n := range rnames {
			r, _ := rts[n].(map[string]any)
			rs := RuntimeSetting{Runtime: "cri-o", Setting: "crio.runtime.runtimes." + n, Name: n}
			rs.RuntimeType, _ = r["runtime_type"].(string)
			rs.Program, _ = r["runtime_path"].(string)
			mon, _ := r["monitor_path"].(string)
			ordinary := standardRuntimeTypes[rs.RuntimeType] && (rs.Program == "" || standardRuntimeBins[path.Base(rs.Program)] && inDirs(rs.Program, binDirs...))
			add(rs, ordinary)
			if mon != "" {
				add(RuntimeSetting{Runtime: "cri-o", Setting: "crio.runtime.runtimes." + n + ".monitor_path", Name: n, Program: mon}, standardRuntimeBins[path.Base(mon)] && inDirs(mon, binDirs...))
			}
		}
		for _, d := range toStrings(rt["hooks_dir"]) {
			if !inDirs(path.Clean(d), ociHookDirs...) {
				add(RuntimeSetting{Runtime: "cri-o", Setting: "crio.runtime.hooks_dir", Program: "", Detail: "OCI hooks are read from " + d}, !hasAnyFlagPath(d))
			}
		}
		if nri, ok := crio["nri"].(map[string]any); ok {
			if en, _ := nri["enable_nri"].(bool); en {
				dir := "/opt/nri/plugins"
				if d, _ := nri["nri_plugin_dir"].(string); d != "" {
					dir = d
				}
				add(RuntimeSetting{Runtime: "cri-o", Setting: "crio.nri", RuntimeType: "nri", Detail: "NRI is enabled; plugins in " + dir + " are started with CRI-O"}, true)
				ps.nriPlugins(cf.path, "cri-o", dir)
			}
		}
	}
}

// crioHookDirs are the hooks_dir entries of CRI-O's configuration.
func (ps *persist) crioHookDirs() []string {
	var out []string
	files := []string{crioConfig}
	rd, ents := ps.listDir(crioConfigDir)
	for _, e := range ents {
		if n := baseName(e.Name); strings.HasSuffix(n, ".conf") {
			files = append(files, path.Join(rd, n))
		}
	}
	for _, p := range files {
		b, err := readResolved(ps.src, ps.res, p)
		if err != nil {
			continue
		}
		var cfg map[string]any
		if toml.Unmarshal(b, &cfg) != nil {
			continue
		}
		crio, _ := cfg["crio"].(map[string]any)
		rt, _ := crio["runtime"].(map[string]any)
		out = append(out, toStrings(rt["hooks_dir"])...)
	}
	if len(out) > 16 {
		out = out[:16]
	}
	return out
}

func hasAnyFlagPath(d string) bool { return classify.Volatile(d) || classify.Hidden(d) }

func hasAnyFlag(flags []string, want ...string) bool {
	for _, w := range want {
		if hasFlag(flags, w) {
			return true
		}
	}
	return false
}

func toInt(v any) int64 {
	switch x := v.(type) {
	case int64:
		return x
	case int:
		return int64(x)
	case float64:
		return int64(x)
	}
	return 0
}

func toStrings(v any) []string {
	var out []string
	switch x := v.(type) {
	case string:
		out = append(out, x)
	case []any:
		for _, s := range x {
			if str, ok := s.(string); ok && len(out) < 64 {
				out = append(out, str)
			}
		}
	}
	return out
}
