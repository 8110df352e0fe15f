package checkpoint_test

import (
	"context"
	"fmt"
	"strings"

	"github.com/deadnode/deadnode/checkpoint"
	"github.com/deadnode/deadnode/evidence"
)

// Open a directory of CRIU images (a raw `criu dump`) and list its tasks.
func ExampleOpenPath() {
	cp, err := checkpoint.OpenPath(context.Background(), "testdata/criu-dump/images", nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer cp.Close()
	fmt.Println("CRIU", cp.CRIUVersion, cp.Format)
	for _, p := range cp.Processes {
		fmt.Printf("%d %s (%s, %d threads) %q\n", p.PID, p.Comm, p.Exe, len(p.Threads), p.Cmdline)
		for _, s := range p.Sockets {
			fmt.Printf("  fd %d %s %s %s\n", s.FD, s.Protocol, s.State, s.Src)
		}
	}
	// Output:
	// CRIU 4.1.1 criu
	// 1360 forge-target (/tmp/forge/criu-target/forge-target, 4 threads) ["./forge-target" "/tmp/forge/criu-target"]
	//   fd 5 tcp LISTEN 127.0.0.1:9099
}

// Open the checkpoint of a container from a node's containerd content
// store (the committed sample node) and print its process tree.
func ExampleOpenContainerd() {
	ctx := context.Background()
	node, err := evidence.OpenArchive(context.Background(), "../testdata/containerd-node/containerd-node.tar.gz", nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer node.Close()
	const content = "node/var/lib/containerd/io.containerd.content.v1.content"
	found, err := checkpoint.FindContainerd(ctx, node, content)
	if err != nil || len(found) == 0 {
		fmt.Println(found, err)
		return
	}
	cp, err := checkpoint.OpenContainerd(ctx, node, content, found[0].Digest, nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer cp.Close()
	fmt.Println(cp.Container.Image, cp.Container.Namespace+"/"+cp.Container.Pod)
	kids := map[uint32][]checkpoint.Process{}
	for _, p := range cp.Processes {
		kids[p.PPID] = append(kids[p.PPID], p)
	}
	var tree func(ppid uint32, depth int)
	tree = func(ppid uint32, depth int) {
		for _, p := range kids[ppid] {
			fmt.Printf("%s%d %s %s (%s)\n", strings.Repeat("  ", depth), p.PID, p.Comm, p.Exe, p.ExeOrigin)
			tree(p.PID, depth+1)
		}
	}
	tree(0, 0)
	// Output:
	// forge.local/shop/app:1.0 shop/shop-frontend-7d9c8b6f5-x2k4q
	// 1 server.sh /bin/busybox (unknown)
	//   8 httpd /bin/busybox (unknown)
	//   50 miner /tmp/.x/miner (container_diff)
	//     91 sleep /tmp/.x/miner (container_diff)
	//   51 nc /bin/busybox (unknown)
	//   93 sleep /bin/busybox (unknown)
}
