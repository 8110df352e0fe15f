package host

import (
	"context"
	"crypto/md5"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/hex"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"runtime"
	"sync"

	"github.com/deadnode/deadnode/evidence"
	"github.com/deadnode/deadnode/forensics/classify"
)

func newHash(algo string) (hash.Hash, error) {
	switch algo {
	case AlgoMD5:
		return md5.New(), nil
	case AlgoSHA1:
		return sha1.New(), nil
	case AlgoSHA256:
		return sha256.New(), nil
	case AlgoSHA384:
		return sha512.New384(), nil
	case AlgoSHA512:
		return sha512.New(), nil
	}
	return nil, fmt.Errorf("unknown digest algorithm %q", algo)
}

// digests is what one read of a file gave.
type digests struct {
	db     string // in the database's algorithm
	sha256 string
	hdr    []byte // the first classify.MaxHeader bytes
}

// hashOpen reads an open file once, computing the digest in algo (if not
// ""), sha256 (if withSHA) and keeping its first bytes.
func hashOpen(f evidence.File, algo string, withSHA bool, buf []byte) (digests, error) {
	var d digests
	var hd, hs hash.Hash
	if algo != "" {
		h, err := newHash(algo)
		if err != nil {
			return d, err
		}
		hd = h
	}
	if withSHA && algo != AlgoSHA256 {
		hs = sha256.New()
	}
	for {
		n, err := f.Read(buf)
		if n > 0 {
			chunk := buf[:n]
			if room := classify.MaxHeader - len(d.hdr); room > 0 {
				d.hdr = append(d.hdr, chunk[:min(room, n)]...)
			}
			if hd != nil {
				hd.Write(chunk)
			}
			if hs != nil {
				hs.Write(chunk)
			}
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return d, err
		}
		if n == 0 {
			return d, io.ErrNoProgress
		}
	}
	if hd != nil {
		d.db = hex.EncodeToString(hd.Sum(nil))
	}
	switch {
	case hs != nil:
		d.sha256 = hex.EncodeToString(hs.Sum(nil))
	case withSHA:
		d.sha256 = d.db
	}
	return d, nil
}

// hashPath opens a resolved absolute path and hashes it.
func hashPath(src evidence.Source, p, algo string, withSHA bool, buf []byte) (digests, error) {
	f, err := src.Open(srcName(p))
	if err != nil {
		return digests{}, err
	}
	defer f.Close()
	return hashOpen(f, algo, withSHA, buf)
}

// ordered runs do(i) for i in [0, n) on workers goroutines and calls emit
// with the results in index order, holding at most window results at
// once (so memory does not grow with n).
func ordered[T any](ctx context.Context, n, workers int, do func(i int, buf []byte) T, emit func(T)) error {
	if n == 0 {
		return nil
	}
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	workers = min(workers, n)
	window := workers * 64
	type res struct {
		i int
		v T
	}
	idx := make(chan int)
	out := make(chan res, window)
	slots := make(chan struct{}, window)
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]byte, 256<<10)
			for i := range idx {
				out <- res{i, do(i, buf)}
			}
		}()
	}
	stop := make(chan struct{})
	go func() {
		defer close(idx)
		for i := 0; i < n; i++ {
			select {
			case slots <- struct{}{}:
			case <-stop:
				return
			}
			select {
			case idx <- i:
			case <-stop:
				return
			}
		}
	}()
	go func() {
		wg.Wait()
		close(out)
	}()
	pending := make(map[int]T, window)
	next := 0
	var err error
	for r := range out {
		if err != nil {
			continue // drain
		}
		pending[r.i] = r.v
		for {
			v, ok := pending[next]
			if !ok {
				break
			}
			delete(pending, next)
			next++
			<-slots
			emit(v)
		}
		if e := ctx.Err(); e != nil && err == nil {
			err = e
			close(stop)
		}
	}
	return err
}

// typeName names an entry's type as the drift report does.
func typeName(m fs.FileMode) string {
	switch {
	case m.IsRegular():
		return "file"
	case m.IsDir():
		return "dir"
	case m&fs.ModeSymlink != 0:
		return "symlink"
	case m&fs.ModeCharDevice != 0:
		return "char"
	case m&fs.ModeDevice != 0:
		return "block"
	case m&fs.ModeNamedPipe != 0:
		return "fifo"
	case m&fs.ModeSocket != 0:
		return "socket"
	}
	return "other"
}

// modeString prints permission bits in octal with the setuid, setgid and
// sticky bits as chmod takes them.
func modeString(m fs.FileMode) string {
	v := uint32(m.Perm())
	if m&fs.ModeSetuid != 0 {
		v |= 0o4000
	}
	if m&fs.ModeSetgid != 0 {
		v |= 0o2000
	}
	if m&fs.ModeSticky != 0 {
		v |= 0o1000
	}
	return fmt.Sprintf("%04o", v)
}
