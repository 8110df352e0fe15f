package disk

import (
	"bytes"
	"fmt"
	"io"
	"sync"

	"github.com/klauspost/compress/flate"
	"github.com/klauspost/compress/zlib"
	"github.com/klauspost/compress/zstd"
)

// The decompressors fill exactly len(out) bytes from src, or fail: a
// cluster or grain that inflates to less (or to garbage) is an error, never
// a short block padded with zeros.

var flatePool, zlibPool sync.Pool // io.ReadCloser implementing flate.Resetter, zlib.Resetter

// inflateRaw inflates a raw deflate stream (qcow2's zlib compression type:
// deflate with a -12 window, no zlib header).
func inflateRaw(src, out []byte) error {
	return inflate(&flatePool, "deflate", src, out,
		func(r io.Reader) (io.ReadCloser, error) { return flate.NewReader(r), nil },
		func(rc io.ReadCloser, r io.Reader) error { return rc.(flate.Resetter).Reset(r, nil) })
}

// inflateZlib inflates a zlib (RFC 1950) stream, as VMDK grains are stored.
func inflateZlib(src, out []byte) error {
	return inflate(&zlibPool, "zlib", src, out, zlib.NewReader,
		func(rc io.ReadCloser, r io.Reader) error { return rc.(zlib.Resetter).Reset(r, nil) })
}

// inflate fills out from src with a decompressor of pool, reset for src,
// or a new one made by open.
func inflate(pool *sync.Pool, what string, src, out []byte, open func(io.Reader) (io.ReadCloser, error), reset func(io.ReadCloser, io.Reader) error) error {
	br := bytes.NewReader(src)
	var rc io.ReadCloser
	if v := pool.Get(); v != nil {
		rc = v.(io.ReadCloser)
		if err := reset(rc, br); err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
	} else {
		var err error
		if rc, err = open(br); err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
	}
	_, err := io.ReadFull(rc, out)
	pool.Put(rc)
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	return nil
}

var zstdPool = sync.Pool{New: func() any {
	d, err := zstd.NewReader(nil,
		zstd.WithDecoderConcurrency(1),
		zstd.WithDecoderLowmem(true),
		zstd.WithDecoderMaxWindow(8<<20),
		zstd.WithDecoderMaxMemory(64<<20))
	if err != nil {
		return err
	}
	return d
}}

// unzstd decodes a zstd stream (qcow2's zstd compression type) into out;
// bytes after the cluster's frames (the rest of the last sector) are not
// read.
func unzstd(src, out []byte) error {
	v := zstdPool.Get()
	d, ok := v.(*zstd.Decoder)
	if !ok {
		return fmt.Errorf("zstd: %v", v)
	}
	defer zstdPool.Put(d)
	if err := d.Reset(bytes.NewReader(src)); err != nil {
		return fmt.Errorf("zstd: %w", err)
	}
	if _, err := io.ReadFull(d, out); err != nil {
		return fmt.Errorf("zstd: %w", err)
	}
	return nil
}
