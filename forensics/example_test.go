package forensics_test

import (
	"context"
	"fmt"
	"strings"

	"github.com/deadnode/deadnode/forensics"
)

const sampleNode = "../testdata/containerd-node/containerd-node.tar.gz"

// Open a node's evidence and list its pods and their containers.
func Example() {
	node, err := forensics.OpenPath(sampleNode, nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer node.Close()
	for _, p := range node.Pods() {
		fmt.Printf("pod %s/%s\n", p.Namespace, p.Name)
		for _, c := range p.Containers {
			fmt.Printf("  %s %s (%s)\n", c.Name, c.ID[:12], c.State)
		}
	}
	// Output:
	// pod jobs/report-job-28374651-q7wzt
	//   report f617888dbd39 (exited)
	// pod shop/shop-frontend-7d9c8b6f5-x2k4q
	//   app 4b324cab2548 (running)
}

// What the attacker changed in a container: the executables it dropped.
func ExampleDrift() {
	node, err := forensics.OpenPath(sampleNode, nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer node.Close()
	c, err := node.FindContainer("shop/shop-frontend-7d9c8b6f5-x2k4q/app")
	if err != nil {
		fmt.Println(err)
		return
	}
	ds, err := node.ContainerDrift(c)
	if err != nil {
		fmt.Println(err)
		return
	}
	for e, err := range forensics.Drift(context.Background(), ds, nil) {
		if err != nil {
			continue // a warning about one entry; the walk goes on
		}
		if e.IsExec() && !strings.Contains(strings.Join(e.Flags, ","), "benign_runtime") {
			f := e.Finding()
			fmt.Printf("%s %s %s: %s\n", f.Severity, e.Change, e.Path, e.ExecKind)
		}
	}
	// Output:
	// high added /tmp/.x/miner: elf
	// medium added /usr/local/bin/backdoor.sh: script
	// medium added /var/tmp/.kworker: script
}

// Prove that the unpacked layers on disk are the images'.
func ExampleNode_VerifyImages() {
	node, err := forensics.OpenPath(sampleNode, nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer node.Close()
	res, err := node.VerifyImages(context.Background(), []string{"forge.local/shop/app:1.0"}, nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, v := range res {
		fmt.Printf("%s/%s %s\n", v.Namespace, v.Name, v.Status)
		for _, l := range v.Layers {
			fmt.Printf("  layer %d %s\n", l.Index, l.Status)
		}
	}
	// Output:
	// k8s.io/forge.local/shop/app:1.0 verified
	//   layer 0 verified
	//   layer 1 verified
}

// Open a container's checkpoint from the node and print its process tree.
func ExampleNode_OpenCheckpoint() {
	node, err := forensics.OpenPath(sampleNode, nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer node.Close()
	// A checkpoint is named by its image, its digest (or a prefix), or the
	// container it was taken of.
	cp, err := node.OpenCheckpoint(context.Background(), "shop/shop-frontend-7d9c8b6f5-x2k4q/app", nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer cp.Close()
	for _, p := range cp.Processes {
		fmt.Printf("%d (parent %d) %s %s [%s]\n", p.PID, p.PPID, p.Comm, p.Exe, p.ExeOrigin)
	}
	// Output:
	// 1 (parent 0) server.sh /bin/busybox [image]
	// 8 (parent 1) httpd /bin/busybox [image]
	// 50 (parent 1) miner /tmp/.x/miner [container_diff]
	// 91 (parent 50) sleep /tmp/.x/miner [container_diff]
	// 51 (parent 1) nc /bin/busybox [image]
	// 93 (parent 1) sleep /bin/busybox [image]
}
