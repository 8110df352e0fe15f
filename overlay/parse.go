package overlay

import (
	"errors"
	"fmt"
	"strings"
)

var (
	// ErrInvalidRedirect is a redirect value the kernel ignores (with a
	// warning): empty, an empty component, or a relative value with a "/".
	ErrInvalidRedirect = errors.New("invalid overlay redirect")
	// ErrRedirectEscape is a redirect holding "." or ".." components: the
	// kernel fails the lookup (EACCES) and so do we; it never climbs out of
	// the layer.
	ErrRedirectEscape = errors.New("overlay redirect with \".\" or \"..\" component")
	// ErrInvalidMetacopy is a metacopy value the kernel refuses (EIO).
	ErrInvalidMetacopy = errors.New("invalid overlay metacopy xattr")
)

// Redirect is a parsed overlay.redirect value.
type Redirect struct {
	// Absolute redirects name a path from the layer root; Path then holds
	// it without the leading slash. A relative redirect is one name in the
	// same parent directory.
	Absolute bool   `json:"absolute"`
	Path     string `json:"path"`
}

// ParseRedirect validates a redirect xattr value as the kernel does
// (ovl_check_redirect): an absolute value is "/" followed by non-empty
// components, a relative value is a single name.
func ParseRedirect(val []byte) (Redirect, error) {
	if len(val) == 0 {
		return Redirect{}, fmt.Errorf("%w: empty", ErrInvalidRedirect)
	}
	if len(val) > MaxRedirect {
		return Redirect{}, fmt.Errorf("%w: %d bytes, limit %d", ErrInvalidRedirect, len(val), MaxRedirect)
	}
	s := string(val)
	if strings.IndexByte(s, 0) >= 0 {
		return Redirect{}, fmt.Errorf("%w: NUL byte", ErrInvalidRedirect)
	}
	if s[0] != '/' {
		if strings.IndexByte(s, '/') >= 0 {
			return Redirect{}, fmt.Errorf("%w: relative redirect %q holds a \"/\"", ErrInvalidRedirect, s)
		}
		if s == "." || s == ".." {
			return Redirect{}, fmt.Errorf("%w: %q", ErrRedirectEscape, s)
		}
		return Redirect{Path: s}, nil
	}
	rest := s[1:]
	if rest == "" {
		return Redirect{}, fmt.Errorf("%w: %q has an empty component", ErrInvalidRedirect, s)
	}
	for _, c := range strings.Split(rest, "/") {
		switch c {
		case "":
			return Redirect{}, fmt.Errorf("%w: %q has an empty component", ErrInvalidRedirect, s)
		case ".", "..":
			return Redirect{}, fmt.Errorf("%w: %q", ErrRedirectEscape, s)
		}
	}
	return Redirect{Absolute: true, Path: rest}, nil
}

// Metacopy is a parsed overlay.metacopy value. An empty value is valid and
// means "metadata only, no digest".
type Metacopy struct {
	Version    uint8  `json:"version"`
	Flags      uint8  `json:"flags"`
	DigestAlgo uint8  `json:"digest_algo"` // fs-verity hash algorithm (1 = sha256, 2 = sha512)
	Digest     []byte `json:"digest,omitempty"`
}

// ParseMetacopy validates a metacopy xattr value as the kernel does
// (ovl_check_metacopy_xattr).
func ParseMetacopy(val []byte) (Metacopy, error) {
	switch {
	case len(val) == 0:
		return Metacopy{}, nil
	case len(val) < MetacopyMinSize:
		return Metacopy{}, fmt.Errorf("%w: %d bytes, too small", ErrInvalidMetacopy, len(val))
	case len(val) > MetacopyMaxSize:
		return Metacopy{}, fmt.Errorf("%w: %d bytes, too large", ErrInvalidMetacopy, len(val))
	case val[0] != 0:
		return Metacopy{}, fmt.Errorf("%w: unsupported version %d", ErrInvalidMetacopy, val[0])
	case int(val[1]) != len(val):
		return Metacopy{}, fmt.Errorf("%w: length field %d, value is %d bytes", ErrInvalidMetacopy, val[1], len(val))
	}
	m := Metacopy{Version: val[0], Flags: val[2], DigestAlgo: val[3]}
	if len(val) > MetacopyMinSize {
		m.Digest = append([]byte(nil), val[MetacopyMinSize:]...)
	}
	return m, nil
}

// WhiteoutKind classifies an OCI layer member name.
type WhiteoutKind int

const (
	NotWhiteout    WhiteoutKind = iota // ordinary content
	Whiteout                           // .wh.NAME: NAME is deleted from lower layers
	OpaqueWhiteout                     // .wh..wh..opq: the directory hides its lower contents
	WhiteoutMeta                       // other .wh..wh.* (AUFS metadata): never content
)

// ParseWhiteoutName classifies the base name of an OCI layer member. For a
// Whiteout it returns the name it deletes.
func ParseWhiteoutName(base string) (WhiteoutKind, string) {
	switch {
	case !strings.HasPrefix(base, WhiteoutPrefix):
		return NotWhiteout, ""
	case base == WhiteoutOpaque:
		return OpaqueWhiteout, ""
	case strings.HasPrefix(base, whiteoutMeta):
		return WhiteoutMeta, ""
	}
	target := base[len(WhiteoutPrefix):]
	if target == "" || target == "." || target == ".." || strings.ContainsAny(target, "/\x00") {
		return WhiteoutMeta, ""
	}
	return Whiteout, target
}

// overlayXattr looks up an overlay attribute in xs under the prefixes the
// view reads.
func (v *View) overlayXattr(xs map[string][]byte, suffix string) ([]byte, bool) {
	for _, p := range v.prefixes {
		if b, ok := xs[p+suffix]; ok {
			return b, true
		}
	}
	return nil, false
}

// visibleXattrs filters the overlay-internal attributes out of a layer
// entry's xattrs and unescapes escaped ones (trusted.overlay.overlay.X is
// shown as trusted.overlay.X), as listxattr on a mount does.
func (v *View) visibleXattrs(xs map[string][]byte) map[string][]byte {
	var out map[string][]byte
	for k, val := range xs {
		name := k
		for _, p := range v.prefixes {
			if strings.HasPrefix(k, p) {
				rest := k[len(p):]
				if !strings.HasPrefix(rest, xattrEscapeSub) {
					name = ""
				} else {
					name = p + rest[len(xattrEscapeSub):]
				}
				break
			}
		}
		if name == "" {
			continue
		}
		if out == nil {
			out = map[string][]byte{}
		}
		out[name] = val
	}
	return out
}
