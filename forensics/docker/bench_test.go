package docker

import (
	"testing"

	"github.com/deadnode/deadnode/evidence"
	"github.com/deadnode/deadnode/forensics/model"
	"github.com/deadnode/deadnode/internal/gennode"
)

func genRoot(t testing.TB, n int) evidence.Source {
	t.Helper()
	dir := t.TempDir()
	if err := gennode.Docker(dir, n); err != nil {
		t.Fatal(err)
	}
	src, err := evidence.OpenDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { src.Close() })
	return src
}

// The generated tree reads back exactly as planned.
func TestGeneratedDockerRoot(t *testing.T) {
	const n = 60
	s, err := Open(genRoot(t, n), nil)
	if err != nil {
		t.Fatal(err)
	}
	plan := gennode.PlanDocker(n)
	if len(s.Warnings) != 0 || len(s.Orphans) != 0 {
		t.Fatalf("warnings %q orphans %v", s.Warnings[:min(5, len(s.Warnings))], s.Orphans)
	}
	states := map[string]int{}
	sandboxes := 0
	for _, c := range s.Containers {
		states[c.Status.State]++
		if c.Kind == model.KindSandbox {
			sandboxes++
		}
		if len(c.LowerDirs) != 4 || c.Pod == nil || c.Spec == nil || len(c.Spec.Mounts) != 1 {
			t.Errorf("%s: lowers %v pod %v", c.ID, c.LowerDirs, c.Pod)
		}
	}
	if len(s.Containers) != plan.Containers || sandboxes != plan.Sandboxes || states[model.StateRunning] != plan.Running || states[model.StateExited] != plan.Exited || states[model.StateCreated] != plan.Created {
		t.Errorf("%d containers, %d sandboxes, states %v; plan %+v", len(s.Containers), sandboxes, states, plan)
	}
	if len(s.Layers) != plan.Layers || len(s.Images) != plan.Images || len(s.Pods) != plan.Sandboxes {
		t.Errorf("%d layers %d images %d pods; plan %+v", len(s.Layers), len(s.Images), len(s.Pods), plan)
	}
	c := s.Containers[0]
	for _, x := range s.Containers {
		if x.ID == gennode.DockerContainerID(1) {
			c = x
		}
	}
	if c.UpperDir != "/var/lib/docker/overlay2/"+gennode.DockerMountID(1)+"/diff" || c.LowerDirs[0] != "/var/lib/docker/overlay2/"+gennode.DockerMountID(1)+"-init/diff" ||
		c.LowerDirs[3] != "/var/lib/docker/overlay2/"+gennode.DockerCacheID(0)+"/diff" {
		t.Errorf("container 1: %s %v", c.UpperDir, c.LowerDirs)
	}
}

// BenchmarkListContainers500 opens a generated 500-container Docker root
// (a host directory) and lists its containers with their layers, state and
// pods.
func BenchmarkListContainers500(b *testing.B) {
	src := genRoot(b, 500)
	b.ReportAllocs()
	for b.Loop() {
		s, err := Open(src, nil)
		if err != nil {
			b.Fatal(err)
		}
		if len(s.Containers) != 500 || len(s.Warnings) != 0 {
			b.Fatalf("%d containers, %d warnings", len(s.Containers), len(s.Warnings))
		}
	}
}
