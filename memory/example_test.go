package memory_test

import (
	"context"
	"fmt"

	"github.com/deadnode/deadnode/checkpoint"
	"github.com/deadnode/deadnode/evidence"
	"github.com/deadnode/deadnode/memory"
)

// Search the memory of a checkpointed container (from the committed
// sample node) for a string: every hit says where its bytes come from.
func ExampleReader_Search() {
	ctx := context.Background()
	node, err := evidence.OpenArchive(context.Background(), "../testdata/containerd-node/containerd-node.tar.gz", nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer node.Close()
	cp, err := checkpoint.OpenContainerd(ctx, node, "node/var/lib/containerd/io.containerd.content.v1.content",
		"sha256:59633960fda9a188befcefff9d80fd7afe76cbe3540012e71f55835d04873a96", nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer cp.Close()
	r, err := memory.Open(cp, nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer r.Close()
	for h, err := range r.Search(ctx, memory.String("WALLET=FORGE"), &memory.SearchOptions{Context: 8}) {
		if err != nil {
			fmt.Println(err)
			continue
		}
		fmt.Printf("pid %d %s: %#x in its %s (%s) %q\n", h.PID, h.Comm, h.Address, h.VMAKind, h.Provenance, h.Context)
	}
	// Output:
	// pid 50 miner: 0x25ee7a84 in its heap (dumped) "d:3333; WALLET=FORGE-SECRET-"
	// pid 50 miner: 0x25ee7b30 in its heap (dumped) "\x00\x00\x00\x00\x00\x00\x00\x00WALLET=FORGE-SECRET-"
	// pid 50 miner: 0x25ee8b70 in its heap (dumped) "1\x00\x00\x00\x00\x00\x00\x00WALLET=FORGE-SECRET-"
	// pid 50 miner: 0x7fffdd5b2ef0 in its stack (dumped) "d:3333; WALLET=FORGE-SECRET-"
}

// Search a directory of CRIU images on the examiner's machine.
func ExampleSearchPath() {
	for h, err := range memory.SearchPath(context.Background(), "../checkpoint/testdata/criu-dump/images", memory.String("FORGE-SECRET"), nil, nil) {
		if err != nil {
			fmt.Println(err)
			continue
		}
		fmt.Printf("pid %d %s: %#x in its %s (%s)\n", h.PID, h.Comm, h.Address, h.VMAKind, h.Provenance)
	}
	// Output:
	// pid 1360 forge-target: 0x556851ae22ac in its heap (dumped)
}
