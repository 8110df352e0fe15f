package main

import (
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/deadnode/deadnode/internal/testfix"
)

const memSecret = "FORGE-SECRET-7f3a9c"

type memHitJSON struct {
	PID         uint32 `json:"pid"`
	Comm        string `json:"comm"`
	Address     string `json:"address"`
	VMAStart    string `json:"vma_start"`
	VMAEnd      string `json:"vma_end"`
	VMAKind     string `json:"vma_kind"`
	Provenance  string `json:"provenance"`
	ContextHex  string `json:"context_hex"`
	ContextText string `json:"context_text"`
}

func memSearch(t *testing.T, args ...string) []memHitJSON {
	t.Helper()
	out, stderr, code := runCLI(t, append(args, "-o", "json")...)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	var hits []memHitJSON
	if err := json.Unmarshal([]byte(out), &hits); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	return hits
}

func addrsOf(hits []memHitJSON) string {
	var s []string
	for _, h := range hits {
		s = append(s, h.Address)
	}
	return strings.Join(s, " ")
}

func TestMemSearchEveryFormat(t *testing.T) {
	for _, name := range []string{"ckpt-leave-running.tar", "ckpt-leave-running.tar.gz", "ckpt-default-zstd.tar.zst"} {
		hits := memSearch(t, "mem", "search", testfix.Fixture(t, "podman-checkpoint", name), "--string", memSecret, "--context", "4")
		if got := addrsOf(hits); got != "0x30812a5a 0x30812a92 0x308138f2 0x7ffd340c6f15" {
			t.Fatalf("%s: %s", name, got)
		}
		h := hits[0]
		if h.PID != 18 || h.Comm != "sh" || h.VMAStart != "0x30811000" || h.VMAEnd != "0x30833000" || h.VMAKind != "heap" ||
			h.Provenance != "dumped" || !strings.Contains(h.ContextText, memSecret) || !strings.Contains(h.ContextHex, "464f5247452d534543524554") {
			t.Fatalf("%s: %+v", name, h)
		}
	}
	hits := memSearch(t, "mem", "search", testfix.Fixture(t, "criu-dump", "images"), "--regex", `heap-marker:[A-Z-]+[0-9a-f]+:end`)
	if got := addrsOf(hits); got != "0x556851ae22a0" {
		t.Fatalf("criu-dump regex: %s", got)
	}
	hits = memSearch(t, "mem", "search", testfix.Fixture(t, "containerd-node", "ctr-checkpoint-image-path", "images"), "--hex", "46 4f 52 47 45 2d 53 45 43 52 45 54", "--pid", "50")
	if got := addrsOf(hits); got != "0x25ee7a8b 0x25ee7b37 0x25ee8b77 0x7fffdd5b2ef7" {
		t.Fatalf("image-path hex: %s", got)
	}
	hits = memSearch(t, "--root", testfix.NodeArchive(t), "mem", "search", "sha256:59633960fda9a188befcefff9d80fd7afe76cbe3540012e71f55835d04873a96", "--string", memSecret)
	if got := addrsOf(hits); got != "0x25ee7a8b 0x25ee7b37 0x25ee8b77 0x7fffdd5b2ef7" || hits[0].Comm != "miner" {
		t.Fatalf("node: %s", got)
	}
	if _, _, code := runCLI(t, "mem", "search", testfix.Fixture(t, "criu-dump", "images")); code != 2 {
		t.Fatalf("no pattern: exit %d", code)
	}
	if _, _, code := runCLI(t, "mem", "search", testfix.Fixture(t, "criu-dump", "images"), "--hex", "zz"); code != 2 {
		t.Fatalf("bad hex: exit %d", code)
	}
}

func TestMemMapsDumpCore(t *testing.T) {
	images := testfix.Fixture(t, "criu-dump", "images")
	before := fingerprint(t, images)
	out, stderr, code := runCLI(t, "mem", "maps", images, "-o", "json")
	if code != 0 {
		t.Fatalf("maps: %d %s", code, stderr)
	}
	var maps []memMap
	if err := json.Unmarshal([]byte(out), &maps); err != nil {
		t.Fatal(err)
	}
	if len(maps) != 29 || maps[5].Start != "0x556851ae2000" || maps[5].Kind != "heap" || maps[5].Pages.Dumped != 4 || maps[5].Pages.Absent != 29 {
		t.Fatalf("maps %+v", maps[5])
	}
	dir := filepath.Join(t.TempDir(), "dump")
	out, stderr, code = runCLI(t, "mem", "dump", images, "--pid", "1360", "--vma", "0x556851ae22ac", "-d", dir, "-o", "json")
	if code != 0 {
		t.Fatalf("dump: %d %s", code, stderr)
	}
	b, err := os.ReadFile(filepath.Join(dir, "0x556851ae2000-0x556851b03000.bin"))
	if err != nil || len(b) != 0x21000 || string(b[0x2ac:0x2ac+len(memSecret)]) != memSecret {
		t.Fatalf("dump file: %d bytes, %v", len(b), err)
	}
	var man struct {
		Regions []struct {
			File   string
			SHA256 string
			Ranges []struct{ Provenance string }
		}
	}
	mb, _ := os.ReadFile(filepath.Join(dir, "manifest.json"))
	if err := json.Unmarshal(mb, &man); err != nil || len(man.Regions) != 1 || len(man.Regions[0].Ranges) != 2 ||
		man.Regions[0].Ranges[0].Provenance != "dumped" || man.Regions[0].Ranges[1].Provenance != "zero" || len(man.Regions[0].SHA256) != 64 {
		t.Fatalf("manifest %s", mb)
	}
	if _, _, code := runCLI(t, "mem", "dump", images, "--pid", "1360", "--all", "--vma", "1", "-d", dir); code != 2 {
		t.Fatal("two selectors accepted")
	}
	core := filepath.Join(t.TempDir(), "core.1360")
	if _, stderr, code := runCLI(t, "mem", "core", images, "--pid", "1360", "-f", core); code != 0 {
		t.Fatalf("core: %s", stderr)
	}
	g, err := exec.Command("gdb", "-nx", "-batch", "-ex", "x/s 0x556851ae22ac", testfix.Fixture(t, "criu-dump", "forge-target.bin"), core).CombinedOutput()
	if err != nil || !strings.Contains(string(g), `"FORGE-SECRET-7f3a9c:end"`) {
		t.Fatalf("gdb: %v\n%s", err, g)
	}
	out, _, code = runCLI(t, "mem", "strings", images, "--pid", "1360", "--min", "20")
	if code != 0 || !strings.Contains(out, "0x556851ae22a0\tdumped\theap-marker:FORGE-SECRET-7f3a9c:end\n") {
		t.Fatalf("strings: %d\n%s", code, out)
	}
	if d := diffPrints(before, fingerprint(t, images)); len(d) > 0 {
		t.Fatalf("evidence changed: %v", d)
	}
}

func TestCheckpointInspectPsTreeFromMemory(t *testing.T) {
	out, stderr, code := runCLI(t, "checkpoint", "inspect", testfix.Fixture(t, "containerd-node", "ctr-checkpoint-image-path", "images"), "--ps-tree-cmd", "--ps-tree-env")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if !strings.Contains(out, `50 miner  exe=/tmp/.x/miner`) ||
		!strings.Contains(out, `cmd=busybox sh -c "POOL=stratum+tcp://pool.forge.invalid:3333; WALLET=FORGE-SECRET-7f3a9c; while :; do sleep 10; done"`) ||
		!strings.Contains(out, "env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin") {
		t.Fatalf("output:\n%s", out)
	}
}

func TestMemSearchBadSource(t *testing.T) {
	if _, _, code := runCLI(t, "mem", "search", testfix.Fixture(t, "containerd-node", "GROUND_TRUTH.md"), "--string", "x"); code != 1 {
		t.Fatalf("not a checkpoint: exit %d", code)
	}
	if _, _, code := runCLI(t, "mem", "search", filepath.Join(t.TempDir(), "missing.tar.zst"), "--string", "x"); code != 1 {
		t.Fatalf("missing: exit %d", code)
	}
}

func TestMemMapsRanges(t *testing.T) {
	out, stderr, code := runCLI(t, "mem", "maps", testfix.Fixture(t, "criu-dump", "images"), "--ranges", "-o", "json")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	var maps []memMap
	if err := json.Unmarshal([]byte(out), &maps); err != nil {
		t.Fatal(err)
	}
	h := maps[5]
	if len(h.Ranges) != 2 || h.Ranges[0] != (memRange{"0x556851ae2000", "0x556851ae6000", "dumped", testfix.Fixture(t, "criu-dump", "images") + ":pages-1.img", 12288, ""}) ||
		h.Ranges[1] != (memRange{Start: "0x556851ae6000", End: "0x556851b03000", Provenance: "zero"}) {
		t.Fatalf("heap ranges %+v", h.Ranges)
	}
}

// --max-data takes bytes, or K, M, G, T (either case), from 1 byte to
// 1 EiB; anything else is a usage error.
func TestMaxDataBytes(t *testing.T) {
	for in, want := range map[string]int64{"1": 1, "1048576": 1 << 20, "64G": 64 << 30, "64g": 64 << 30, "1k": 1 << 10, "512M": 512 << 20, "1T": 1 << 40, "1048576T": 1 << 60} {
		if got, err := maxDataBytes(in); err != nil || got != want {
			t.Errorf("%q: %d %v, want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "0", "0G", "-1", "+5", "G", "1P", "2X", "1.5G", "0x10", "1048577T", "1152921504606846977", "99999999999G", "1G ", " 1G"} {
		var ue usageError
		if got, err := maxDataBytes(in); !errors.As(err, &ue) {
			t.Errorf("%q: %d %v, want a usage error", in, got, err)
		}
	}
}
