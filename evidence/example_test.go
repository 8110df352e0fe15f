package evidence_test

import (
	"context"
	"errors"
	"fmt"
	"log"

	"github.com/deadnode/deadnode/evidence"
)

// Open decides by content what a path is and reads a collection from its
// single top-level directory, saying so in a note.
func ExampleOpen() {
	ev, err := evidence.Open(context.Background(), "../testdata/containerd-node/containerd-node.tar.gz", &evidence.OpenOptions{NoCache: true})
	if err != nil {
		log.Fatal(err)
	}
	defer ev.Close()
	fmt.Println(ev.Kind, ev.Size, ev.Root)
	for _, n := range ev.Notes {
		fmt.Println("note:", n)
	}
	names, _ := evidence.ReadDirNames(ev.Source, ".")
	fmt.Println(names)
	st, _ := ev.Source.Lstat("var/lib/containerd/io.containerd.metadata.v1.bolt/meta.db")
	fmt.Println(st.Name, evidence.TypeName(st.Mode), evidence.ModeString(st.Mode), st.Size)
	// Output:
	// tar.gz 5980243 node
	// note: the evidence holds one top-level directory "node" and no root of its own; reading it as the node's root
	// [etc run var]
	// var/lib/containerd/io.containerd.metadata.v1.bolt/meta.db file 0644 524288
}

// Walk visits a tree in lexical order without following links; a tree
// deeper than DefaultMaxDepth is reported with a *DepthError.
func ExampleWalk() {
	ev, err := evidence.Open(context.Background(), "../testdata/containerd-node/containerd-node.tar.gz", &evidence.OpenOptions{NoCache: true})
	if err != nil {
		log.Fatal(err)
	}
	defer ev.Close()
	err = evidence.Walk(context.Background(), ev.Source, "etc/containerd", func(st *evidence.Stat, err error) error {
		var deep *evidence.DepthError
		if errors.As(err, &deep) {
			fmt.Println("too deep:", deep.Path)
			return nil
		}
		if err != nil {
			return err
		}
		fmt.Println(st.Name, evidence.TypeName(st.Mode))
		return nil
	})
	fmt.Println(err)
	// Output:
	// etc/containerd dir
	// etc/containerd/config.toml file
	// <nil>
}
