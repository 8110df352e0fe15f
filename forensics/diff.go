package forensics

import (
	"bytes"
	"io"
	"unicode/utf8"

	"github.com/pmezard/go-difflib/difflib"

	"github.com/deadnode/deadnode/evidence"
)

// FileDiff is how a modified file differs from the image's version: a
// unified diff for text, sizes and hashes for binary files.
type FileDiff struct {
	Binary bool `json:"binary"`
	// Unified is the unified diff (3 lines of context) of the image's
	// version ("a") and the container's ("b"); empty for binary files.
	Unified   string `json:"unified,omitempty"`
	OldSize   int64  `json:"old_size"`
	NewSize   int64  `json:"new_size"`
	OldSHA256 string `json:"old_sha256,omitempty"`
	NewSHA256 string `json:"new_sha256,omitempty"`
	// Truncated says a file was larger than MaxDiffBytes (or had more than
	// MaxDiffLines lines): no line diff was made.
	Truncated bool `json:"truncated,omitempty"`
}

// Bounds of a line diff: larger files are compared by size and hash only.
const (
	MaxDiffBytes = 1 << 20
	MaxDiffLines = 20000
)

// textDiff diffs the image's version of a file (lower) with the
// container's (upper).
func textDiff(path string, lower, upper evidence.File, oldSum, newSum string) *FileDiff {
	d := &FileDiff{OldSize: lower.Size(), NewSize: upper.Size(), OldSHA256: oldSum, NewSHA256: newSum}
	if d.OldSize > MaxDiffBytes || d.NewSize > MaxDiffBytes {
		d.Truncated = true
		d.Binary = !looksText(head(lower)) || !looksText(head(upper))
		return d
	}
	a, errA := io.ReadAll(io.NewSectionReader(lower, 0, d.OldSize))
	b, errB := io.ReadAll(io.NewSectionReader(upper, 0, d.NewSize))
	if errA != nil || errB != nil {
		d.Truncated = true
		return d
	}
	if !looksText(a) || !looksText(b) {
		d.Binary = true
		return d
	}
	la, lb := difflib.SplitLines(string(a)), difflib.SplitLines(string(b))
	if len(la) > MaxDiffLines || len(lb) > MaxDiffLines {
		d.Truncated = true
		return d
	}
	u, err := difflib.GetUnifiedDiffString(difflib.UnifiedDiff{A: la, B: lb, FromFile: "a" + path + " (image)", ToFile: "b" + path + " (container)", Context: 3})
	if err == nil {
		d.Unified = u
	}
	return d
}

func head(f evidence.File) []byte {
	b := make([]byte, 4096)
	n, _ := f.ReadAt(b, 0)
	return b[:n]
}

// looksText: valid UTF-8 without NUL bytes.
func looksText(b []byte) bool {
	return bytes.IndexByte(b, 0) < 0 && utf8.Valid(b)
}
