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

var flatePool sync.Pool // io.ReadCloser implementing flate.Resetter

// inflateRaw inflates a raw deflate stream (qcow2's zlib compression type:
// deflate with a -12 window, no zlib header).
func inflateRaw(src, out []byte) error {
	br := bytes.NewReader(src)
	var fr io.ReadCloser
	if v := flatePool.Get(); v != nil {
		fr = v.(io.ReadCloser)
		if err := fr.(flate.Resetter).Reset(br, nil); err != nil {
			return err
		}
	} else {
		fr = flate.NewReader(br)
	}
	_, err := io.ReadFull(fr, out)
	flatePool.Put(fr)
	if err != nil {
		return fmt.Errorf("deflate: %w", err)
	}
	return nil
}

var zlibPool sync.Pool // io.ReadCloser implementing zlib.Resetter

// inflateZlib inflates a zlib (RFC 1950) stream, as VMDK grains are stored.
func inflateZlib(src, out []byte) error {
	br := bytes.NewReader(src)
	var zr io.ReadCloser
	if v := zlibPool.Get(); v != nil {
		zr = v.(io.ReadCloser)
		if err := zr.(zlib.Resetter).Reset(br, nil); err != nil {
			return fmt.Errorf("zlib: %w", err)
		}
	} else {
		var err error
		if zr, err = zlib.NewReader(br); err != nil {
			return fmt.Errorf("zlib: %w", err)
		}
	}
	_, err := io.ReadFull(zr, out)
	zlibPool.Put(zr)
	if err != nil {
		return fmt.Errorf("zlib: %w", err)
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
