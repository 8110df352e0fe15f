// Package ondisk holds the decoding helpers the runtime readers share:
// JSON records decoded whole, with the byte offset of what is wrong
// (OffsetError, Warning); the overlay drivers' layout of Docker and
// containers-storage (lower files of l/<short> link names, resolved inside
// the driver directory only: Lowers, ResolveShort); parent chains followed
// with a bound and loop detection (Chain); directories of a store listed
// with a bound (List). The decoders take bytes already read (and bounded)
// by the caller; what reads the evidence does so only through
// evidence.Source and never writes to it. Lowers is not safe for
// concurrent use; the functions are.
package ondisk

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"strconv"
	"strings"

	"github.com/deadnode/deadnode/evidence"
	"github.com/deadnode/deadnode/forensics/internal/pathutil"
	"github.com/deadnode/deadnode/image"
)

// OffsetError is a decoding error at a byte offset of the data decoded.
type OffsetError struct {
	Offset int64
	Err    error
}

func (e *OffsetError) Error() string { return fmt.Sprintf("offset %d: %v", e.Offset, e.Err) }
func (e *OffsetError) Unwrap() error { return e.Err }

// Object decodes one JSON object from b and refuses trailing data (a torn
// or concatenated file). empty is the error text for a blank b. An error
// that has a place is an *OffsetError.
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
			return &OffsetError{int64(len(b)), errors.New("torn: the data ends inside the object")}
		}
		return JSONErr(err, 0)
	}
	if dec.More() {
		return &OffsetError{dec.InputOffset(), errors.New("trailing data")}
	}
	return nil
}

// TypeError says whether err is a JSON value of the wrong type (a number
// out of range, a string for a number): encoding/json has decoded the rest
// of the object all the same, so the record's other facts stand.
func TypeError(err error) bool {
	var te *json.UnmarshalTypeError
	return errors.As(err, &te)
}

// JSONErr places a JSON syntax or type error at its byte offset (from
// base) as an *OffsetError; other errors are returned as they are.
func JSONErr(err error, base int64) error {
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return &OffsetError{base + se.Offset, err}
	}
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		return &OffsetError{base + te.Offset, err}
	}
	return err
}

// Warning is a warning about file: what failed to decode and why, at the
// byte offset of an *OffsetError in err's chain (-1 when none).
func Warning(file, what string, err error) evidence.Warning {
	var oe *OffsetError
	if errors.As(err, &oe) {
		msg := oe.Err.Error()
		if err != error(oe) { // wrapped: keep the wrapper's words; the Offset says where
			msg = strings.Replace(err.Error(), oe.Error(), msg, 1)
		}
		return evidence.Warning{File: file, Offset: oe.Offset, Msg: what + ": " + msg}
	}
	var fe *evidence.FormatError
	if errors.As(err, &fe) {
		return evidence.WarningOf(err)
	}
	return evidence.Warning{File: file, Offset: -1, Msg: what + ": " + err.Error()}
}

// ParseLower splits an overlay lower file ("l/A:l/B:…", top first) into
// its entries. Each must be <linkDir>/<short>, a plain name under the
// driver's link directory: anything else (an absolute path, "..", an empty
// entry) is an *OffsetError naming the entry and its offset. More than max
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
		if !ok || !pathutil.PlainName(short) {
			return nil, &OffsetError{int64(off), fmt.Errorf("lower entry %q is not an %s/<short> link name", p, linkDir)}
		}
		off += len(p) + 1
	}
	return parts, nil
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
		if id, ok := strings.CutSuffix(rest, "/"+diffDir); ok && pathutil.PlainName(id) && id != linkDir {
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
	if len(parts) != 2 || parts[1] != diffDir || !pathutil.PlainName(parts[0]) || parts[0] == linkDir {
		return "", "", fmt.Errorf("link %s -> %s does not name a layer's diff directory (resolves to /%s); refused", entry, target, r)
	}
	if st, err := src.Lstat(r); err != nil {
		return "", "", fmt.Errorf("link %s -> %s: %w", entry, target, err)
	} else if !st.Mode.IsDir() {
		return "", "", fmt.Errorf("link %s -> %s is not a directory", entry, target)
	}
	return "/" + r, parts[0], nil
}

// Lowers reads the lower files of one overlay driver directory and
// resolves their <linkDir>/<short> entries (see ResolveShort), each link
// once. It is not safe for concurrent use.
type Lowers struct {
	Src       evidence.Source
	DriverDir string // resolved, no leading "/"
	LinkDir   string // "l"
	DiffDir   string // "diff"
	MaxFile   int64  // bytes of a lower file
	MaxLowers int    // entries of a lower file

	links map[string]link
}

// Lower is one entry of a lower file, resolved.
type Lower struct {
	Short string // the entry ("l/<short>")
	Dir   string // the diff directory it links to ("/"-rooted)
	ID    string // the layer directory it belongs to (<DriverDir>/<ID>)
}

type link struct {
	dir, id string
	err     error
}

// Read reads the lower file name (inside the evidence) and resolves its
// entries, top first. An error names the file (and the byte offset of a
// bad entry).
func (l *Lowers) Read(name string) ([]Lower, error) {
	b, err := evidence.ReadFile(l.Src, name, l.MaxFile)
	if err != nil {
		return nil, fmt.Errorf("/%s: %w", name, err)
	}
	entries, err := ParseLower(b, l.LinkDir, l.MaxLowers)
	if err != nil {
		w := Warning("/"+name, "lower file", err)
		return nil, &evidence.FormatError{File: w.File, Offset: w.Offset, Msg: w.Msg}
	}
	if l.links == nil {
		l.links = map[string]link{}
	}
	out := make([]Lower, 0, len(entries))
	for _, e := range entries {
		r, ok := l.links[e]
		if !ok {
			r.dir, r.id, r.err = ResolveShort(l.Src, l.DriverDir, e, l.LinkDir, l.DiffDir)
			l.links[e] = r
		}
		if r.err != nil {
			return nil, fmt.Errorf("/%s: %w", name, r.err)
		}
		out = append(out, Lower{Short: e, Dir: r.dir, ID: r.id})
	}
	return out, nil
}

// List reads a directory of a store, at most max entries: an absent one is
// empty; one that cannot be read, or that holds more than max entries
// (what names them: "containers"), is a warning naming it.
func List(src evidence.Source, dir string, max int, what string) ([]*evidence.Stat, []evidence.Warning) {
	ents, err := src.ReadDir(dir)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, nil
		}
		return nil, []evidence.Warning{evidence.Warnf("/"+dir, -1, "%v", err)}
	}
	if len(ents) > max {
		return ents[:max], []evidence.Warning{evidence.Warnf("/"+dir, -1, "more than %d %s; the rest is not read", max, what)}
	}
	return ents, nil
}

// CheckDir says whether dir (inside the evidence) is a directory; when it
// is not, the warning says so, naming it as what ("layer directory").
func CheckDir(src evidence.Source, dir, what string) (evidence.Warning, bool) {
	st, err := src.Lstat(dir)
	switch {
	case err != nil:
		return evidence.Warnf("", -1, "%s /%s: %v", what, dir, err), false
	case !st.Mode.IsDir():
		return evidence.Warnf("", -1, "%s /%s is not a directory", what, dir), false
	}
	return evidence.Warning{}, true
}

// Chain follows a parent chain from start: next returns an id's parent
// ("" at the end) and whether the id is known. It returns the ids
// followed, the id where the chain loops (or passes max ids), and the id
// that is not known ("" when none).
func Chain(start string, max int, next func(id string) (parent string, ok bool)) (ids []string, loop, missing string) {
	seen := map[string]bool{}
	for p := start; p != ""; {
		if seen[p] || len(seen) >= max {
			return ids, p, ""
		}
		seen[p] = true
		parent, ok := next(p)
		if !ok {
			return ids, "", p
		}
		ids = append(ids, p)
		p = parent
	}
	return ids, "", ""
}

// K8sAttempt is the restart attempt of a container named the kubelet's
// way (dockershim, cri-dockerd, podman kube play):
// k8s_<container>_<pod>_<namespace>_<uid>_<attempt>; 0 for other names.
func K8sAttempt(name string) uint32 {
	if !strings.HasPrefix(name, "k8s_") {
		return 0
	}
	n, err := strconv.ParseUint(name[strings.LastIndexByte(name, '_')+1:], 10, 32)
	if err != nil {
		return 0
	}
	return uint32(n)
}

// TarSplitLayer is an image layer of a store that keeps no layer blobs
// (Docker's overlay2, containers-storage): its unpacked directory, and
// the tar-split record from which its tar is rebuilt.
type TarSplitLayer struct {
	DiffID   string // what the rebuilt tar must hash to
	Dir      string // the unpacked directory ("/"-rooted)
	TarSplit string // the tar-split file ("/"-rooted)
}

// VerifyTarSplit verifies one image's layers, ids bottom first, against
// their tar-split records (image.VerifyTarSplitFile) and adds each to v.
// layer finds a layer of the store; one it does not know is unverifiable
// with the reason missing. done holds each layer's result, so that a layer
// several images share is verified once.
func VerifyTarSplit(ctx context.Context, src evidence.Source, v image.Verification, ids []string, layer func(id string) (TarSplitLayer, bool), missing string, done map[string]*image.LayerResult, opt *image.VerifyOptions) image.Verification {
	v.Status, v.Layers = image.StatusVerified, []image.LayerVerification{}
	for i, id := range ids {
		res := done[id]
		if res == nil {
			if l, ok := layer(id); ok {
				res = image.VerifyTarSplitFile(ctx, src, l.TarSplit, l.DiffID, l.Dir, opt)
				done[id] = res
			} else {
				res = &image.LayerResult{Status: image.StatusUnverifiable, Reason: missing}
			}
		}
		vl := image.LayerVerificationOf(i, "", res.DiffID, id, res.SnapshotDir, res)
		v.Status = image.Worse(v.Status, vl.Status)
		v.Layers = append(v.Layers, vl)
	}
	return v
}
