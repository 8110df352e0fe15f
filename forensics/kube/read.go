package kube

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"strings"

	"github.com/deadnode/deadnode/evidence"
	"github.com/deadnode/deadnode/forensics/internal/pathutil"
	"github.com/deadnode/deadnode/forensics/model"
)

// FileInfo is what the evidence says of a file the kubelet reads.
type FileInfo struct {
	Path string `json:"path"` // as the node names it ("/var/lib/kubelet/config.yaml")
	// EvidencePath is where it was read (differs from Path when links
	// were followed).
	EvidencePath string `json:"evidence_path"`
	Exists       bool   `json:"exists"`
	Size         int64  `json:"size"`
	Mode         string `json:"mode,omitempty"`
	UID          uint32 `json:"uid"`
	GID          uint32 `json:"gid"`
	model.FileTimes
	SHA256 string `json:"sha256,omitempty"`
}

// hostPath resolves a path as the node names it (absolute, or relative to
// base, a directory of the node) into a clean source name, or an error for
// a path that climbs out of the root lexically.
func hostPath(p, base string) (string, error) {
	if p == "" {
		return "", fs.ErrInvalid
	}
	if !strings.HasPrefix(p, "/") {
		p = path.Join("/", base, p)
	}
	return evidence.Clean(path.Clean(p))
}

// statInfo fills a FileInfo from a Stat.
func statInfo(name, resolved string, st *evidence.Stat) FileInfo {
	fi := FileInfo{Path: pathutil.Abs(name), EvidencePath: pathutil.Abs(resolved)}
	if st == nil {
		return fi
	}
	fi.Exists = true
	fi.Size = st.Size
	fi.Mode = st.Mode.String()
	fi.UID, fi.GID = st.UID, st.GID
	fi.FileTimes = model.TimesOf(st)
	return fi
}

// statPath resolves name through the evidence's own links and stats it.
// A missing file is Exists=false with a nil error.
func statPath(src evidence.Source, name string) (FileInfo, string, *evidence.Stat, error) {
	res, err := evidence.Resolve(src, name, true)
	if err != nil {
		return FileInfo{Path: pathutil.Abs(name)}, "", nil, err
	}
	st, err := src.Lstat(res)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return FileInfo{Path: pathutil.Abs(name), EvidencePath: pathutil.Abs(res)}, res, nil, nil
		}
		return FileInfo{Path: pathutil.Abs(name), EvidencePath: pathutil.Abs(res)}, res, nil, err
	}
	return statInfo(name, res, st), res, st, nil
}

// readSmall resolves name inside the evidence and reads it whole, bounded
// by max. It returns the file's metadata (with its sha256) as well.
func readSmall(src evidence.Source, name string, max int64) ([]byte, FileInfo, error) {
	fi, res, st, err := statPath(src, name)
	if err != nil {
		return nil, fi, err
	}
	if st == nil {
		return nil, fi, &fs.PathError{Op: "open", Path: pathutil.Abs(name), Err: fs.ErrNotExist}
	}
	if !st.Mode.IsRegular() {
		return nil, fi, &fs.PathError{Op: "read", Path: pathutil.Abs(name), Err: evidence.ErrNotRegular}
	}
	if st.Size > max {
		return nil, fi, &fs.PathError{Op: "read", Path: pathutil.Abs(name), Err: fmt.Errorf("file is %d bytes, over the %d-byte limit", st.Size, max)}
	}
	b, err := evidence.ReadFile(src, res, max)
	if err != nil {
		return nil, fi, err
	}
	sum := sha256.Sum256(b)
	fi.SHA256 = hex.EncodeToString(sum[:])
	return b, fi, nil
}

// notExist reports whether err means the file is absent.
func notExist(err error) bool { return errors.Is(err, fs.ErrNotExist) }
