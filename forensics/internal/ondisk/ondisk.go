// Package ondisk holds the decoding helpers that the Docker and
// containers-storage readers share: both keep their records as single JSON
// objects and both use the overlay2 driver's layout (lower files of
// l/<short> link names). The decoders take bytes already read (and
// bounded) by the caller; ResolveShort reads the evidence only through
// evidence.Source and never writes to it.
package ondisk

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"strings"

	"github.com/deadnode/deadnode/evidence"
)

// Object decodes one JSON object from b and refuses trailing data (a torn
// or concatenated file). empty is the error text for a blank b.
func Object(b []byte, v any, empty string) error {
	b = bytes.TrimSpace(b)
	if len(b) == 0 {
		return errors.New(empty)
	}
	if b[0] != '{' {
		return errors.New("not a JSON object")
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	if err := dec.Decode(v); err != nil {
		if errors.Is(err, io.ErrUnexpectedEOF) {
			return fmt.Errorf("offset %d: torn: the data ends inside the object", len(b))
		}
		return JSONErr(err, 0)
	}
	if dec.More() {
		return fmt.Errorf("trailing data at offset %d", dec.InputOffset())
	}
	return nil
}

// JSONErr names the byte offset (from base) of a JSON syntax or type error;
// other errors are returned as they are.
func JSONErr(err error, base int64) error {
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return fmt.Errorf("offset %d: %v", base+se.Offset, err)
	}
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		return fmt.Errorf("offset %d: %v", base+te.Offset, err)
	}
	return err
}

// ParseLower splits an overlay lower file ("l/A:l/B:…", top first) into
// its entries. Each must be <linkDir>/<short>, a plain name under the
// driver's link directory: anything else (an absolute path, "..", an empty
// entry) is an error naming the entry and its offset. More than max
// entries is an error.
func ParseLower(b []byte, linkDir string, max int) ([]string, error) {
	s := strings.TrimRight(string(b), "\n")
	if s == "" {
		return nil, errors.New("empty lower file")
	}
	parts := strings.Split(s, ":")
	if len(parts) > max {
		return nil, fmt.Errorf("%d lower entries, over the limit of %d", len(parts), max)
	}
	off := 0
	for _, p := range parts {
		short, ok := strings.CutPrefix(p, linkDir+"/")
		if !ok || !PlainName(short) {
			return nil, fmt.Errorf("offset %d: lower entry %q is not an %s/<short> link name", off, p, linkDir)
		}
		off += len(p) + 1
	}
	return parts, nil
}

// PlainName says whether s can be used as one path component: not empty,
// not . or .., at most 255 bytes, no slash and no NUL.
func PlainName(s string) bool {
	return s != "" && s != "." && s != ".." && len(s) <= 255 && !strings.ContainsAny(s, "/\x00")
}

// ResolveShort resolves a <linkDir>/<short> entry of a lower file to the diff
// directory it links to, inside the evidence and inside driverDir only: a
// link that leaves driverDir (absolute, ../..), or that does not name
// <driverDir>/<id>/<diffDir>, is refused. It returns the directory
// ("/"-rooted, resolved inside the evidence) and the layer id.
func ResolveShort(src evidence.Source, driverDir, entry, linkDir, diffDir string) (dir, id string, err error) {
	link := path.Join(driverDir, entry)
	st, err := src.Lstat(link)
	if err != nil {
		return "", "", fmt.Errorf("link %s: %w", entry, err)
	}
	if st.Mode&fs.ModeSymlink == 0 {
		return "", "", fmt.Errorf("link %s is not a symbolic link", entry)
	}
	target, err := src.Readlink(link)
	if err != nil {
		return "", "", fmt.Errorf("link %s: %w", entry, err)
	}
	// The form dockerd and containers-storage write, ../<id>/diff, is
	// taken lexically: the Lstat refuses a <id> or diff that is itself a
	// link.
	if rest, ok := strings.CutPrefix(target, "../"); ok {
		if id, ok := strings.CutSuffix(rest, "/"+diffDir); ok && PlainName(id) && id != linkDir {
			r := path.Join(driverDir, id, diffDir)
			if st, err := src.Lstat(r); err != nil {
				return "", "", fmt.Errorf("link %s -> %s: %w", entry, target, err)
			} else if !st.Mode.IsDir() {
				return "", "", fmt.Errorf("link %s -> %s is not a directory", entry, target)
			}
			return "/" + r, id, nil
		}
	}
	r, err := evidence.Resolve(src, link, true)
	if err != nil {
		return "", "", fmt.Errorf("link %s -> %s: %w", entry, target, err)
	}
	rel, ok := strings.CutPrefix(r, driverDir+"/")
	if !ok {
		return "", "", fmt.Errorf("link %s -> %s leaves %s (resolves to /%s); refused", entry, target, "/"+driverDir, r)
	}
	parts := strings.Split(rel, "/")
	if len(parts) != 2 || parts[1] != diffDir || !PlainName(parts[0]) || parts[0] == linkDir {
		return "", "", fmt.Errorf("link %s -> %s does not name a layer's diff directory (resolves to /%s); refused", entry, target, r)
	}
	if st, err := src.Lstat(r); err != nil {
		return "", "", fmt.Errorf("link %s -> %s: %w", entry, target, err)
	} else if !st.Mode.IsDir() {
		return "", "", fmt.Errorf("link %s -> %s is not a directory", entry, target)
	}
	return "/" + r, parts[0], nil
}
