package forensics

import (
	"context"
	"reflect"
	"testing"

	"github.com/deadnode/deadnode/forensics/containerd"
	"github.com/deadnode/deadnode/forensics/docker"
	"github.com/deadnode/deadnode/forensics/model"
	"github.com/deadnode/deadnode/internal/testfix"
)

func TestFoldDockerTasks(t *testing.T) {
	ctd := func() *containerd.Store {
		return &containerd.Store{Records: model.Records{
			Containers: []model.Container{
				{Runtime: "containerd", ID: "abc", Namespace: "moby", UpperDir: "/var/lib/containerd/s/9/fs", LowerDirs: []string{"/var/lib/containerd/s/4/fs"}, Snapshotter: "overlayfs", SnapshotKey: "abc"},
				{Runtime: "containerd", ID: "k8s", Namespace: "k8s.io"},
			},
			Namespaces: []model.Namespace{{Name: "moby", Containers: 1}, {Name: "k8s.io", Containers: 1}},
		}}
	}
	// Docker's files and containerd's snapshots: one record, Docker's, with
	// containerd's layer dirs when Docker's own have none.
	n := &Node{Runtimes: []model.Runtime{ctd(), &docker.Store{Records: model.Records{Containers: []model.Container{{Runtime: "docker", ID: "abc", Namespace: "moby"}}}}}}
	n.foldDockerTasks()
	all := n.Containers()
	if len(all) != 2 || all[1].Runtime != "docker" || all[1].UpperDir != "/var/lib/containerd/s/9/fs" || !reflect.DeepEqual(all[1].LowerDirs, []string{"/var/lib/containerd/s/4/fs"}) {
		t.Errorf("folded: %+v", all)
	}
	if n.containerdStore().Namespaces[0].Containers != 0 {
		t.Errorf("moby count %d", n.containerdStore().Namespaces[0].Containers)
	}
	// No Docker files at all: the moby namespace is still Docker's.
	n = &Node{Runtimes: []model.Runtime{ctd()}}
	n.foldDockerTasks()
	all = n.Containers()
	if all[1].ID != "abc" || all[1].Runtime != "docker" || all[0].Runtime != "containerd" {
		t.Errorf("moby without Docker files: %+v", all)
	}
}

func TestNamespaceFilterDocker(t *testing.T) {
	for ns, want := range map[string]int{"moby": 3, "k8s.io": 0} {
		n, err := OpenPath(context.Background(), testfix.Fixture(t, "runtimes-c1", "docker-root.tar.gz"), &Options{Namespaces: []string{ns}})
		if err != nil {
			t.Fatal(err)
		}
		if got := len(n.Containers()); got != want {
			t.Errorf("-n %s: %d containers, want %d", ns, got, want)
		}
		n.Close()
	}
}
