// Command listcontainers shows how a Go program uses deadnode as a
// library: it opens a node's evidence and prints its pods, their
// containers, and each container's layer directories inside the evidence.
//
//	go run ./examples/listcontainers testdata/containerd-node/containerd-node.tar.gz
package main

import (
	"context"
	"fmt"
	"os"

	"github.com/deadnode/deadnode/forensics"
	"github.com/deadnode/deadnode/forensics/model"
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: listcontainers EVIDENCE (a directory or a .tar/.tar.gz/.tar.zst)")
		os.Exit(2)
	}
	node, err := forensics.OpenPath(context.Background(), os.Args[1], nil)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	defer node.Close()

	byID := map[string]model.Container{}
	for _, c := range node.Containers() {
		byID[c.Namespace+"/"+c.ID] = c
	}
	printLayers := func(indent string, c model.Container) {
		fmt.Printf("%supper %s\n", indent, c.UpperDir)
		for _, l := range c.LowerDirs {
			fmt.Printf("%slower %s\n", indent, l)
		}
	}
	inPod := map[string]bool{}
	for _, p := range node.Pods() {
		fmt.Printf("pod %s/%s (uid %s, ip %s)\n", p.Namespace, p.Name, p.UID, p.IP)
		for _, pc := range p.Containers {
			c := byID[p.RuntimeNS+"/"+pc.ID]
			inPod[p.RuntimeNS+"/"+pc.ID] = true
			fmt.Printf("  container %s %s [%s] image %s\n", pc.Name, pc.ID, c.Status.State, c.Image)
			printLayers("    ", c)
		}
	}
	for _, c := range node.Containers() {
		if c.Kind == model.KindContainer && !inPod[c.Namespace+"/"+c.ID] {
			fmt.Printf("no pod: container %s/%s [%s] image %s\n", c.Namespace, c.ID, c.Status.State, c.Image)
			printLayers("    ", c)
		}
	}
}
