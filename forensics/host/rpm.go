package host

import (
	"context"
	"database/sql"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/deadnode/deadnode/evidence"
	"github.com/deadnode/deadnode/evidence/vfs"
	_ "modernc.org/sqlite" // pure-Go SQLite, for rpmdb.sqlite
)

// rpm's database: since rpm 4.16 an SQLite file whose Packages table
// holds one header blob per installed package (hnum INTEGER PRIMARY KEY,
// blob BLOB); older systems keep a Berkeley DB hash file "Packages", SUSE
// an NDB "Packages.db". A header blob (rpm lib/header.c, headerImport) is:
//
//	il  uint32 BE   number of index entries
//	dl  uint32 BE   bytes of the data store
//	il × { tag int32, type uint32, offset int32, count uint32 } BE
//	dl bytes of data; each entry's value lies at offset
const (
	rpmSQLite = "rpmdb.sqlite"
	rpmBDB    = "Packages"
	rpmNDB    = "Packages.db"
	// sqlRPMPackages reads every header blob.
	sqlRPMPackages = "SELECT hnum, blob FROM Packages"
	// maxRPMDB bounds the database copied out of the evidence.
	maxRPMDB = 4 << 30
	// MaxRPMHeader bounds one header blob (rpm's own limit is 256 MiB).
	MaxRPMHeader = 64 << 20
	// maxRPMIndex bounds the index entries of a header (rpm's
	// HEADER_TAGS_MAX).
	maxRPMIndex = 0xffff
	// maxRPMFiles bounds the files of one package.
	maxRPMFiles = 1 << 20
)

var rpmDBDirs = []string{"/var/lib/rpm", "/usr/lib/sysimage/rpm"}

// Header tags read (rpm lib/rpmtag.h).
const (
	rpmTagName           = 1000
	rpmTagVersion        = 1001
	rpmTagRelease        = 1002
	rpmTagEpoch          = 1003
	rpmTagArch           = 1022
	rpmTagOldFilenames   = 1027
	rpmTagFileSizes      = 1028
	rpmTagFileStates     = 1029
	rpmTagFileModes      = 1030
	rpmTagFileDigests    = 1035
	rpmTagFileLinkTos    = 1036
	rpmTagFileFlags      = 1037
	rpmTagDirIndexes     = 1116
	rpmTagBasenames      = 1117
	rpmTagDirnames       = 1118
	rpmTagLongFileSizes  = 5008
	rpmTagFileDigestAlgo = 5011
)

// Header value types.
const (
	rpmNull = iota
	rpmChar
	rpmInt8
	rpmInt16
	rpmInt32
	rpmInt64
	rpmString
	rpmBin
	rpmStringArray
	rpmI18NString
)

// File flags (rpmfiles.h).
const (
	rpmFileConfig = 1 << 0
	rpmFileGhost  = 1 << 6
)

// rpmAlgos maps PGPHASHALGO values to digest names.
var rpmAlgos = map[int64]string{1: AlgoMD5, 2: AlgoSHA1, 8: AlgoSHA256, 9: AlgoSHA384, 10: AlgoSHA512}

// RPMHeader is what deadnode reads of an installed package's header.
type RPMHeader struct {
	Name, Version, Release, Arch string
	Epoch                        *int64
	Files                        []RPMFile
	DigestAlgo                   string
}

// RPMFile is one file of an RPM header.
type RPMFile struct {
	Path   string
	Mode   fs.FileMode
	Size   int64
	Digest string
	LinkTo string
	Flags  uint32
	State  int // 0 normal; 1 replaced, 2 not installed, 3 net shared, 4 wrong color
}

type rpmEntry struct {
	tag, typ    uint32
	offset, cnt uint32
	entryOffset int64
}

type rpmBlob struct {
	b       []byte
	data    []byte
	dataOff int64
	entries map[uint32]rpmEntry
}

// ParseRPMHeader reads an RPM header blob as rpmdb stores it (no lead, no
// magic). Offsets in errors are relative to the blob.
func ParseRPMHeader(b []byte) (*RPMHeader, error) {
	bl, err := parseRPMBlob(b)
	if err != nil {
		return nil, err
	}
	h := &RPMHeader{}
	h.Name, _ = bl.str(rpmTagName)
	h.Version, _ = bl.str(rpmTagVersion)
	h.Release, _ = bl.str(rpmTagRelease)
	h.Arch, _ = bl.str(rpmTagArch)
	if v, err := bl.ints(rpmTagEpoch); err == nil && len(v) == 1 {
		h.Epoch = &v[0]
	}
	if h.Name == "" {
		return nil, &evidence.FormatError{File: "rpm header", Offset: 0, Msg: "no NAME tag"}
	}
	h.DigestAlgo = AlgoMD5
	if v, err := bl.ints(rpmTagFileDigestAlgo); err == nil && len(v) == 1 {
		if a, ok := rpmAlgos[v[0]]; ok {
			h.DigestAlgo = a
		} else {
			return nil, &evidence.FormatError{File: "rpm header", Offset: bl.entries[rpmTagFileDigestAlgo].entryOffset, Msg: fmt.Sprintf("unknown file digest algorithm %d", v[0])}
		}
	}
	var names []string
	if base, err := bl.strs(rpmTagBasenames); err == nil {
		dirs, err := bl.strs(rpmTagDirnames)
		if err != nil {
			return nil, err
		}
		idx, err := bl.ints(rpmTagDirIndexes)
		if err != nil {
			return nil, err
		}
		if len(idx) != len(base) {
			return nil, &evidence.FormatError{File: "rpm header", Offset: bl.entries[rpmTagDirIndexes].entryOffset, Msg: fmt.Sprintf("%d dir indexes for %d basenames", len(idx), len(base))}
		}
		names = make([]string, len(base))
		for i, bn := range base {
			if idx[i] < 0 || idx[i] >= int64(len(dirs)) {
				return nil, &evidence.FormatError{File: "rpm header", Offset: bl.entries[rpmTagDirIndexes].entryOffset, Msg: fmt.Sprintf("file %d: dir index %d out of %d", i, idx[i], len(dirs))}
			}
			names[i] = dirs[idx[i]] + bn
		}
	} else if errors.Is(err, errNoTag) {
		if old, err := bl.strs(rpmTagOldFilenames); err == nil {
			names = old
		} else if !errors.Is(err, errNoTag) {
			return nil, err
		}
	} else {
		return nil, err
	}
	n := len(names)
	if n > maxRPMFiles {
		return nil, &evidence.FormatError{File: "rpm header", Offset: 0, Msg: fmt.Sprintf("%d files, over %d", n, maxRPMFiles)}
	}
	// per-file arrays: each must have one value per file when present
	modes, err := perFile(bl, rpmTagFileModes, n, bl.ints)
	if err != nil {
		return nil, err
	}
	sizes, err := perFile(bl, rpmTagLongFileSizes, n, bl.ints)
	if err != nil {
		return nil, err
	}
	if sizes == nil {
		if sizes, err = perFile(bl, rpmTagFileSizes, n, bl.ints); err != nil {
			return nil, err
		}
	}
	flags, err := perFile(bl, rpmTagFileFlags, n, bl.ints)
	if err != nil {
		return nil, err
	}
	states, err := perFile(bl, rpmTagFileStates, n, bl.ints)
	if err != nil {
		return nil, err
	}
	digests, err := perFile(bl, rpmTagFileDigests, n, bl.strs)
	if err != nil {
		return nil, err
	}
	links, err := perFile(bl, rpmTagFileLinkTos, n, bl.strs)
	if err != nil {
		return nil, err
	}
	h.Files = make([]RPMFile, n)
	for i, name := range names {
		f := RPMFile{Path: name}
		if modes != nil {
			f.Mode = vfs.FromUnixMode(uint32(uint16(modes[i])))
		}
		if sizes != nil {
			f.Size = sizes[i]
		}
		if flags != nil {
			f.Flags = uint32(flags[i])
		}
		if states != nil {
			f.State = int(int8(states[i]))
		}
		if digests != nil {
			f.Digest = strings.ToLower(digests[i])
		}
		if links != nil {
			f.LinkTo = links[i]
		}
		h.Files[i] = f
	}
	return h, nil
}

var errNoTag = errors.New("tag absent")

func parseRPMBlob(b []byte) (*rpmBlob, error) {
	ferr := func(off int64, format string, args ...any) error {
		return &evidence.FormatError{File: "rpm header", Offset: off, Msg: fmt.Sprintf(format, args...)}
	}
	if len(b) < 8 {
		return nil, ferr(0, "%d bytes, too short for a header", len(b))
	}
	il := binary.BigEndian.Uint32(b[0:])
	dl := binary.BigEndian.Uint32(b[4:])
	if il == 0 || il > maxRPMIndex {
		return nil, ferr(0, "%d index entries (1..%d)", il, maxRPMIndex)
	}
	if dl > MaxRPMHeader {
		return nil, ferr(4, "a %d-byte data store, over %d", dl, MaxRPMHeader)
	}
	need := 8 + int64(il)*16 + int64(dl)
	if int64(len(b)) < need {
		return nil, ferr(0, "%d index entries and %d data bytes need %d bytes, the blob has %d", il, dl, need, len(b))
	}
	bl := &rpmBlob{b: b, dataOff: 8 + int64(il)*16, entries: make(map[uint32]rpmEntry, min(il, 256))}
	bl.data = b[bl.dataOff:need]
	for i := int64(0); i < int64(il); i++ {
		o := 8 + i*16
		e := rpmEntry{
			tag:         binary.BigEndian.Uint32(b[o:]),
			typ:         binary.BigEndian.Uint32(b[o+4:]),
			offset:      binary.BigEndian.Uint32(b[o+8:]),
			cnt:         binary.BigEndian.Uint32(b[o+12:]),
			entryOffset: o,
		}
		if e.typ > rpmI18NString {
			return nil, ferr(o, "entry %d (tag %d): unknown type %d", i, e.tag, e.typ)
		}
		if e.offset > dl {
			return nil, ferr(o, "entry %d (tag %d): offset %d past the %d-byte data store", i, e.tag, e.offset, dl)
		}
		// Later entries (rpm's "dribbles") replace earlier ones.
		bl.entries[e.tag] = e
	}
	return bl, nil
}

func (bl *rpmBlob) ferr(e rpmEntry, format string, args ...any) error {
	return &evidence.FormatError{File: "rpm header", Offset: e.entryOffset, Msg: fmt.Sprintf("tag %d: ", e.tag) + fmt.Sprintf(format, args...)}
}

// ints reads an integer array tag (any integer or char type).
func (bl *rpmBlob) ints(tag uint32) ([]int64, error) {
	e, ok := bl.entries[tag]
	if !ok {
		return nil, errNoTag
	}
	var w int
	switch e.typ {
	case rpmChar, rpmInt8:
		w = 1
	case rpmInt16:
		w = 2
	case rpmInt32:
		w = 4
	case rpmInt64:
		w = 8
	default:
		return nil, bl.ferr(e, "type %d where an integer is expected", e.typ)
	}
	if e.cnt > maxRPMFiles {
		return nil, bl.ferr(e, "%d values, over %d", e.cnt, maxRPMFiles)
	}
	end := uint64(e.offset) + uint64(e.cnt)*uint64(w)
	if end > uint64(len(bl.data)) {
		return nil, bl.ferr(e, "%d values of %d bytes at %d run past the %d-byte data store", e.cnt, w, e.offset, len(bl.data))
	}
	out := make([]int64, e.cnt)
	d := bl.data[e.offset:end]
	for i := range out {
		switch w {
		case 1:
			out[i] = int64(d[i])
		case 2:
			out[i] = int64(int16(binary.BigEndian.Uint16(d[i*2:])))
		case 4:
			out[i] = int64(int32(binary.BigEndian.Uint32(d[i*4:])))
		case 8:
			out[i] = int64(binary.BigEndian.Uint64(d[i*8:]))
		}
	}
	return out, nil
}

// strs reads a string, string array or i18n string tag.
func (bl *rpmBlob) strs(tag uint32) ([]string, error) {
	e, ok := bl.entries[tag]
	if !ok {
		return nil, errNoTag
	}
	if e.typ != rpmString && e.typ != rpmStringArray && e.typ != rpmI18NString {
		return nil, bl.ferr(e, "type %d where a string is expected", e.typ)
	}
	if e.typ == rpmString && e.cnt != 1 {
		return nil, bl.ferr(e, "a string with count %d", e.cnt)
	}
	if e.cnt > maxRPMFiles {
		return nil, bl.ferr(e, "%d strings, over %d", e.cnt, maxRPMFiles)
	}
	// Every string takes at least its NUL byte.
	if uint64(e.cnt) > uint64(len(bl.data))-uint64(e.offset) {
		return nil, bl.ferr(e, "%d strings cannot fit in %d bytes", e.cnt, len(bl.data)-int(e.offset))
	}
	out := make([]string, 0, e.cnt)
	d := bl.data[e.offset:]
	for i := uint32(0); i < e.cnt; i++ {
		j := indexNUL(d)
		if j < 0 {
			return nil, bl.ferr(e, "string %d is not NUL-terminated inside the data store", i)
		}
		out = append(out, string(d[:j]))
		d = d[j+1:]
	}
	return out, nil
}

func indexNUL(b []byte) int {
	for i, c := range b {
		if c == 0 {
			return i
		}
	}
	return -1
}

func (bl *rpmBlob) str(tag uint32) (string, error) {
	s, err := bl.strs(tag)
	if err != nil {
		return "", err
	}
	if len(s) == 0 {
		return "", nil
	}
	return s[0], nil
}

// perFile reads a per-file array with read (bl.ints, bl.strs): nil when
// the tag is absent, an error when it does not hold n values.
func perFile[T any](bl *rpmBlob, tag uint32, n int, read func(uint32) ([]T, error)) ([]T, error) {
	v, err := read(tag)
	if errors.Is(err, errNoTag) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	if len(v) != n {
		return nil, bl.ferr(bl.entries[tag], "%d values for %d files", len(v), n)
	}
	return v, nil
}

// readRPM reads an rpmdb.sqlite: the database (and its write-ahead log)
// is copied to a private temp directory and opened query-only there, so
// SQLite never touches the evidence.
func readRPM(ctx context.Context, src evidence.Source, res *resolver, dbPath string, w *warnings) (out *PackageDB, err error) {
	tmp, err := os.MkdirTemp("", "deadnode-rpmdb-*")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	if err := copyOut(src, res, dbPath, filepath.Join(tmp, rpmSQLite), maxRPMDB); err != nil {
		return nil, err
	}
	if err := copyOut(src, res, dbPath+"-wal", filepath.Join(tmp, rpmSQLite+"-wal"), maxRPMDB); err != nil && !errors.Is(err, fs.ErrNotExist) {
		w.at(dbPath+"-wal", -1, "%v", err)
	}
	db := newDB(FormatRPM, dbPath, res)
	defer func() {
		if r := recover(); r != nil {
			out, err = nil, &evidence.FormatError{File: dbPath, Offset: -1, Msg: fmt.Sprintf("SQLite reader failed: %v", r)}
		}
	}()
	sdb, err := sql.Open("sqlite", "file:"+filepath.Join(tmp, rpmSQLite)+"?_pragma=query_only(1)&_pragma=busy_timeout(1000)")
	if err != nil {
		return nil, err
	}
	defer sdb.Close()
	rows, err := sdb.QueryContext(ctx, sqlRPMPackages)
	if err != nil {
		return nil, &evidence.FormatError{File: dbPath, Offset: -1, Msg: "not an rpm SQLite database (Packages table)", Err: err}
	}
	defer rows.Close()
	full := false
	for rows.Next() {
		if len(db.Packages) >= MaxPackages {
			w.at(dbPath, -1, "more than %d packages; the rest is not read", MaxPackages)
			break
		}
		var hnum int64
		var blob []byte
		if err := rows.Scan(&hnum, &blob); err != nil {
			w.at(dbPath, -1, "%v", err)
			continue
		}
		if len(blob) > MaxRPMHeader+8+maxRPMIndex*16 {
			w.at(dbPath, -1, "package %d: a %d-byte header, over the limit", hnum, len(blob))
			continue
		}
		h, err := ParseRPMHeader(blob)
		if err != nil {
			var fe *evidence.FormatError
			if errors.As(err, &fe) {
				fe.File = fmt.Sprintf("%s: Packages hnum %d", dbPath, hnum)
			}
			w.err(err)
			continue
		}
		pk := Package{Name: h.Name, Version: h.Version + "-" + h.Release, Architecture: h.Arch, Files: len(h.Files)}
		if h.Epoch != nil {
			pk.Version = fmt.Sprintf("%d:%s", *h.Epoch, pk.Version)
		}
		db.Packages = append(db.Packages, pk)
		for _, f := range h.Files {
			if f.State != 0 || full {
				continue
			}
			of := OwnedFile{Path: path.Clean("/" + f.Path), Package: h.Name, Mode: f.Mode, HasMode: true, Size: f.Size, LinkTo: f.LinkTo,
				Conffile: f.Flags&rpmFileConfig != 0, Ghost: f.Flags&rpmFileGhost != 0}
			if f.Mode.IsRegular() && !of.Ghost && f.Digest != "" {
				of.Digest, of.Algo = f.Digest, h.DigestAlgo
			}
			if !db.add(of, w) {
				full = true
				w.at(dbPath, -1, "more than %d owned paths; the rest is not read", MaxOwnedPaths)
			}
		}
		if err := ctx.Err(); err != nil {
			return nil, err
		}
	}
	if err := rows.Err(); err != nil {
		w.at(dbPath, -1, "%v", err)
	}
	db.finish()
	return db, nil
}

// copyOut copies a file of the evidence to a host path, refusing one
// larger than max.
func copyOut(src evidence.Source, res *resolver, p, to string, max int64) error {
	f, err := openResolved(src, res, p)
	if err != nil {
		return err
	}
	defer f.Close()
	if f.Size() > max {
		return &evidence.FormatError{File: p, Offset: -1, Msg: fmt.Sprintf("%d bytes, over the %d-byte limit", f.Size(), max)}
	}
	out, err := os.OpenFile(to, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, io.NewSectionReader(f, 0, f.Size())); err != nil {
		out.Close()
		return fmt.Errorf("%s: copy: %w", p, err)
	}
	return out.Close()
}
