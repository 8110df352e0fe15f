package testfix

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
)

// HostTruth is testdata/kube-host/expected-host.json, the shared host
// fixture's ground truth: the persistence it planted (and found already
// there) and the package drift it made.
type HostTruth struct {
	Persistence []struct {
		Path      string `json:"path"`
		Kind      string `json:"kind"`
		Target    string `json:"target"`
		Malicious bool   `json:"malicious"`
	} `json:"persistence"`
	PackageDrift []struct {
		Path        string  `json:"path"`
		Package     *string `json:"package"`
		Change      string  `json:"change"`
		ExpectedMD5 string  `json:"expected_md5"`
		ActualMD5   string  `json:"actual_md5"`
	} `json:"package_drift"`
	AttackTime string `json:"attack_time"`
}

// LoadHostTruth reads the host fixture's ground truth, checking it is the
// one the tests were written for (17 persistence entries, 4 package
// drift rows, the attack at 2026-11-26 21:14:05).
func LoadHostTruth(t testing.TB) HostTruth {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(RepoRoot(t), "testdata", "kube-host", "expected-host.json"))
	if err != nil {
		t.Fatal(err)
	}
	var h HostTruth
	if err := json.Unmarshal(b, &h); err != nil {
		t.Fatal(err)
	}
	if len(h.Persistence) != 17 || len(h.PackageDrift) != 4 || h.AttackTime != "2026-11-26 21:14:05" {
		t.Fatalf("expected-host.json: %d persistence, %d package rows, attack %q", len(h.Persistence), len(h.PackageDrift), h.AttackTime)
	}
	return h
}

// HostPlanted are the paths the host fixture's planting made besides the
// ground truth's entries: the timer's enablement link and the programs the
// planted entries run (which lie in system directories no package owns).
// Findings above info on these are true positives, not false ones.
var HostPlanted = map[string]bool{
	"/etc/cron.d/apt-compat-check":                                  true,
	"/etc/systemd/system/sysstat-collect.timer":                     true,
	"/etc/systemd/system/sysstat-collect.service":                   true,
	"/etc/systemd/system/timers.target.wants/sysstat-collect.timer": true,
	"/etc/ld.so.preload":                                            true,
	"/root/.ssh/authorized_keys":                                    true,
	"/usr/share/containers/oci/hooks.d/00-metrics.json":             true,
	"/usr/bin/curl":                               true,
	"/usr/bin/dbus-daemon-helper":                 true,
	"/usr/sbin/pam_timestamp_check2":              true,
	"/usr/lib/x86_64-linux-gnu/libnss_cache.so.2": true,
	"/usr/local/lib/.sysstat/collect":             true, // the planted timer's program
	"/usr/local/libexec/oci-metrics":              true, // the planted hook's program
}

// HostKubelet are the node's own kubelet files: no package owns them and
// the ground truth lists them on neither side; the host readers report
// them at low ("unowned but ordinary").
var HostKubelet = map[string]bool{
	"/etc/systemd/system/kubelet.service":                         true,
	"/etc/systemd/system/multi-user.target.wants/kubelet.service": true,
	"/usr/bin/kubelet": true,
}
