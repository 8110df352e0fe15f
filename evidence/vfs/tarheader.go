package vfs

import (
	"bytes"
	"strconv"
	"strings"
)

// IsTarHeader says whether b starts with a tar header block: a valid
// header checksum (ustar, GNU and v7 headers alike) and not all zeros.
func IsTarHeader(b []byte) bool {
	if len(b) < 512 {
		return false
	}
	b = b[:512]
	if bytes.Equal(b, make([]byte, 512)) {
		return false
	}
	want, ok := TarNumeric(b[148:156])
	if !ok {
		return false
	}
	var unsigned, signed int64
	for i, c := range b {
		if i >= 148 && i < 156 {
			c = ' '
		}
		unsigned += int64(c)
		signed += int64(int8(c))
	}
	return want == unsigned || want == signed
}

// TarNumeric parses a tar number field: octal (space or NUL padded) or
// GNU base-256 (high bit set).
func TarNumeric(b []byte) (int64, bool) {
	if len(b) > 0 && b[0]&0x80 != 0 {
		if b[0]&0x40 != 0 {
			return 0, false // negative
		}
		var v int64
		for i, c := range b {
			if i == 0 {
				c &= 0x7f
			}
			if v > (1<<55)-1 {
				return 0, false
			}
			v = v<<8 | int64(c)
		}
		return v, true
	}
	s := strings.Trim(string(b), " \x00")
	if s == "" {
		return 0, true
	}
	v, err := strconv.ParseInt(s, 8, 64)
	return v, err == nil
}
