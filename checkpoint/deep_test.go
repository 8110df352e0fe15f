package checkpoint

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/checkpoint-restore/go-criu/v8/crit/images/mm"
	"github.com/checkpoint-restore/go-criu/v8/crit/images/pstree"
	vmapb "github.com/checkpoint-restore/go-criu/v8/crit/images/vma"
	"github.com/deadnode/deadnode/evidence"
	"github.com/klauspost/compress/zstd"
	"google.golang.org/protobuf/proto"
)

// deepTasks is the length of the parent chain of the hostile pstree of
// issue 16.7: task k+1's parent is task k.
const deepTasks = 40000

// deepArchive is that checkpoint, committed (and made again by
// TestDeepPstreeFixture from writeDeepArchive): a .tar.zst of inventory.img
// and a pstree.img of one 40,000-task chain, nothing else.
var deepArchive = filepath.Join("testdata", "hostile", "deep-pstree.tar.zst")

// writeDeepArchive writes the deep-chain checkpoint as a .tar.zst.
func writeDeepArchive(w io.Writer) error {
	var tasks []*pstree.PstreeEntry
	for pid := uint32(1); pid <= deepTasks; pid++ {
		tasks = append(tasks, &pstree.PstreeEntry{Pid: u32(pid), Ppid: u32(pid - 1), Pgid: u32(1), Sid: u32(1)})
	}
	zw, err := zstd.NewWriter(w, zstd.WithEncoderLevel(zstd.SpeedBestCompression), zstd.WithEncoderConcurrency(1))
	if err != nil {
		return err
	}
	tw := tar.NewWriter(zw)
	for _, m := range []struct {
		name string
		data []byte
	}{{"checkpoint/" + imgInventory, inventoryImg()}, {"checkpoint/" + imgPstree, image(magicPstree, true, pstreeMsgs(tasks)...)}} {
		h := &tar.Header{Name: m.name, Mode: 0o644, Size: int64(len(m.data)), ModTime: time.Unix(1_800_000_000, 0), Typeflag: tar.TypeReg, Format: tar.FormatUSTAR}
		if err := tw.WriteHeader(h); err != nil {
			return err
		}
		if _, err := tw.Write(m.data); err != nil {
			return err
		}
	}
	if err := tw.Close(); err != nil {
		return err
	}
	return zw.Close()
}

func pstreeMsgs(tasks []*pstree.PstreeEntry) []proto.Message {
	out := make([]proto.Message, len(tasks))
	for i, t := range tasks {
		out[i] = t
	}
	return out
}

// The committed archive is what the generator writes.
func TestDeepPstreeFixture(t *testing.T) {
	var b bytes.Buffer
	if err := writeDeepArchive(&b); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(deepArchive)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, b.Bytes()) {
		t.Fatalf("%s (%d bytes) is not what writeDeepArchive makes (%d bytes): regenerate it with DEADNODE_WRITE_FIXTURES=1", deepArchive, len(got), b.Len())
	}
}

// TestWriteDeepPstree regenerates the committed archive when asked.
func TestWriteDeepPstree(t *testing.T) {
	if os.Getenv("DEADNODE_WRITE_FIXTURES") == "" {
		return
	}
	var b bytes.Buffer
	if err := writeDeepArchive(&b); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(deepArchive, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

// A 40,000-task parent chain opens whole, and the tree check follows each
// parent link once (the old walk up from every task took 800 million
// steps on it).
func TestDeepPstree(t *testing.T) {
	cp, err := OpenPath(ctx, deepArchive, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer cp.Close()
	if len(cp.Processes) != deepTasks {
		t.Fatalf("%d tasks", len(cp.Processes))
	}
	for i, p := range cp.Processes {
		if p.PID != uint32(i+1) || p.PPID != uint32(i) || p.State != "unknown" || len(p.Errors) != 1 {
			t.Fatalf("task %d: %+v", i, p)
		}
	}
	if len(cp.Warnings) != 0 {
		t.Fatalf("warnings %v", cp.Warnings[:min(3, len(cp.Warnings))])
	}
	// The JSON grows with the tasks, not with their depth.
	j, err := json.Marshal(cp)
	if err != nil {
		t.Fatal(err)
	}
	if per := len(j) / deepTasks; per > 400 {
		t.Fatalf("%d bytes of JSON a task", per)
	}
	// Linear: one step per task, whatever the depth; and a cycle at the
	// bottom of the chain is still found, and broken at its first task.
	tree := func(cycle bool) []*pstree.PstreeEntry {
		var l []*pstree.PstreeEntry
		for pid := uint32(1); pid <= deepTasks; pid++ {
			l = append(l, &pstree.PstreeEntry{Pid: u32(pid), Ppid: u32(pid - 1)})
		}
		if cycle {
			l[0].Ppid = u32(deepTasks)
		}
		return l
	}
	dir, err := evidence.OpenDir(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer dir.Close()
	for _, cycle := range []bool{false, true} {
		b := &builder{cp: &Checkpoint{}, im: NewImageDir(dir, ".")}
		out := b.checkTree(tree(cycle))
		if b.treeSteps != deepTasks {
			t.Errorf("cycle %v: %d steps for %d tasks", cycle, b.treeSteps, deepTasks)
		}
		if cycle != (out[0].GetPpid() == 0 && len(b.cp.Warnings) == 1) {
			t.Errorf("cycle %v: task 1 ppid %d, warnings %v", cycle, out[0].GetPpid(), b.cp.Warnings)
		}
	}
}

// TestWriteDeepPstreeSeed writes the seed of FuzzDecodePstree for a deep
// chain (2,000 tasks, to keep the fuzzer quick) when asked.
func TestWriteDeepPstreeSeed(t *testing.T) {
	if os.Getenv("DEADNODE_WRITE_FIXTURES") == "" {
		return
	}
	var tasks []*pstree.PstreeEntry
	for pid := uint32(1); pid <= 2000; pid++ {
		tasks = append(tasks, &pstree.PstreeEntry{Pid: u32(pid), Ppid: u32(pid - 1), Pgid: u32(1), Sid: u32(1)})
	}
	b := image(magicPstree, true, pstreeMsgs(tasks)...)
	seed := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", b)
	if err := os.WriteFile(filepath.Join("testdata", "fuzz", "FuzzDecodePstree", "deep-chain"), []byte(seed), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestWriteHugeMMSeed writes the seed of FuzzDecodeMM for the hostile mm
// of issue 16 (a 64 TiB anonymous mapping never touched and a 94 TiB one
// never dumped) when asked.
func TestWriteHugeMMSeed(t *testing.T) {
	if os.Getenv("DEADNODE_WRITE_FIXTURES") == "" {
		return
	}
	const tib = uint64(1) << 40
	vma := func(start, end uint64, status uint32) *vmapb.VmaEntry {
		return &vmapb.VmaEntry{Start: proto.Uint64(start), End: proto.Uint64(end), Pgoff: proto.Uint64(0), Shmid: proto.Uint64(0),
			Prot: u32(3), Flags: u32(0x22), Status: u32(status), Fd: proto.Int64(-1)}
	}
	m := &mm.MmEntry{MmStartCode: proto.Uint64(0), MmEndCode: proto.Uint64(0), MmStartData: proto.Uint64(0), MmEndData: proto.Uint64(0),
		MmStartStack: proto.Uint64(0), MmStartBrk: proto.Uint64(0), MmBrk: proto.Uint64(0), MmArgStart: proto.Uint64(0), MmArgEnd: proto.Uint64(0),
		MmEnvStart: proto.Uint64(0), MmEnvEnd: proto.Uint64(0),
		Vmas: []*vmapb.VmaEntry{vma(1<<44, 1<<44+64*tib, VMAAreaRegular|VMAAnonPrivate), vma(1<<47, 1<<47+94*tib, VMAAreaRegular|VMAAreaVvar)}}
	seed := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", image(magicMM, true, m))
	if err := os.WriteFile(filepath.Join("testdata", "fuzz", "FuzzDecodeMM", "huge-vmas"), []byte(seed), 0o644); err != nil {
		t.Fatal(err)
	}
}
