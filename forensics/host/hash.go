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
	err := readChunks(f, buf, func(chunk []byte) {
		if room := classify.MaxHeader - len(d.hdr); room > 0 {
			d.hdr = append(d.hdr, chunk[:min(room, len(chunk))]...)
		}
		if hd != nil {
			hd.Write(chunk)
		}
		if hs != nil {
			hs.Write(chunk)
		}
	})
	if err != nil {
		return d, err
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

// digestOnly is hashOpen for the common case, a file as shipped: the
// digest in algo alone, with no header kept (no allocation per file).
func digestOnly(f evidence.File, algo string, buf []byte) (string, error) {
	h, err := newHash(algo)
	if err != nil {
		return "", err
	}
	if err := readChunks(f, buf, func(chunk []byte) { h.Write(chunk) }); err != nil {
		return "", err
	}
	var sum [sha512.Size]byte
	return hex.EncodeToString(h.Sum(sum[:0])), nil
}

// readChunks reads f to its end through buf, handing each chunk read to
// use.
func readChunks(f evidence.File, buf []byte, use func(chunk []byte)) error {
	for {
		n, err := f.Read(buf)
		if n > 0 {
			use(buf[:n])
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		if n == 0 {
			return io.ErrNoProgress
		}
	}
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

// ordered runs do(i) for i in [0, n) on workers goroutines (the caller's
// among them) and calls emit with the results in index order. Work is
// handed out in chunks of consecutive indexes, and a worker that
// finishes the chunk next in line emits it (and any finished chunks after
// it) itself, so there is no hand-off per item: under a loaded scheduler a
// hand-off costs a wake-up. At most window chunks are done ahead of the
// last one emitted, so memory does not grow with n.
func ordered[T any](ctx context.Context, n, workers int, do func(i int, buf []byte) T, emit func(T)) error {
	if n == 0 {
		return nil
	}
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	chunk := min(max(n/(workers*16), 1), 64)
	chunks := (n + chunk - 1) / chunk
	workers = min(workers, chunks)
	window := workers * 4
	var (
		mu      sync.Mutex
		cond    = sync.NewCond(&mu)
		next    int             // next chunk to hand out
		emitted int             // chunks emitted
		done    = map[int][]T{} // finished chunks not yet emitted
		err     error
	)
	work := func() {
		buf := make([]byte, 256<<10)
		for {
			mu.Lock()
			for err == nil && next < chunks && next >= emitted+window {
				cond.Wait()
			}
			if err != nil || next >= chunks {
				mu.Unlock()
				return
			}
			c := next
			next++
			mu.Unlock()
			res := make([]T, 0, chunk)
			for i := c * chunk; i < min(n, (c+1)*chunk); i++ {
				res = append(res, do(i, buf))
			}
			mu.Lock()
			done[c] = res
			for {
				r, ok := done[emitted]
				if !ok {
					break
				}
				delete(done, emitted)
				for _, v := range r {
					emit(v)
				}
				emitted++
			}
			if e := ctx.Err(); e != nil && err == nil {
				err = e
			}
			cond.Broadcast()
			mu.Unlock()
		}
	}
	var wg sync.WaitGroup
	for w := 1; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			work()
		}()
	}
	work()
	wg.Wait()
	return err
}
