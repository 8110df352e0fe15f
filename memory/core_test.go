package memory

import (
	"crypto/sha256"
	"debug/elf"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/deadnode/deadnode/internal/testfix"
)

func writeCriuCore(t *testing.T) (string, *CoreInfo) {
	t.Helper()
	r, err := OpenPath(ctx, testfix.Fixture(t, "criu-dump", "images"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	s, err := r.Space(1360)
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "core.1360")
	f, err := os.Create(out)
	if err != nil {
		t.Fatal(err)
	}
	info, err := r.WriteCore(ctx, s, f, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return out, info
}

func TestCoreELF(t *testing.T) {
	path, info := writeCriuCore(t)
	st, _ := os.Stat(path)
	if st.Size() != info.Size || info.Threads != 4 {
		t.Fatalf("info %+v, file %d bytes", info, st.Size())
	}
	f, err := elf.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if f.Type != elf.ET_CORE || f.Machine != elf.EM_X86_64 {
		t.Fatalf("type %v machine %v", f.Type, f.Machine)
	}
	var loads int
	var heap *elf.Prog
	for _, p := range f.Progs {
		if p.Type == elf.PT_LOAD {
			loads++
			if p.Vaddr == 0x556851ae2000 {
				heap = p
			}
			if p.Vaddr == 0x7fbdf1174000 && p.Filesz != 0 { // vvar: not captured
				t.Errorf("vvar load has %d file bytes", p.Filesz)
			}
		}
	}
	if loads != info.Loads || heap == nil || heap.Memsz != 0x21000 || heap.Filesz != 0x21000 {
		t.Fatalf("%d loads, heap %+v", loads, heap)
	}
	b := make([]byte, 35)
	heap.ReadAt(b, 0x556851ae22a0-0x556851ae2000)
	if string(b) != "heap-marker:FORGE-SECRET-7f3a9c:end" {
		t.Fatalf("heap bytes %q", b)
	}
	out, err := exec.Command("readelf", "-lnW", path).CombinedOutput()
	if err != nil {
		t.Fatalf("readelf: %v\n%s", err, out)
	}
	o := string(out)
	if strings.Count(o, "NT_PRSTATUS") != 4 || !strings.Contains(o, "NT_PRPSINFO") || !strings.Contains(o, "NT_AUXV") || !strings.Contains(o, "NT_FILE") {
		t.Fatalf("readelf notes:\n%s", o)
	}
	if !strings.Contains(o, "0x0000556851ae2000 0x0000556851ae2000 0x021000 0x021000 RW") {
		t.Fatalf("readelf has no heap load:\n%s", o)
	}
	// This readelf cannot decode NT_FILE ("32-bit build"); read the note.
	note := f.Progs[0]
	nb := make([]byte, note.Filesz)
	note.ReadAt(nb, 0)
	if note.Type != elf.PT_NOTE || !strings.Contains(string(nb), "/usr/lib/x86_64-linux-gnu/libc.so.6\x00/usr/lib/x86_64-linux-gnu/libc.so.6\x00") {
		t.Fatalf("NT_FILE lacks libc")
	}
}

func TestCoreGDB(t *testing.T) {
	path, _ := writeCriuCore(t)
	exe := testfix.Fixture(t, "criu-dump", "forge-target.bin")
	// 0x5568455ac000 is the executable's read-only data page, which the
	// checkpoint did not capture (file-backed, unmodified): the core has
	// no PT_LOAD there, so gdb reads it from the executable given to it
	// (a PT_LOAD with no file bytes would hide it behind zeros).
	out, err := exec.Command("gdb", "-nx", "-batch", "-ex", "x/s 0x556851ae22ac", "-ex", "x/wx 0x5568455ac000", "-ex", "info threads", exe, path).CombinedOutput()
	if err != nil {
		t.Fatalf("gdb: %v\n%s", err, out)
	}
	o := string(out)
	if !strings.Contains(o, `0x556851ae22ac:	"FORGE-SECRET-7f3a9c:end"`) {
		t.Fatalf("gdb x/s:\n%s", o)
	}
	if !strings.Contains(o, "0x5568455ac000 <_IO_stdin_used>:\t0x00020001") {
		t.Fatalf("gdb does not read the executable's page the checkpoint left out:\n%s", o)
	}
	for _, tid := range []string{"LWP 1360", "LWP 1362", "LWP 1363", "LWP 1364"} {
		if !strings.Contains(o, tid) {
			t.Fatalf("gdb info threads lacks %s:\n%s", tid, o)
		}
	}
}

// Dump writes not-captured bytes as holes and says so in the manifest;
// the sha256 is of the file as written.
func TestDumpManifest(t *testing.T) {
	r, err := OpenPath(ctx, testfix.Fixture(t, "criu-dump", "images"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	s, _ := r.Space(1360)
	dir := t.TempDir()
	var all []Range
	for _, m := range s.Mappings {
		all = append(all, Range{Start: m.Start, End: m.End})
	}
	man, err := s.Dump(ctx, dir, "criu-dump", all, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(man.Regions) != 29 {
		t.Fatalf("%d regions", len(man.Regions))
	}
	for _, d := range man.Regions {
		b, err := os.ReadFile(filepath.Join(dir, d.File))
		if err != nil || int64(len(b)) != d.Size || d.Size != int64(d.End-d.Start) {
			t.Fatalf("%s: %d bytes, %v", d.File, len(b), err)
		}
		sum := sha256.Sum256(b)
		if hex.EncodeToString(sum[:]) != d.SHA256 {
			t.Fatalf("%s: sha256", d.File)
		}
		if d.Start == 0x7fbdf1174000 && (d.Kind != "vvar" || len(d.Ranges) != 1 || d.Ranges[0].Provenance != NotCaptured) {
			t.Fatalf("vvar %+v", d)
		}
	}
	if _, err := s.Dump(ctx, dir, "again", all[:1], nil); err == nil {
		t.Fatal("overwrote a dump")
	}
}
