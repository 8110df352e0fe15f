package evidence

import (
	"bytes"
	"context"
	"io"
	"testing"
)

// FuzzArchive feeds arbitrary bytes to the archive indexer and reads
// everything it indexed: no panic, no read past the input, bounded work.
func FuzzArchive(f *testing.F) {
	f.Add(hostileTar(&testing.T{}))
	f.Add([]byte{0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff})
	f.Add([]byte{0x28, 0xb5, 0x2f, 0xfd, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, data []byte) {
		a, err := NewArchive(context.Background(), bytes.NewReader(data), int64(len(data)), "fuzz.tar", &ArchiveOptions{MaxMembers: 1000, MaxSpill: 1 << 20})
		if err != nil {
			return
		}
		defer a.Close()
		Walk(context.Background(), a, ".", func(st *Stat, err error) error {
			if err != nil || st == nil {
				return nil
			}
			a.Xattrs(st.Name)
			if st.Mode.IsRegular() {
				if fl, err := a.Open(st.Name); err == nil {
					io.Copy(io.Discard, io.LimitReader(fl, 1<<20))
				}
			}
			Resolve(a, st.Name, true)
			return nil
		})
	})
}

// FuzzClean checks that no cleaned name can climb out of the root.
func FuzzClean(f *testing.F) {
	for _, s := range []string{"a/../..", "/etc/passwd", "./a//b/", "..", "a/..", "\x00"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		c, err := Clean(s)
		if err != nil {
			return
		}
		if c == ".." || bytes.HasPrefix([]byte(c), []byte("../")) || bytes.HasPrefix([]byte(c), []byte("/")) {
			t.Fatalf("Clean(%q) = %q", s, c)
		}
	})
}
