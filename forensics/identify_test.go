package forensics

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/deadnode/deadnode/internal/testfix"
)

// sumsOf reads the SHA256SUMS the disk forge wrote: the sha256 of each
// image's virtual disk, by name.
func sumsOf(t *testing.T, dir string) map[string]string {
	t.Helper()
	f, err := os.Open(filepath.Join(dir, "SHA256SUMS"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	out := map[string]string{}
	for sc := bufio.NewScanner(f); sc.Scan(); {
		if sum, name, ok := strings.Cut(sc.Text(), "  "); ok {
			out[name] = sum
		}
	}
	return out
}

func fileSHA256(t *testing.T, p string) (string, int64) {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:]), int64(len(b))
}

func identify(t *testing.T, path string) EvidenceInfo {
	t.Helper()
	n, err := OpenPath(context.Background(), path, nil) // backing images are looked for beside the image
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	id, err := n.Identify(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// The identity a case records: a split raw image hashes as the raw image
// it was split from (what an acquisition log states), each piece hashed
// too; a qcow2 overlay names its backing image among its files; a
// compressed collection keeps the sha256 of the pass that decompressed it.
func TestIdentify(t *testing.T) {
	dir := testfix.DiskImages(t)
	sums := sumsOf(t, dir)

	id := identify(t, filepath.Join(dir, "split", "gpt-ext4.raw.001"))
	if id.Kind != "disk:split-raw" || id.SHA256 == nil || *id.SHA256 != sums["gpt-ext4.raw"] || id.Size != 128<<20 || len(id.Files) != 3 ||
		id.SHA256Note != "of the 3 pieces in order: the raw image's sha256" {
		t.Fatalf("split raw: %+v", id)
	}
	var total int64
	for i, f := range id.Files {
		sum, size := fileSHA256(t, f.Path)
		if !strings.HasSuffix(f.Path, []string{".001", ".002", ".003"}[i]) || f.SHA256 != sum || f.Size != size {
			t.Errorf("piece %d: %+v", i, f)
		}
		total += f.Size
	}
	if total != id.Size {
		t.Errorf("pieces of %d bytes, image %d", total, id.Size)
	}

	id = identify(t, filepath.Join(dir, "gpt-ext4.overlay.qcow2"))
	over, overSize := fileSHA256(t, filepath.Join(dir, "gpt-ext4.overlay.qcow2"))
	base, _ := fileSHA256(t, filepath.Join(dir, "gpt-ext4.qcow2"))
	if id.Kind != "disk:qcow2" || *id.SHA256 != over || id.Size != overSize || len(id.Files) != 2 ||
		id.Files[1].Path != filepath.Join(dir, "gpt-ext4.qcow2") || id.Files[1].SHA256 != base ||
		!strings.HasPrefix(id.SHA256Note, "of "+filepath.Join(dir, "gpt-ext4.overlay.qcow2")+" alone: the image is made of 2 files") {
		t.Fatalf("overlay: %+v", id)
	}

	id = identify(t, filepath.Join(dir, "gpt-xfs.vmdk"))
	if one, size := fileSHA256(t, filepath.Join(dir, "gpt-xfs.vmdk")); id.Kind != "disk:vmdk-stream" || *id.SHA256 != one || id.Size != size || id.Files != nil || id.SHA256Note != "" {
		t.Fatalf("one-file vmdk: %+v", id)
	}

	arch := testfix.NodeArchive(t)
	id = identify(t, arch)
	sum, size := fileSHA256(t, arch)
	if id.Kind != "tar.gz" || *id.SHA256 != sum || id.Size != size {
		t.Fatalf("archive: %+v", id)
	}
	// Triage, asked without the evidence's identity, works it out.
	na, err := OpenPath(context.Background(), arch, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer na.Close()
	cs, err := Triage(context.Background(), na, &TriageOptions{NoMemory: true, Analyzers: []Analyzer{}})
	if abs, _ := filepath.Abs(arch); err != nil || cs.Evidence.Path != abs || cs.Evidence.Kind != "tar.gz" || cs.Evidence.SHA256 == nil || *cs.Evidence.SHA256 != sum || cs.Evidence.Size != size {
		t.Fatalf("triage evidence %+v, %v", cs.Evidence, err)
	}

	n, err := OpenPath(context.Background(), filepath.Join(dir, "gpt-ext4.raw"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := n.Identify(ctx); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: %v", err)
	}
}
