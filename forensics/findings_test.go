package forensics

import (
	"context"
	"testing"

	"github.com/deadnode/deadnode/checkpoint"
	"github.com/deadnode/deadnode/forensics/model"
	"github.com/deadnode/deadnode/internal/testfix"
)

// The attacked container of the sample node: what drift finds is judged
// as an examiner would — the ELF dropped in a hidden volatile dir high,
// the persistence script and /etc/passwd change high, runc's mount points
// info — and the checkpoint's miner process, running from the container
// diff with a connection, critical.
func TestFindingsOfTheAttackedContainer(t *testing.T) {
	n, err := OpenPath(testfix.NodeArchive(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	c, err := n.FindContainer("shop/shop-frontend-7d9c8b6f5-x2k4q/app")
	if err != nil {
		t.Fatal(err)
	}
	ds, err := n.ContainerDrift(c)
	if err != nil {
		t.Fatal(err)
	}
	entries, _, err := DriftAll(context.Background(), ds, nil)
	if err != nil {
		t.Fatal(err)
	}
	sev := map[string]model.Severity{}
	for _, e := range entries {
		f := e.Finding()
		if f.Why == "" || f.Summary == "" || f.ContainerID != c.ID || f.Pod != "shop/shop-frontend-7d9c8b6f5-x2k4q" {
			t.Errorf("incomplete finding %+v", f)
		}
		sev[e.Path] = f.Severity
	}
	for p, want := range map[string]model.Severity{
		"/tmp/.x/miner":              model.SeverityHigh,
		"/usr/local/bin/backdoor.sh": model.SeverityMedium,
		"/etc/passwd":                model.SeverityHigh,
		"/etc/hosts":                 model.SeverityInfo,
		"/etc/resolv.conf":           model.SeverityInfo,
		"/tmp/server.log":            model.SeverityInfo,
	} {
		if got, ok := sev[p]; !ok || got != want {
			t.Errorf("%s: %v (found %v), want %v", p, got, ok, want)
		}
	}
	cp, err := n.OpenCheckpoint(context.Background(), "sha256:59633960fda9a188befcefff9d80fd7afe76cbe3540012e71f55835d04873a96", &checkpoint.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer cp.Close()
	fs := CheckpointFindings(cp, "containerd")
	var miner *model.Finding
	for i := range fs {
		if fs[i].Pid != nil && *fs[i].Pid == 50 {
			miner = &fs[i]
		}
	}
	if len(fs) != 2 || miner == nil || miner.Kind != "process_from_container_diff" || miner.Path != "/tmp/.x/miner" {
		t.Fatalf("checkpoint findings %+v", fs)
	}
	if miner.Severity < model.SeverityHigh {
		t.Errorf("miner %v", miner.Severity)
	}
}
