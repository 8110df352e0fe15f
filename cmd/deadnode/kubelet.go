package main

import (
	"context"
	"fmt"
	"reflect"
	"strings"

	"github.com/spf13/pflag"

	"github.com/deadnode/deadnode/forensics/kube"
	"github.com/deadnode/deadnode/render"
)

func init() {
	register(&command{
		name:    "kubelet",
		args:    "",
		summary: "the node's kubelet: effective config with each setting's origin, kubeconfigs (no key or token printed), static pods and their host powers, pod directories with volumes and service-account token claims, findings",
		setup: func(fs *pflag.FlagSet) func(*app, []string) error {
			return runKubelet
		},
	})
}

func runKubelet(a *app, args []string) error {
	if len(args) != 0 {
		return usagef("kubelet takes no arguments")
	}
	n, err := a.evidence()
	if err != nil {
		return err
	}
	r, err := n.Kubelet(context.Background())
	if err != nil {
		return fmt.Errorf("%s: %w", a.root, err)
	}
	for _, w := range r.Warnings {
		a.warn(w.String())
	}
	return a.show(r, kubeletTable(r))
}

// kubeletTable is the report in sections of key-value lines.
func kubeletTable(r *kube.KubeletReport) *render.Table {
	t := render.KeyValue()
	kv := t.KV
	section := func(s string) {
		if t.Len() > 0 {
			t.Break()
		}
		t.Title(s)
	}
	// list opens a section of n items; an empty one says none.
	list := func(s, key string, n int) {
		section(s)
		if n == 0 {
			t.KVAlways(key, "none")
		}
	}
	section("KUBELET")
	if u := r.Unit; u != nil {
		unit := "none found"
		if u.Fragment != nil {
			unit = fileLine(*u.Fragment)
		}
		if u.Masked {
			unit += " (masked)"
		} else if u.Enabled {
			unit += " (enabled: " + strings.Join(u.WantedBy, ", ") + ")"
		}
		t.KVAlways("Unit", unit)
		for _, d := range u.DropIns {
			kv("Drop-in", fileLine(d))
		}
		for _, e := range u.EnvironmentFiles {
			if e.Exists {
				kv("Environment file", fileLine(e.FileInfo))
			}
		}
		kv("Command", quoteArgs(u.ExecStart))
		kv("Command from", u.ExecStartFrom)
	}
	if c := r.Config; c != nil {
		if c.ConfigFile != nil {
			kv("Config file", fileLine(*c.ConfigFile))
		} else if c.FlagsOnly {
			kv("Config file", "none: the kubelet runs on its flags")
		}
		for _, d := range c.DropIns {
			kv("Config drop-in", fileLine(d))
		}
		for _, p := range c.PriorCopies {
			kv("Earlier copy", fileLine(p))
		}
	}
	for _, f := range r.Flags {
		if !f.Known {
			kv("Other flag", f.Raw+" (in "+f.DefinedIn+")")
		}
	}
	if c := r.Config; c != nil {
		section("SETTINGS (value, then where it comes from)")
		for _, s := range settings(c) {
			v := fmt.Sprint(s.value)
			if v == "" {
				v = "-"
			}
			kv(s.name, fmt.Sprintf("%s  [%s]", v, settingOrigin(s.prov)))
		}
	}
	if len(r.Kubeconfigs) > 0 {
		section("KUBECONFIGS")
		for i, k := range r.Kubeconfigs {
			if i > 0 {
				t.Break()
			}
			kv("Kubeconfig", fmt.Sprintf("%s (%s, from %s)", fileLine(k.FileInfo), k.Role, k.Source))
			kv("Current context", k.CurrentContext)
			for _, c := range k.Clusters {
				s := c.Server
				if c.InsecureSkipTLSVerify {
					s += " (TLS NOT verified)"
				} else if c.CA != "" {
					s += " (CA " + c.CA + ")"
				}
				kv("Cluster "+c.Name, s)
			}
			for _, u := range k.Users {
				kv("User "+u.Name, userLine(u))
			}
		}
	}
	sp := fmt.Sprintf("STATIC PODS in %s", r.StaticPodPath)
	if !r.StaticPodPathConfigured {
		sp += " (the default: the configuration names none)"
	}
	list(sp, "Static pods", len(r.StaticPods))
	for i, p := range r.StaticPods {
		if i > 0 {
			t.Break()
		}
		kv("Static pod", fmt.Sprintf("%s/%s  %s", p.Namespace, p.Name, p.Severity))
		kv("Manifest", fileLine(p.FileInfo))
		kv("Images", strings.Join(p.Images, ", "))
		kv("Command", quoteArgs(p.Command))
		if p.KnownComponent != "" {
			kv("Known component", p.KnownComponent)
		}
		if p.IgnoredByKubelet {
			kv("Ignored by the kubelet", p.IgnoredWhy)
		}
		for _, pw := range p.Powers {
			kv("Power", pw)
		}
		for _, w := range p.Warnings {
			kv("Warning", w.String())
		}
	}
	list("POD DIRECTORIES", "Pods", len(r.Pods))
	for i, p := range r.Pods {
		if i > 0 {
			t.Break()
		}
		name := p.UID
		if p.Name != "" {
			name = fmt.Sprintf("%s/%s (uid %s, named from %s)", p.Namespace, p.Name, p.UID, p.NameFrom)
		}
		kv("Pod", name)
		for _, v := range p.Volumes {
			w := ""
			if v.Writable {
				w = ", writable"
			}
			kv("Volume "+v.Name, fmt.Sprintf("%s%s: %s, %d bytes", v.Kind, w, render.Plural(v.Files, "file"), v.Bytes))
		}
		for _, c := range p.Containers {
			kv("Container "+c.Name, render.Plural(len(c.Starts), "start"))
		}
		for _, tk := range p.Tokens {
			kv("Token", tokenLine(tk))
		}
		for _, o := range p.Other {
			kv("Unexpected entry", o)
		}
	}
	list("FINDINGS", "Findings", len(r.Findings))
	for _, f := range r.Findings {
		kv(f.Severity.String(), fmt.Sprintf("%s %s: %s", f.Analyzer, f.Kind, f.Summary))
	}
	return t
}

// fileLine names a file of the node with its modification time.
func fileLine(f kube.FileInfo) string {
	if !f.Exists {
		return f.Path + " (missing)"
	}
	return fmt.Sprintf("%s (modified %s)", f.Path, f.Mtime)
}

func userLine(u kube.KubeUser) string {
	s := u.Credential
	switch {
	case u.ClientCertificate != "":
		s += " " + u.ClientCertificate
		if u.ClientCert != nil {
			s += fmt.Sprintf(" (%s, until %s)", u.ClientCert.Subject, u.ClientCert.NotAfter)
		}
	case u.Token != "":
		s += " " + u.Token
	case u.TokenFile != "":
		s += " " + u.TokenFile
	case u.Exec != nil:
		s += " " + u.Exec.Command
	}
	return s
}

// tokenLine shows a token's claims: never the token.
func tokenLine(tk kube.Token) string {
	if tk.TokenSHA256 == "" {
		return tk.Path + ": not a readable token"
	}
	c := tk.Claims
	s := fmt.Sprintf("%s: %s, kid %s, issued %s, expires %s", tk.Path, c.Subject, tk.Header.Kid, c.IssuedAt, c.Expires)
	if c.PodName != "" {
		s += ", bound to pod " + c.Namespace + "/" + c.PodName
	}
	return s
}

type setting struct {
	name  string
	value any
	prov  kube.Provenance
}

// settings lists a KubeletConfig's settings in their declared order, by
// their JSON names.
func settings(c *kube.KubeletConfig) []setting {
	var out []setting
	rv := reflect.ValueOf(c).Elem()
	rt := rv.Type()
	for i := 0; i < rt.NumField(); i++ {
		f := rt.Field(i)
		if !strings.HasPrefix(f.Type.Name(), "Setting[") {
			continue
		}
		fv := rv.Field(i)
		prov, ok := fv.FieldByName("Provenance").Interface().(kube.Provenance)
		if !ok {
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		out = append(out, setting{name: name, value: fv.FieldByName("Value").Interface(), prov: prov})
	}
	return out
}

// settingOrigin says where a setting's value comes from.
func settingOrigin(p kube.Provenance) string {
	var s string
	switch p.Origin {
	case kube.OriginConfigFile, kube.OriginConfigDropIn:
		s = fmt.Sprintf("%s %s in %s", strings.ReplaceAll(p.Origin, "_", " "), p.Key, p.Source)
	case kube.OriginFlag:
		s = "flag " + p.Source
		if p.Var != "" {
			s += " via $" + p.Var
		}
		if p.DefinedIn != "" {
			s += " in " + p.DefinedIn
		}
	default:
		s = p.Source
	}
	if p.Before != nil {
		s += fmt.Sprintf("; was %v in %s (modified %s)", p.Before.Value, p.Before.Source, p.Before.Mtime)
	}
	return s
}
