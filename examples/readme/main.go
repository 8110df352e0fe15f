// Command readme is the README's library snippet, as a program: it opens
// the sample node collection and prints each container's namespace, id, kind
// and state. Its test checks that it prints what the README says.
//
//	go run ./examples/readme
package main

import (
	"context"
	"fmt"
	"io"
	"log"
	"os"

	"github.com/deadnode/deadnode/forensics"
)

func main() {
	path := "testdata/containerd-node/containerd-node.tar.gz"
	if len(os.Args) > 1 {
		path = os.Args[1]
	}
	if err := run(os.Stdout, path); err != nil {
		log.Fatal(err)
	}
}

func run(w io.Writer, path string) error {
	node, err := forensics.OpenPath(context.Background(), path, nil)
	if err != nil {
		return err
	}
	defer node.Close()
	for _, c := range node.Containers() {
		fmt.Fprintln(w, c.Namespace, c.ID, c.Kind, c.Status.State)
	}
	return nil
}
