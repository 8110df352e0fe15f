package kube

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/deadnode/deadnode/evidence"
	"github.com/deadnode/deadnode/forensics/classify"
	"github.com/deadnode/deadnode/forensics/internal/pathutil"
	"github.com/deadnode/deadnode/forensics/model"
)

// ErrNoKubelet is returned (with an empty report) when the evidence holds
// no trace of a kubelet: no unit, no config file, no static pod directory
// and no pod directories.
var ErrNoKubelet = errors.New("no kubelet found in the evidence")

// Options tune Kubelet.
type Options struct {
	// RuntimePods are the runtimes' pods, to name pod directories.
	RuntimePods []model.Pod
	// StaticPodPath overrides the static pod path read (a path of the node).
	StaticPodPath string
	// NoPods skips the pod directories.
	NoPods bool
}

// KubeletReport is everything the node says of its kubelet.
type KubeletReport struct {
	Unit        *Unit          `json:"unit"`
	Flags       []Flag         `json:"flags"`
	Config      *KubeletConfig `json:"config"`
	Kubeconfigs []Kubeconfig   `json:"kubeconfigs"`
	// StaticPodPath is the directory read for static pods, and whether
	// the kubelet's configuration names it.
	StaticPodPath           string             `json:"static_pod_path"`
	StaticPodPathConfigured bool               `json:"static_pod_path_configured"`
	StaticPods              []StaticPod        `json:"static_pods"`
	Pods                    []PodDir           `json:"pods"`
	Findings                []model.Finding    `json:"findings"`
	Warnings                []evidence.Warning `json:"warnings"`
}

// Kubelet reads the kubelet of the node: its systemd unit and flags, its
// effective configuration, the kubeconfigs it uses, its static pods and
// its pod directories; and judges them (weakened authentication, static
// pods with host access or of unknown origin, service-account tokens).
func Kubelet(ctx context.Context, src evidence.Source, opt Options) (*KubeletReport, error) {
	r := &KubeletReport{}
	u := ReadUnit(src)
	r.Unit = u
	haveUnit := u.Fragment != nil || len(u.DropIns) > 0
	var fw []evidence.Warning
	r.Flags, fw = ParseFlags(u.Args)
	r.Warnings = append(r.Warnings, u.Warnings...)
	r.Warnings = append(r.Warnings, fw...)
	cfg, cw := resolveConfig(src, r.Flags, haveUnit)
	r.Config = cfg
	r.Warnings = append(r.Warnings, cw...)
	if err := ctx.Err(); err != nil {
		return r, err
	}
	for _, k := range []struct {
		s    Setting[string]
		role string
	}{{cfg.Kubeconfig, "kubeconfig"}, {cfg.BootstrapKubeconfig, "bootstrap_kubeconfig"}} {
		if k.s.Value == "" {
			continue
		}
		kc := ReadKubeconfig(src, k.s.Value, k.role, k.s.Source)
		r.Kubeconfigs = append(r.Kubeconfigs, kc)
	}
	// Static pods.
	r.StaticPodPath, r.StaticPodPathConfigured = cfg.StaticPodPath.Value, cfg.StaticPodPath.Value != ""
	if opt.StaticPodPath != "" {
		r.StaticPodPath, r.StaticPodPathConfigured = opt.StaticPodPath, opt.StaticPodPath == cfg.StaticPodPath.Value
	}
	if r.StaticPodPath == "" {
		r.StaticPodPath = pathutil.Abs(defaultStaticPodPath)
	}
	sp, sw := StaticPods(ctx, src, StaticPodOptions{Path: r.StaticPodPath, Configured: r.StaticPodPathConfigured})
	r.StaticPods = sp
	r.Warnings = append(r.Warnings, sw...)
	if !opt.NoPods {
		pods, pw := Pods(ctx, src, PodOptions{RootDir: cfg.RootDir.Value, PodLogsDir: cfg.PodLogsDir.Value, Runtime: opt.RuntimePods})
		r.Pods = pods
		r.Warnings = append(r.Warnings, pw...)
	}
	if haveUnit || cfg.ConfigFile != nil {
		r.Findings = append(r.Findings, ConfigFindings(cfg, u)...)
	} else {
		r.Warnings = append(r.Warnings, evidence.Warnf("", -1, "no kubelet unit and no kubelet config file: the kubelet's settings are unknown, and not judged"))
	}
	for _, k := range r.Kubeconfigs {
		r.Findings = append(r.Findings, KubeconfigFindings(k)...)
	}
	for i := range r.StaticPods {
		r.Findings = append(r.Findings, r.StaticPods[i].Finding())
	}
	for i := range r.Pods {
		r.Findings = append(r.Findings, PodFindings(&r.Pods[i])...)
	}
	model.SortFindings(r.Findings)
	nonNil(r)
	if !haveUnit && cfg.ConfigFile == nil && len(r.StaticPods) == 0 && len(r.Pods) == 0 {
		if _, _, st, _ := statPath(src, r.StaticPodPath); st == nil {
			return r, ErrNoKubelet
		}
	}
	return r, ctx.Err()
}

// SettingRecord is a kubelet finding's own record: the setting, its value
// and where it came from.
type SettingRecord struct {
	Setting string `json:"setting"`
	Value   any    `json:"value"`
	Provenance
}

func record(name string, v any, p Provenance) SettingRecord {
	return SettingRecord{Setting: name, Value: v, Provenance: p}
}

// where names the file a setting was read in, for a finding's Path.
func where(p Provenance) string {
	switch p.Origin {
	case OriginConfigFile, OriginConfigDropIn:
		return p.Source
	case OriginFlag:
		return p.DefinedIn
	}
	return ""
}

func from(p Provenance) string {
	switch p.Origin {
	case OriginConfigFile, OriginConfigDropIn:
		return fmt.Sprintf("%s in %s", p.Key, p.Source)
	case OriginFlag:
		s := "flag " + p.Source
		if p.Var != "" {
			s += " (via $" + p.Var + ")"
		}
		if p.DefinedIn != "" {
			s += " in " + p.DefinedIn
		}
		return s
	case OriginFlagDefault:
		return "the command line's default, as no --config is given"
	case OriginDefault:
		return "the kubelet's default"
	}
	return p.Source
}

func beforeText(p Provenance) string {
	if p.Before == nil {
		return ""
	}
	return fmt.Sprintf("; it was %v in %s (modified %s)", p.Before.Value, p.Before.Source, p.Before.Mtime)
}

// ConfigFindings judges the kubelet's authentication, authorization and
// exposure. Severities:
//   - authorization AlwaysAllow: critical — every request the kubelet
//     authenticates (anonymous ones too when anonymous auth is on) may
//     exec into, read logs of and port-forward to every pod of the node.
//   - anonymous auth enabled: high — unauthenticated requests to the
//     kubelet API are accepted as system:anonymous.
//   - read-only port open: medium — /pods (every pod's spec and
//     environment), /stats, /metrics served without authentication; high
//     when an earlier copy of the config shows it closed.
//   - webhook token authentication disabled, no client CA: low; medium
//     when anonymous auth is also on (then those clients land as
//     system:anonymous).
//   - a static pod URL: medium — pods the node runs from a server,
//     invisible here.
//
// A setting an earlier copy of the config file shows safer raises its
// finding one step (the change is what attackers do). With the kubelet's
// server disabled (enableServer false) the server findings are low.
func ConfigFindings(c *KubeletConfig, u *Unit) []model.Finding {
	var out []model.Finding
	serverOff := !c.EnableServer.Value
	// wasSafe says whether an earlier copy's value would not have raised
	// the finding.
	add := func(sev model.Severity, kind, why, summary string, rec SettingRecord, wasSafe func(any) bool) {
		if rec.Before != nil && wasSafe(rec.Before.Value) && sev < model.SeverityCritical {
			sev++
		}
		if serverOff && sev > model.SeverityLow && kind != "static_pod_url" {
			sev = model.SeverityLow
			why += "; the kubelet's server is disabled (enableServer false), so nothing listens"
		}
		p := where(rec.Provenance)
		f := model.Finding{Severity: sev, Analyzer: "kubelet", Kind: kind, Why: why, Path: p, EvidencePath: p,
			Summary: summary, Refs: []string{"setting:" + rec.Setting}, Details: rec}
		if u != nil && p == "" && u.Fragment != nil {
			f.EvidencePath = u.Fragment.EvidencePath
		}
		out = append(out, f)
	}
	anon := c.AnonymousAuth.Value
	port := c.Port.Value
	if c.AuthorizationMode.Value == "AlwaysAllow" {
		who := "every authenticated client (with webhook token authentication, any service account)"
		if anon {
			who = "anyone who reaches the node, since anonymous auth is on,"
		}
		add(model.SeverityCritical, "authorization_always_allow",
			fmt.Sprintf("authorization mode AlwaysAllow (%s): %s may run commands in, read logs of and port-forward to every pod through the kubelet API on port %d%s", from(c.AuthorizationMode.Provenance), who, port, beforeText(c.AuthorizationMode.Provenance)),
			"kubelet authorization AlwaysAllow", record("authorization_mode", c.AuthorizationMode.Value, c.AuthorizationMode.Provenance), func(v any) bool { return v != "AlwaysAllow" })
	}
	if anon {
		add(model.SeverityHigh, "anonymous_auth",
			fmt.Sprintf("anonymous authentication is enabled (%s): requests without credentials to the kubelet API on port %d are accepted as system:anonymous, authorized by mode %s%s", from(c.AnonymousAuth.Provenance), port, c.AuthorizationMode.Value, beforeText(c.AnonymousAuth.Provenance)),
			"kubelet anonymous auth enabled", record("anonymous_auth", true, c.AnonymousAuth.Provenance), func(v any) bool { return v == false })
	}
	if ro := c.ReadOnlyPort.Value; ro > 0 {
		add(model.SeverityMedium, "read_only_port",
			fmt.Sprintf("the read-only port %d is open (%s): it serves /pods (every pod's spec and environment), /stats and /metrics with no authentication%s", ro, from(c.ReadOnlyPort.Provenance), beforeText(c.ReadOnlyPort.Provenance)),
			fmt.Sprintf("kubelet read-only port %d open", ro), record("read_only_port", ro, c.ReadOnlyPort.Provenance), func(v any) bool { return v == int64(0) })
	}
	if !c.WebhookAuthn.Value {
		sev, tail := model.SeverityLow, ""
		if anon {
			sev, tail = model.SeverityMedium, "; with anonymous auth on, they are served as system:anonymous"
		}
		add(sev, "webhook_authn_disabled",
			fmt.Sprintf("webhook token authentication is disabled (%s): bearer tokens (service accounts, users) are not checked with the API server%s%s", from(c.WebhookAuthn.Provenance), tail, beforeText(c.WebhookAuthn.Provenance)),
			"kubelet webhook token authentication disabled", record("webhook_authn", false, c.WebhookAuthn.Provenance), func(v any) bool { return v == true })
	}
	if c.ClientCAFile.Value == "" {
		sev, tail := model.SeverityLow, ""
		if anon {
			sev, tail = model.SeverityMedium, "; with anonymous auth on, they are served as system:anonymous"
		}
		add(sev, "no_client_ca",
			fmt.Sprintf("no client CA file: X.509 client certificates (the API server's own kubelet client among them) are not authenticated%s", tail),
			"kubelet has no client CA", record("client_ca_file", "", c.ClientCAFile.Provenance), func(v any) bool { return v != "" })
	}
	if c.StaticPodURL.Value != "" {
		add(model.SeverityMedium, "static_pod_url",
			fmt.Sprintf("the kubelet also runs static pods fetched from %s (%s): whoever controls that server runs pods on this node, and deadnode cannot see them", c.StaticPodURL.Value, from(c.StaticPodURL.Provenance)),
			"kubelet static pods from URL "+c.StaticPodURL.Value, record("static_pod_url", c.StaticPodURL.Value, c.StaticPodURL.Provenance), func(v any) bool { return v == "" })
	}
	return out
}

// KubeconfigFindings judges a kubeconfig the kubelet uses: TLS
// verification off (medium: the kubelet's API server connection can be
// intercepted, and the pods it is told to run forged), and an exec
// credential plugin run from a hidden or volatile location (high: the
// kubelet runs it with its own privileges).
func KubeconfigFindings(k Kubeconfig) []model.Finding {
	var out []model.Finding
	for _, c := range k.Clusters {
		if c.InsecureSkipTLSVerify {
			out = append(out, model.Finding{Severity: model.SeverityMedium, Analyzer: "kubelet", Kind: "kubeconfig_insecure_tls",
				Why:  fmt.Sprintf("the kubelet's %s %s does not verify the API server %s's certificate (insecure-skip-tls-verify): its connection can be intercepted and the pods it is told to run forged", k.Role, k.Path, c.Server),
				Path: k.Path, EvidencePath: k.EvidencePath, Summary: "kubeconfig skips TLS verification for " + c.Server, Refs: []string{}, Details: k})
		}
	}
	for _, u := range k.Users {
		if u.Exec == nil || u.Exec.Command == "" {
			continue
		}
		cmd := u.Exec.Command
		if classify.Hidden(cmd) || classify.Volatile(cmd) {
			out = append(out, model.Finding{Severity: model.SeverityHigh, Analyzer: "kubelet", Kind: "kubeconfig_exec_plugin",
				Why:  fmt.Sprintf("the kubelet's %s %s runs the credential plugin %s from a hidden or volatile location, with the kubelet's privileges", k.Role, k.Path, cmd),
				Path: k.Path, EvidencePath: k.EvidencePath, Summary: "kubeconfig exec plugin " + cmd, Refs: []string{"path:" + cmd}, Details: k})
		}
	}
	return out
}

// PodFindings judges a pod directory's service-account tokens:
//   - every token is an info finding: the identity it grants, and until
//     when (whoever holds the disk holds the token);
//   - a token whose pod claims name another pod than the directory's:
//     high (a token carried from elsewhere);
//   - a legacy secret-based token (no expiry): low;
//   - a "token" file that is not a readable JWT: low.
func PodFindings(p *PodDir) []model.Finding {
	var out []model.Finding
	pod := ""
	if p.Name != "" {
		pod = p.Namespace + "/" + p.Name
	}
	for i := range p.Tokens {
		t := &p.Tokens[i]
		base := model.Finding{Analyzer: "kube_pod", Pod: pod, Path: t.Path, EvidencePath: t.EvidencePath, Details: t, Refs: []string{}}
		if t.TokenSHA256 != "" {
			base.Refs = append(base.Refs, "sha256:"+t.TokenSHA256)
		}
		if t.Header.Kid != "" {
			base.Refs = append(base.Refs, "kid:"+t.Header.Kid)
		}
		if t.TokenSHA256 == "" {
			f := base
			f.Severity, f.Kind = model.SeverityLow, "unreadable_token"
			f.Why = fmt.Sprintf("%s in volume %s of pod %s is not a readable service-account token: %s", t.RelPath, t.Volume, p.UID, strings.Join(evidence.WarningLines(t.Warnings), "; "))
			f.Summary = "unreadable token " + t.Path
			out = append(out, f)
			continue
		}
		cl := t.Claims
		f := base
		f.Severity, f.Kind = model.SeverityInfo, "service_account_token"
		until := "with no expiry"
		if !cl.Expires.IsZero() {
			until = "valid until " + cl.Expires.String()
		}
		f.Why = fmt.Sprintf("a service-account token for %s (issued %s, %s) lies in volume %s of pod %s: whoever holds the disk holds that identity until it expires", cl.Subject, cl.IssuedAt, until, t.Volume, p.UID)
		f.Summary = fmt.Sprintf("token %s (kid %s) %s", cl.Subject, t.Header.Kid, until)
		out = append(out, f)
		if cl.PodUID != "" && cl.PodUID != p.UID {
			g := base
			g.Severity, g.Kind = model.SeverityHigh, "token_of_another_pod"
			g.Why = fmt.Sprintf("the token in %s is bound to pod %s/%s (uid %s), not to the pod whose directory holds it (uid %s): a token carried from elsewhere", t.Path, cl.Namespace, cl.PodName, cl.PodUID, p.UID)
			g.Summary = "token of another pod in " + t.Path
			out = append(out, g)
		}
		if cl.Legacy || cl.Expires.IsZero() {
			g := base
			g.Severity, g.Kind = model.SeverityLow, "non_expiring_token"
			g.Why = fmt.Sprintf("the token in %s for %s has no expiry (a legacy secret-based token): a copy stays valid until its secret is deleted", t.Path, cl.Subject)
			g.Summary = "non-expiring token " + t.Path
			out = append(out, g)
		}
	}
	return out
}
