package main

import (
	"archive/tar"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"

	"github.com/deadnode/deadnode/internal/testfix"
)

var hostGolden struct {
	once sync.Once
	path string
	err  error
}

// hostGoldenArchive is the host fixture's collection (testfix's
// KubeHostArchive) with only the times the committed inputs hold: the
// fixture is extracted on the test machine before it is archived, so its
// atimes and ctimes (PAX records) are those of the extraction. The same
// members, owners, modes, mtimes and xattrs, in the same order, without
// them: the same bytes in every clone, so the golden outputs (times,
// hashes, the triage's evidence sha256) hold everywhere. Made once per
// test binary, cached under testdata/.cache keyed by its input.
func hostGoldenArchive(t *testing.T) string {
	t.Helper()
	src := testfix.KubeHostArchive(t)
	hostGolden.once.Do(func() { hostGolden.path, hostGolden.err = normaliseArchive(src) })
	if hostGolden.err != nil {
		t.Fatalf("host golden archive: %v", hostGolden.err)
	}
	return hostGolden.path
}

func normaliseArchive(src string) (string, error) {
	f, err := os.Open(src)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	key := hex.EncodeToString(h.Sum(nil))[:16]
	dst := filepath.Join(filepath.Dir(filepath.Dir(src)), "kube-host-golden-"+key+".tar.zst")
	if _, err := os.Stat(dst); err == nil {
		return dst, nil
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return "", err
	}
	zr, err := zstd.NewReader(f)
	if err != nil {
		return "", err
	}
	defer zr.Close()
	tmp, err := os.CreateTemp(filepath.Dir(dst), ".golden-*.tar.zst")
	if err != nil {
		return "", err
	}
	defer os.Remove(tmp.Name())
	zw, err := zstd.NewWriter(tmp, zstd.WithEncoderLevel(zstd.SpeedDefault), zstd.WithEncoderConcurrency(1))
	if err != nil {
		tmp.Close()
		return "", err
	}
	tr, tw := tar.NewReader(zr), tar.NewWriter(zw)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			tmp.Close()
			return "", err
		}
		hdr.AccessTime, hdr.ChangeTime = time.Time{}, time.Time{}
		for k := range hdr.PAXRecords {
			if k == "atime" || k == "ctime" || !strings.HasPrefix(k, "SCHILY.xattr.") {
				delete(hdr.PAXRecords, k)
			}
		}
		hdr.Format = tar.FormatPAX
		if err := tw.WriteHeader(hdr); err != nil {
			tmp.Close()
			return "", err
		}
		if _, err := io.Copy(tw, tr); err != nil {
			tmp.Close()
			return "", err
		}
	}
	if err := tw.Close(); err != nil {
		tmp.Close()
		return "", err
	}
	if err := zw.Close(); err != nil {
		tmp.Close()
		return "", err
	}
	if err := tmp.Close(); err != nil {
		return "", err
	}
	return dst, os.Rename(tmp.Name(), dst)
}
