package forensics

import (
	"context"
	"errors"

	"github.com/deadnode/deadnode/evidence"
	"github.com/deadnode/deadnode/forensics/kube"
)

// AnalyzerKubelet is the name of the kubelet analyzer (its findings carry
// kube's own analyzer names: kubelet, static_pod, kube_pod, logs).
const AnalyzerKubelet = "kubelet"

// KubeletAnalyzer judges the node's kubelet for Triage: its configuration
// and kubeconfigs (weakened authentication and exposure), its static pods
// (host access, unknown origin), its pods' service-account tokens, and
// the containers' log files (lines out of order, malformed, oversized).
// It sets the case's node.kubelet to a KubeletSummary. Its events are the
// timeline's own (kubelet, static_pod, kube_pod, sa_token and log
// sources), so it returns none.
func KubeletAnalyzer() Analyzer { return kubeletAnalyzer{} }

type kubeletAnalyzer struct{}

func (kubeletAnalyzer) Name() string { return AnalyzerKubelet }

func (kubeletAnalyzer) Analyze(ctx context.Context, n *Node) (AnalyzerResult, error) {
	var res AnalyzerResult
	r, err := n.Kubelet(ctx)
	switch {
	case errors.Is(err, kube.ErrNoKubelet):
	case err != nil:
		if ctx.Err() != nil {
			return res, ctx.Err()
		}
		res.Warnings = append(res.Warnings, evidence.WarningOf(err))
	}
	if r != nil && !errors.Is(err, kube.ErrNoKubelet) {
		res.Findings = append(res.Findings, r.Findings...)
		res.Warnings = append(res.Warnings, r.Warnings...)
		res.Kubelet = SummarizeKubelet(r)
	}
	// Logs are there with or without a kubelet (Docker's, Podman's).
	lf, lw := kube.LogFindings(ctx, n.Src, kube.LogFilter{Containers: n.Containers()})
	if ctx.Err() != nil {
		return res, ctx.Err()
	}
	res.Findings = append(res.Findings, lf...)
	if len(lw) > maxKubeletWarnings {
		lw = append(lw[:maxKubeletWarnings], evidence.Warnf("", -1, "… more log warnings left out"))
	}
	res.Warnings = append(res.Warnings, lw...)
	return res, nil
}

// maxKubeletWarnings bounds the log warnings a case keeps.
const maxKubeletWarnings = 1000

// KubeletSummary is what a case says of the node's kubelet (node.kubelet):
// the settings that decide who may talk to it, where its static pods
// come from, and counts of what it holds. `deadnode kubelet` gives the
// whole report.
type KubeletSummary struct {
	Unit                  string   `json:"unit"`        // the unit file, "" when none
	ConfigFile            string   `json:"config_file"` // "" when the kubelet runs on flags only
	AnonymousAuth         bool     `json:"anonymous_auth"`
	AuthorizationMode     string   `json:"authorization_mode"`
	WebhookAuthn          bool     `json:"webhook_authn"`
	ClientCAFile          string   `json:"client_ca_file"`
	ReadOnlyPort          int64    `json:"read_only_port"`
	Port                  int64    `json:"port"`
	ProtectKernelDefaults bool     `json:"protect_kernel_defaults"`
	StaticPodPath         string   `json:"static_pod_path"`
	StaticPodURL          string   `json:"static_pod_url"`
	StaticPods            []string `json:"static_pods"` // namespace/name of every static pod manifest
	APIServers            []string `json:"api_servers"` // the kubeconfigs' servers
	PodDirs               int      `json:"pod_dirs"`
	ServiceAccountTokens  int      `json:"service_account_tokens"`
}

// SummarizeKubelet makes a report's KubeletSummary.
func SummarizeKubelet(r *kube.KubeletReport) *KubeletSummary {
	s := &KubeletSummary{StaticPodPath: r.StaticPodPath, StaticPods: []string{}, APIServers: []string{}, PodDirs: len(r.Pods)}
	if r.Unit != nil && r.Unit.Fragment != nil {
		s.Unit = r.Unit.Fragment.Path
	}
	if c := r.Config; c != nil {
		if c.ConfigFile != nil {
			s.ConfigFile = c.ConfigFile.Path
		}
		s.AnonymousAuth, s.AuthorizationMode, s.WebhookAuthn = c.AnonymousAuth.Value, c.AuthorizationMode.Value, c.WebhookAuthn.Value
		s.ClientCAFile, s.ReadOnlyPort, s.Port = c.ClientCAFile.Value, c.ReadOnlyPort.Value, c.Port.Value
		s.ProtectKernelDefaults, s.StaticPodURL = c.ProtectKernelDefaults.Value, c.StaticPodURL.Value
	}
	for _, p := range r.StaticPods {
		s.StaticPods = append(s.StaticPods, p.Namespace+"/"+p.Name)
	}
	seen := map[string]bool{}
	for _, k := range r.Kubeconfigs {
		for _, c := range k.Clusters {
			if c.Server != "" && !seen[c.Server] {
				seen[c.Server] = true
				s.APIServers = append(s.APIServers, c.Server)
			}
		}
	}
	for _, p := range r.Pods {
		s.ServiceAccountTokens += len(p.Tokens)
	}
	return s
}
