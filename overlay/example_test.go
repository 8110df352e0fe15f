package overlay_test

import (
	"context"
	"fmt"
	"io/fs"
	"log"
	"strings"

	"github.com/deadnode/deadnode/evidence"
	"github.com/deadnode/deadnode/overlay"
)

// Open a node's evidence, build the merged root of its attacked container
// from the container's snapshot directories (upper first), and walk it
// with io/fs as any Go program walks a filesystem.
func Example() {
	ev, err := evidence.Open(context.Background(), "../testdata/containerd-node/containerd-node.tar.gz", &evidence.OpenOptions{NoCache: true})
	if err != nil {
		log.Fatal(err)
	}
	defer ev.Close()
	const snapshots = "var/lib/containerd/io.containerd.snapshotter.v1.overlayfs/snapshots/"
	var layers []overlay.Layer
	for _, n := range []string{"6", "3", "2"} { // the app container: its upper dir, then the image's layers
		layers = append(layers, overlay.Layer{Source: ev.Source, Dir: snapshots + n + "/fs", Kind: overlay.LayerDir, Name: n})
	}
	v, err := overlay.New(layers, nil)
	if err != nil {
		log.Fatal(err)
	}
	fs.WalkDir(v, "tmp", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		e, _ := d.Info()
		fmt.Printf("%-20s %-4s layer %s\n", p, evidence.TypeName(e.Mode()), e.Sys().(*overlay.Entry).Origin.LayerName)
		return nil
	})
	b, _ := fs.ReadFile(v, "etc/passwd")
	fmt.Println(strings.Count(string(b), "\n"), "accounts; the last:", strings.Fields(string(b))[strings.Count(string(b), "\n")-1])
	// Output:
	// tmp                  dir  layer 6
	// tmp/.x               dir  layer 6
	// tmp/.x/miner         file layer 6
	// tmp/heartbeat        file layer 6
	// tmp/server.log       file layer 6
	// 7 accounts; the last: sysupd:x:0:0:sysupd:/root:/bin/sh
}

// Walk streams the merged tree: entries come one at a time in lexical
// order, and a tree deeper than the bound is reported, not followed.
func ExampleView_Walk() {
	ev, err := evidence.Open(context.Background(), "../testdata/containerd-node/containerd-node.tar.gz", &evidence.OpenOptions{NoCache: true})
	if err != nil {
		log.Fatal(err)
	}
	defer ev.Close()
	const snapshots = "var/lib/containerd/io.containerd.snapshotter.v1.overlayfs/snapshots/"
	v, err := overlay.New([]overlay.Layer{
		{Source: ev.Source, Dir: snapshots + "6/fs", Kind: overlay.LayerDir, Name: "upper"},
		{Source: ev.Source, Dir: snapshots + "3/fs", Kind: overlay.LayerDir, Name: "app"},
		{Source: ev.Source, Dir: snapshots + "2/fs", Kind: overlay.LayerDir, Name: "busybox"},
	}, nil)
	if err != nil {
		log.Fatal(err)
	}
	for e, err := range v.Walk(context.Background(), "opt") {
		if err != nil {
			fmt.Println("warning:", err)
			continue
		}
		fmt.Println(e.Path, e.Type(), e.Stat.Size, e.Origin.LayerName, e.Opaque)
	}
	// Output:
	// opt dir 0 app false
	// opt/cache dir 0 app true
	// opt/cache/c.dat file 24 app false
}
