package memory

import (
	"debug/elf"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"syscall"
	"testing"
)

// writeCoreFile writes the core of task 1 of dir to a temp file.
func writeCoreFile(t *testing.T, dir string, opt *CoreOptions) (string, *CoreInfo) {
	t.Helper()
	r, err := OpenPath(ctx, dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	s, err := r.Space(1)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "core")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	info, err := r.WriteCore(ctx, s, f, opt)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		t.Fatal(err)
	}
	return p, info
}

// loadsOf returns the core's PT_LOADs as (vaddr, filesz, memsz).
func loadsOf(t *testing.T, p string) ([][3]uint64, *elf.File) {
	t.Helper()
	f, err := elf.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	var out [][3]uint64
	for _, pr := range f.Progs {
		if pr.Type == elf.PT_LOAD {
			out = append(out, [3]uint64{pr.Vaddr, pr.Filesz, pr.Memsz})
		}
	}
	return out, f
}

// A hostile mm declaring a 64 TiB never-touched mapping (issue 16): the
// core covers it with no file bytes instead of a 64 TiB sparse file, lists
// it, and stays a few pages long; the small heap keeps its zero pages as
// holes. gdb reads the skipped zeros as zeros, and refuses the range that
// was not captured rather than show it as zeros.
func TestCoreHugeMapping(t *testing.T) {
	p, info := writeCoreFile(t, hugeMM(t), nil)
	const big, tib, vvar = uint64(1) << 44, uint64(1) << 40, uint64(1) << 47
	if want := []Range{{Start: big, End: big + 64*tib, Provenance: Zero}}; !reflect.DeepEqual(info.Skipped, want) {
		t.Errorf("skipped %+v, want %+v", info.Skipped, want)
	}
	if want := []Range{{Start: vvar, End: vvar + 94*tib, Provenance: NotCaptured}}; !reflect.DeepEqual(info.NotCaptured, want) {
		t.Errorf("not captured %+v, want %+v", info.NotCaptured, want)
	}
	if !strings.HasPrefix(info.Note, "70368744177664 bytes of zero memory in 1 range have no file bytes") {
		t.Errorf("note %q", info.Note)
	}
	st, err := os.Stat(p)
	if err != nil || st.Size() != info.Size || info.Size > 64<<10 {
		t.Fatalf("core of %d bytes (info %d), %v", st.Size(), info.Size, err)
	}
	loads, f := loadsOf(t, p)
	defer f.Close()
	// The uncaptured vvar-like mapping has no PT_LOAD at all.
	if want := [][3]uint64{{0x10000, 4 * pageSize, 4 * pageSize}, {big, 0, 64 * tib}}; !reflect.DeepEqual(loads, want) || info.Loads != 2 {
		t.Fatalf("loads %x, want %x", loads, want)
	}
	b := make([]byte, 4*pageSize)
	if _, err := f.Progs[1].ReadAt(b, 0); err != nil || string(b[100:110]) != "HEAP-BYTES" || b[pageSize] != 0 {
		t.Fatalf("heap bytes: %q %v", b[100:110], err)
	}
	var sys syscall.Stat_t
	if err := syscall.Stat(p, &sys); err != nil || sys.Blocks*512 > 4*pageSize {
		t.Fatalf("core takes %d bytes on disk (%v): the heap's zero pages must be a hole", sys.Blocks*512, err)
	}
}

// A smaller bound: the heap's three zero pages pass it and lose their
// file bytes too, the dumped page keeps its own.
func TestCoreMaxHoles(t *testing.T) {
	p, info := writeCoreFile(t, hugeMM(t), &CoreOptions{MaxHoles: 2 * pageSize})
	if len(info.Skipped) != 2 || info.Skipped[0] != (Range{Start: 0x11000, End: 0x14000, Provenance: Zero}) {
		t.Fatalf("skipped %+v", info.Skipped)
	}
	loads, f := loadsOf(t, p)
	defer f.Close()
	if loads[0] != [3]uint64{0x10000, pageSize, pageSize} || loads[1] != [3]uint64{0x11000, 0, 3 * pageSize} {
		t.Fatalf("loads %x", loads)
	}
}

func TestCoreHugeMappingGDB(t *testing.T) {
	p, _ := writeCoreFile(t, hugeMM(t), nil)
	out, err := exec.Command("gdb", "-nx", "-batch", "-c", p, "-ex", "x/s 0x10064", "-ex", "x/x 0x100000000000", "-ex", "x/x 0x800000000000").CombinedOutput()
	// gdb -batch exits 1 when a command fails, as the last one must.
	var ee *exec.ExitError
	if err != nil && (!errors.As(err, &ee) || ee.ExitCode() != 1) {
		t.Fatalf("gdb: %v\n%s", err, out)
	}
	o := string(out)
	for _, want := range []string{"0x10064:\t\"HEAP-BYTES\"", "0x100000000000:\t0x00", "Cannot access memory at address 0x800000000000"} {
		if !strings.Contains(o, want) {
			t.Errorf("gdb lacks %q:\n%s", want, o)
		}
	}
}
