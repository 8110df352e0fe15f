package containerd

import (
	"context"
	"strings"
	"sync"
	"testing"

	"github.com/deadnode/deadnode/evidence"
	"github.com/deadnode/deadnode/forensics/internal/boltdb"
	"github.com/deadnode/deadnode/forensics/internal/boltdb/bolttest"
	"github.com/deadnode/deadnode/internal/testfix"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
)

func anyBytes(url string, v []byte) []byte {
	b, _ := proto.Marshal(&anypb.Any{TypeUrl: url, Value: v})
	return b
}

// FuzzRecordDecoders feeds arbitrary bytes to every decoder of meta.db
// values: protobuf Any, the CRI metadata extension, runc options.
func FuzzRecordDecoders(f *testing.F) {
	f.Add(anyBytes("github.com/containerd/cri/pkg/store/container/Metadata", []byte(`{"Version":"v1","Metadata":{"ID":"x","SandboxID":"y","Config":{"metadata":{"name":"app","attempt":1}}}}`)))
	f.Add(anyBytes("containerd.runc.v1.Options", []byte("\x3a\x05/runc\x32\x04runc")))
	f.Add([]byte{0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f})
	f.Fuzz(func(t *testing.T, b []byte) {
		decodeAny(b)
		decodeCRIMetadata(b)
		runcOptions(b)
	})
}

// fuzzNode is the sample node and its meta.db, loaded once per process.
var fuzzNode struct {
	once sync.Once
	src  evidence.Source
	base []byte
	tree []uint64
}

func loadFuzzNode(t testing.TB) {
	fuzzNode.once.Do(func() {
		a, err := evidence.OpenArchive(context.Background(), testfix.NodeArchive(t), nil)
		if err != nil {
			t.Fatal(err)
		}
		src, err := evidence.Sub(a, "node")
		if err != nil {
			t.Fatal(err)
		}
		b, err := evidence.ReadFile(src, metaName, 1<<20)
		if err != nil {
			t.Fatal(err)
		}
		f, err := bolttest.Parse(b)
		if err != nil {
			t.Fatal(err)
		}
		fuzzNode.src, fuzzNode.base, fuzzNode.tree = src, b, f.TreePages()
	})
	if fuzzNode.src == nil {
		t.Fatal("the sample node did not load")
	}
}

// treeIndex is the index of page id in the tree's page list.
func treeIndex(t testing.TB, id uint64) byte {
	for i, p := range fuzzNode.tree {
		if p == id {
			return byte(i)
		}
	}
	t.Fatalf("page %d is not in the tree", id)
	return 0
}

// FuzzMetaDBPages damages the page structure of the sample node's
// meta.db — page headers, branch children, element positions and sizes,
// bucket roots (bolttest.Mutate), not random bytes of the file — and reads
// the node. Whatever the damage, the reader must return (no fatal error:
// bbolt's stack overflow on a loop cannot be recovered), bbolt must never
// panic past the page check, and no private copy may stay registered.
func FuzzMetaDBPages(f *testing.F) {
	loadFuzzNode(f)
	p := func(id uint64) byte { return treeIndex(f, id) }
	edit := bolttest.Edit
	// The regression cases: the sandbox's branch page 40 (children 27,
	// 38), the containers leaf 51, the app's branch page 46.
	f.Add(edit(p(40), 4, 1, 0, uint32(p(40))))                                                 // self-loop
	f.Add(append(edit(p(40), 4, 1, 0, uint32(p(46))), edit(p(46), 4, 1, 0, uint32(p(40)))...)) // two-page loop
	f.Add(edit(p(40), 4, 0, 2, 0))                                                             // child 2^40
	f.Add(edit(p(40), 4, 0, 3, 1))                                                             // child past the end
	f.Add(edit(p(27), 1, 0, 1, 0xffff))                                                        // absurd count
	f.Add(edit(p(51), 7, 0, 2, 0))                                                             // bucket root 2^40
	f.Add(edit(p(51), 7, 1, 0, uint32(p(51))))                                                 // a bucket rooted at its own leaf
	f.Add(edit(p(27), 5, 2, 1, 5000))                                                          // a key outside its page
	f.Fuzz(func(t *testing.T, edits []byte) {
		if len(edits) > 8*64 {
			edits = edits[:8*64]
		}
		bf := &bolttest.File{B: append([]byte(nil), fuzzNode.base...), PageSize: 4096}
		bf.Mutate(fuzzNode.tree, edits)
		s, err := Open(&bolttest.Source{Source: fuzzNode.src, Name: metaName, Data: bf.B}, nil)
		if r := boltdb.Registered(); len(r) != 0 {
			t.Fatalf("private copies left: %v", r)
		}
		if err != nil {
			if !strings.Contains(err.Error(), "meta.db") {
				t.Fatalf("error does not name the database: %v", err)
			}
			if strings.Contains(err.Error(), "panicked") {
				t.Fatalf("bbolt panicked past the page check: %v", err)
			}
			return
		}
		for _, w := range s.Warnings {
			if strings.Contains(w.Msg, "panicked") {
				t.Fatalf("bbolt panicked past the page check: %v", w)
			}
		}
	})
}
