package evidence

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// The cache keeps what decompressing a collection produced, so that the
// next command on the same evidence reads it instead of decompressing
// again. Layout of the cache directory (private: 0700, the user's own):
//
//	.lock                 held while evicting
//	KEY.lock              flock of one entry: shared to read, exclusive to build or evict
//	KEY/index             the archive index (archindex.go), with a checksum
//	KEY/data              the retained members' data, sparse (zero runs are holes)
//	tmp.KEY.PID.RAND/     an entry being built; renamed to KEY when complete
//
// KEY is derived from the evidence file's identity (device, inode, size,
// mtime, ctime) and the options that shape the index; the entry records the
// identity and the file's sha256 and is used only when they match. The
// directory's mtime of an entry is its last use: the least recently used
// entries go first when the cache passes its bound.

// DefaultMaxCacheBytes bounds the cache when OpenOptions.MaxCacheBytes is
// not set (half the free space of its filesystem bounds it further).
const DefaultMaxCacheBytes = 10 << 30

// maxIndexBytes bounds an index file read back from the cache.
const maxIndexBytes = 2 << 30

// ErrCacheUnsafe is matched by the error for a cache directory deadnode
// refuses: not owned by the user, writable by others, or inside the
// evidence.
var ErrCacheUnsafe = errors.New("unsafe cache directory")

// CacheInfo says how the cache served a compressed collection.
type CacheInfo struct {
	Dir   string // the cache directory
	Entry string // the entry's directory
	// Hit is true when an entry was reused, false when it was built now.
	Hit bool
	// SHA256 is the hex sha256 of the evidence file, computed when the
	// entry was built.
	SHA256 string
	// Bytes is the disk space the entry takes (holes not counted).
	Bytes int64
	// Kept is false when the entry was built but not kept: larger than
	// the cache's bound.
	Kept bool
}

type cacheDir struct {
	path string
	fd   int
	max  int64
}

// DefaultCacheDir is $XDG_CACHE_HOME/deadnode, or ~/.cache/deadnode.
func DefaultCacheDir() (string, error) {
	d, err := os.UserCacheDir()
	if err != nil {
		return "", err
	}
	return filepath.Join(d, "deadnode"), nil
}

// openCacheDir makes (0700) and opens the cache directory after checking
// that it is not inside the evidence (device and inode of each ancestor,
// so a bind mount of the evidence is seen through), that the user owns
// it and that no one else may write to it.
func openCacheDir(dir string, maxBytes int64, evidence ...string) (*cacheDir, error) {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	if err := notInside(dir, evidence...); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	if r, err := filepath.EvalSymlinks(dir); err == nil {
		dir = r
	}
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: dir, Err: err}
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		unix.Close(fd)
		return nil, err
	}
	switch {
	case int(st.Uid) != os.Geteuid():
		unix.Close(fd)
		return nil, fmt.Errorf("%w: %s is owned by uid %d, not by this user (uid %d)", ErrCacheUnsafe, dir, st.Uid, os.Geteuid())
	case st.Mode&0o022 != 0:
		unix.Close(fd)
		return nil, fmt.Errorf("%w: %s is writable by group or others (mode %04o); make it private (chmod 700) or use another", ErrCacheUnsafe, dir, st.Mode&0o7777)
	}
	if err := notInside(dir, evidence...); err != nil { // again, now that it exists
		unix.Close(fd)
		return nil, err
	}
	c := &cacheDir{path: dir, fd: fd, max: maxBytes}
	if c.max <= 0 {
		c.max = DefaultMaxCacheBytes
	}
	if free, err := freeSpace(dir); err == nil && free/2 < c.max {
		c.max = free / 2
	}
	return c, nil
}

func (c *cacheDir) close() { unix.Close(c.fd) }

// notInside refuses a directory whose nearest existing ancestor, or any
// ancestor of that, is one of the evidence paths ("" entries ignored).
func notInside(dir string, evidence ...string) error {
	type devIno struct{ dev, ino uint64 }
	ev := map[devIno]string{}
	for _, e := range evidence {
		if e == "" {
			continue
		}
		var st unix.Stat_t
		if err := unix.Stat(e, &st); err != nil {
			return err
		}
		ev[devIno{st.Dev, st.Ino}] = e
	}
	dir, err := filepath.Abs(dir)
	if err != nil {
		return err
	}
	p := dir
	fd := -1
	for {
		fd, err = unix.Open(p, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		if err == nil {
			break
		}
		parent := filepath.Dir(p)
		if parent == p {
			return nil
		}
		p = parent
	}
	defer func() { unix.Close(fd) }()
	for i := 0; i < 4096; i++ {
		var st unix.Stat_t
		if err := unix.Fstat(fd, &st); err != nil {
			return err
		}
		if e, ok := ev[devIno{st.Dev, st.Ino}]; ok {
			return fmt.Errorf("%w: %s is inside the evidence %s; deadnode never writes there", ErrCacheUnsafe, dir, e)
		}
		up, err := unix.Openat(fd, "..", unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		if err != nil {
			return err
		}
		var ust unix.Stat_t
		if err := unix.Fstat(up, &ust); err != nil {
			unix.Close(up)
			return err
		}
		unix.Close(fd)
		fd = up
		if ust.Dev == st.Dev && ust.Ino == st.Ino {
			return nil // the root
		}
	}
	return nil
}

// lock takes a flock on name in the cache directory (made if missing),
// waiting while ctx allows; how is unix.LOCK_SH or unix.LOCK_EX, with
// unix.LOCK_NB to give up at once (then -1, nil when busy). A lock file
// removed and remade meanwhile is locked again.
func (c *cacheDir) lock(ctx context.Context, name string, how int) (int, error) {
	for tries := 0; tries < 10; tries++ {
		fd, err := unix.Openat(c.fd, name, unix.O_RDWR|unix.O_CREAT|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
		if err != nil {
			return -1, &fs.PathError{Op: "lock", Path: filepath.Join(c.path, name), Err: err}
		}
		for {
			err = unix.Flock(fd, how|unix.LOCK_NB)
			if err != unix.EWOULDBLOCK && err != unix.EINTR {
				break
			}
			if how&unix.LOCK_NB != 0 {
				unix.Close(fd)
				return -1, nil
			}
			select {
			case <-ctx.Done():
				unix.Close(fd)
				return -1, ctx.Err()
			case <-time.After(50 * time.Millisecond):
			}
		}
		if err != nil {
			unix.Close(fd)
			return -1, &fs.PathError{Op: "lock", Path: filepath.Join(c.path, name), Err: err}
		}
		var a, b unix.Stat_t
		if unix.Fstat(fd, &a) == nil && unix.Fstatat(c.fd, name, &b, unix.AT_SYMLINK_NOFOLLOW) == nil && a.Dev == b.Dev && a.Ino == b.Ino {
			return fd, nil
		}
		unix.Close(fd)
	}
	return -1, fmt.Errorf("cache %s: lock %s keeps being replaced", c.path, name)
}

func unlock(fd int) {
	if fd >= 0 {
		unix.Close(fd)
	}
}

// cacheKey names the entry of an evidence file.
func cacheKey(id identity, opts [32]byte) string {
	h := sha256.New()
	fmt.Fprintf(h, "deadnode cache %d\x00%d\x00%d\x00%d\x00%d\x00%d\x00%d\x00%d\x00", indexVersion, id.Dev, id.Ino, id.Size, id.MtimeSec, id.MtimeNsec, id.CtimeSec, id.CtimeNsec)
	h.Write(opts[:])
	return hex.EncodeToString(h.Sum(nil))[:32]
}

func isKey(name string) bool {
	if len(name) != 32 {
		return false
	}
	_, err := hex.DecodeString(name)
	return err == nil && strings.ToLower(name) == name
}

// optionsHash is what of the options shapes an index (Retain aside, which
// is handled by rebuilding with the union).
func optionsHash(ao *ArchiveOptions) [32]byte {
	o := newBuilder("", CompressionNone, ao).o
	return sha256.Sum256(fmt.Appendf(nil, "members %d xattrs %d depth %d", o.MaxMembers, o.MaxXattrBytes, MaxArchiveDepth))
}

func fileIdentity(f *os.File) (identity, error) {
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		return identity{}, err
	}
	return identity{Dev: st.Dev, Ino: st.Ino, Size: st.Size, MtimeSec: st.Mtim.Sec, MtimeNsec: st.Mtim.Nsec, CtimeSec: st.Ctim.Sec, CtimeNsec: st.Ctim.Nsec}, nil
}

// openCached opens a compressed collection through the cache: a valid
// entry holding every member Retain asks for is reused; otherwise one is
// built (with the members the old entry held, too) and then kept, the
// least recently used entries evicted to stay within the bound.
func openCached(ctx context.Context, f *os.File, ev *Evidence, o *OpenOptions, ao *ArchiveOptions) (*Archive, *CacheInfo, []Warning, error) {
	dir := o.CacheDir
	if dir == "" {
		d, err := DefaultCacheDir()
		if err == nil {
			dir = d
		}
	}
	var c *cacheDir
	var err error
	if dir != "" {
		c, err = openCacheDir(dir, o.MaxCacheBytes, ev.Path, o.Within)
	} else {
		err = errors.New("no home directory")
	}
	if err != nil {
		if o.CacheDir != "" {
			return nil, nil, nil, fmt.Errorf("cache: %w", err)
		}
		// The default cache is unusable: decompress privately, say so.
		a, err2 := NewArchive(ctx, f, ev.Size, ev.Path, ao)
		if err2 != nil {
			return nil, nil, nil, err2
		}
		return a, nil, []Warning{Warnf("", -1, "the collection was decompressed without a cache (%v); the next command decompresses it again", err)}, nil
	}
	defer c.close()
	id, err := fileIdentity(f)
	if err != nil {
		return nil, nil, nil, err
	}
	opts := optionsHash(ao)
	key := cacheKey(id, opts)
	info := &CacheInfo{Dir: c.path, Entry: filepath.Join(c.path, key), Kept: true}

	// Reuse under a shared lock; build under an exclusive one, looking
	// again once it is held (another command may have built it).
	var old *Archive
	var lk int
	for _, how := range []int{unix.LOCK_SH, unix.LOCK_EX} {
		lk, err = c.lock(ctx, key+".lock", how)
		if err != nil {
			if old != nil {
				old.Close()
			}
			return nil, nil, nil, err
		}
		a, h, err := c.load(key, id, opts, ev.Path)
		if err == nil && a.covers(ao.Retain) {
			c.touch(key)
			unlock(lk)
			if old != nil {
				old.Close()
			}
			info.Hit, info.SHA256, info.Bytes = true, hex.EncodeToString(h.sha[:]), c.entryBytes(key)
			return a, info, nil, nil
		}
		if a != nil {
			if old != nil {
				old.Close()
			}
			old = a
		}
		if how == unix.LOCK_SH {
			unlock(lk)
		}
	}
	var keep func(string) bool
	if old != nil {
		keep = func(name string) bool {
			id, err := old.find(name)
			return err == nil && old.nd(id).flags&fRetained != 0
		}
	}
	a, sum, err := c.build(ctx, key, f, ev, ao, indexHeader{id: id, opts: opts, comp: DetectCompression(f)}, keep)
	unlock(lk)
	if old != nil {
		old.Close()
	}
	if err != nil {
		return nil, nil, nil, err
	}
	info.SHA256, info.Bytes = hex.EncodeToString(sum[:]), c.entryBytes(key)
	var notes []Warning
	if info.Bytes > c.max {
		c.remove(key)
		info.Kept = false
		notes = append(notes, Warnf("", -1, "the decompressed collection (%s) is larger than the cache's bound (%s) and was not kept; the next command decompresses it again", humanBytes(info.Bytes), humanBytes(c.max)))
	} else {
		c.evict(ctx, key)
	}
	return a, info, notes, nil
}

// covers says whether the archive retains every regular member retain
// asks for (nil: all).
func (a *Archive) covers(retain func(string, int64) bool) bool {
	missing := false
	for i := range a.count {
		n := a.nd(i)
		if n.mode.IsRegular() && n.flags&(fRetained|fHardlink|fImplicit) == 0 {
			missing = true
			break
		}
	}
	if !missing {
		return true
	}
	if retain == nil {
		return false
	}
	ok := true
	a.eachPath(func(id int32, name string) bool {
		n := a.nd(id)
		if n.mode.IsRegular() && n.flags&(fRetained|fHardlink) == 0 && retain(name, n.size) {
			ok = false
		}
		return ok
	})
	return ok
}

// eachPath calls fn with every reachable entry and its name, depth first.
func (a *Archive) eachPath(fn func(id int32, name string) bool) {
	var rec func(d int32, dir string) bool
	rec = func(d int32, dir string) bool {
		for _, k := range a.kidsOf(d) {
			p := join(dir, a.nd(k).name)
			if !fn(k, p) || !rec(k, p) {
				return false
			}
		}
		return true
	}
	if fn(0, ".") {
		rec(0, ".")
	}
}

// load reads and checks an entry; a missing, damaged or foreign entry is
// an error (and is rebuilt by the caller).
func (c *cacheDir) load(key string, id identity, opts [32]byte, name string) (*Archive, indexHeader, error) {
	var h indexHeader
	efd, err := unix.Openat(c.fd, key, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, h, err
	}
	defer unix.Close(efd)
	idx, err := openAt(efd, "index")
	if err != nil {
		return nil, h, err
	}
	defer idx.Close()
	data, err := openAt(efd, "data")
	if err != nil {
		return nil, h, err
	}
	ist, err1 := idx.Stat()
	dst, err2 := data.Stat()
	if err1 != nil || err2 != nil || !ist.Mode().IsRegular() || !dst.Mode().IsRegular() || ist.Size() > maxIndexBytes {
		data.Close()
		return nil, h, errIndex
	}
	buf := make([]byte, ist.Size())
	if _, err := io.ReadFull(idx, buf); err != nil {
		data.Close()
		return nil, h, err
	}
	a, h, err := decodeIndex(buf, dst.Size(), name)
	if err == nil && (h.id != id || h.opts != opts) {
		err = fmt.Errorf("%w: made for another file", errIndex)
	}
	if err != nil {
		data.Close()
		return nil, h, err
	}
	a.spill = data
	return a, h, nil
}

func openAt(dirfd int, name string) (*os.File, error) {
	fd, err := unix.Openat(dirfd, name, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC|unix.O_NONBLOCK, 0)
	if err != nil {
		return nil, err
	}
	unix.SetNonblock(fd, false)
	return os.NewFile(uintptr(fd), name), nil
}

// touch records a use of an entry (its directory's mtime).
func (c *cacheDir) touch(key string) {
	now := unix.NsecToTimespec(time.Now().UnixNano())
	unix.UtimesNanoAt(c.fd, key, []unix.Timespec{now, now}, unix.AT_SYMLINK_NOFOLLOW)
}

// entryBytes is the disk space of an entry (allocated blocks).
func (c *cacheDir) entryBytes(key string) int64 {
	var n int64
	for _, f := range []string{"index", "data"} {
		var st unix.Stat_t
		if unix.Fstatat(c.fd, key+"/"+f, &st, unix.AT_SYMLINK_NOFOLLOW) == nil {
			n += st.Blocks * 512
		}
	}
	return n
}

// build indexes the collection into a new entry, built in a temporary
// sibling and renamed into place when complete: a crash leaves only a
// tmp.* directory, removed by a later eviction.
func (c *cacheDir) build(ctx context.Context, key string, f *os.File, ev *Evidence, ao *ArchiveOptions, h indexHeader, keep func(string) bool) (*Archive, [32]byte, error) {
	var rnd [8]byte
	rand.Read(rnd[:])
	tmp := fmt.Sprintf("tmp.%s.%d.%x", key, os.Getpid(), rnd)
	if err := unix.Mkdirat(c.fd, tmp, 0o700); err != nil {
		return nil, h.sha, c.spaceErr(err, &fs.PathError{Op: "mkdir", Path: filepath.Join(c.path, tmp), Err: err})
	}
	tfd, err := unix.Openat(c.fd, tmp, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		c.removeDir(tmp)
		return nil, h.sha, err
	}
	defer unix.Close(tfd)
	fail := func(err error) (*Archive, [32]byte, error) {
		c.removeDir(tmp)
		return nil, h.sha, err
	}
	dfd, err := unix.Openat(tfd, "data", unix.O_RDWR|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return fail(c.spaceErr(err, err))
	}
	data := os.NewFile(uintptr(dfd), filepath.Join(c.path, key, "data"))
	b := newBuilder(ev.Path, h.comp, ao)
	b.mkSpill = func() (*spill, error) { return newSpill(data, "cache", c.path, ao.MaxSpill), nil }
	sum := sha256.New()
	b.hash = sum
	if err := b.index(ctx, f, ev.Size, keep); err != nil {
		data.Close()
		return fail(err)
	}
	a := b.a
	a.spill = data
	copy(h.sha[:], sum.Sum(nil))
	idx := encodeIndex(a, h)
	ifd, err := unix.Openat(tfd, "index", unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
	if err != nil {
		a.Close()
		return fail(c.spaceErr(err, err))
	}
	iw := os.NewFile(uintptr(ifd), "index")
	_, err = iw.Write(idx)
	if cerr := iw.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		a.Close()
		return fail(c.spaceErr(err, err))
	}
	if err := c.install(tmp, key); err != nil {
		a.Close()
		return fail(err)
	}
	return a, h.sha, nil
}

// install renames a built entry into place, replacing an old (damaged or
// foreign) one.
func (c *cacheDir) install(tmp, key string) error {
	for i := 0; i < 3; i++ {
		err := unix.Renameat2(c.fd, tmp, c.fd, key, unix.RENAME_NOREPLACE)
		if err == nil {
			return nil
		}
		if err != unix.EEXIST && err != unix.ENOTEMPTY {
			return &fs.PathError{Op: "rename", Path: filepath.Join(c.path, key), Err: err}
		}
		c.remove(key)
	}
	return fmt.Errorf("cache %s: entry %s could not be replaced", c.path, key)
}

// remove deletes an entry (moved aside first, so that no reader sees a
// half-removed one).
func (c *cacheDir) remove(key string) {
	var rnd [8]byte
	rand.Read(rnd[:])
	gone := fmt.Sprintf("tmp.%s.gone.%x", key, rnd)
	if unix.Renameat(c.fd, key, c.fd, gone) == nil {
		c.removeDir(gone)
	}
}

// removeDir removes one of the cache's entry directories: only the files
// an entry holds.
func (c *cacheDir) removeDir(name string) {
	for _, f := range []string{"index", "data"} {
		unix.Unlinkat(c.fd, name+"/"+f, 0)
	}
	unix.Unlinkat(c.fd, name, unix.AT_REMOVEDIR)
}

func (c *cacheDir) spaceErr(err, orig error) error {
	if errors.Is(err, unix.ENOSPC) || errors.Is(err, unix.EDQUOT) {
		free, _ := freeSpace(c.path)
		return &SpaceError{Space: "cache", Dir: c.path, Free: free, Err: err}
	}
	return orig
}

// evict removes stale builds and, past the bound, the least recently
// used entries (never keep, nor an entry in use).
func (c *cacheDir) evict(ctx context.Context, keep string) {
	gl, err := c.lock(ctx, ".lock", unix.LOCK_EX|unix.LOCK_NB)
	if err != nil || gl < 0 {
		return // another command is evicting
	}
	defer unlock(gl)
	dfd, err := unix.Openat(c.fd, ".", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return
	}
	d := os.NewFile(uintptr(dfd), c.path)
	names, _ := d.Readdirnames(-1)
	d.Close()
	type entry struct {
		key   string
		used  int64
		bytes int64
	}
	var ents []entry
	var total int64
	for _, n := range names {
		switch {
		case isKey(n):
			var st unix.Stat_t
			if unix.Fstatat(c.fd, n, &st, unix.AT_SYMLINK_NOFOLLOW) != nil || st.Mode&unix.S_IFMT != unix.S_IFDIR {
				continue
			}
			e := entry{key: n, used: st.Mtim.Nano(), bytes: c.entryBytes(n)}
			ents = append(ents, e)
			total += e.bytes
		case strings.HasPrefix(n, "tmp."):
			k, _, _ := strings.Cut(n[4:], ".")
			if !isKey(k) {
				continue
			}
			if lk, err := c.lock(ctx, k+".lock", unix.LOCK_EX|unix.LOCK_NB); err == nil && lk >= 0 {
				c.removeDir(n) // no build of k runs: left by a crash
				unlock(lk)
			}
		}
	}
	sort.Slice(ents, func(i, j int) bool { return ents[i].used < ents[j].used })
	for _, e := range ents {
		if total <= c.max {
			break
		}
		if e.key == keep {
			continue
		}
		lk, err := c.lock(ctx, e.key+".lock", unix.LOCK_EX|unix.LOCK_NB)
		if err != nil || lk < 0 {
			continue // in use
		}
		c.remove(e.key)
		unix.Unlinkat(c.fd, e.key+".lock", 0)
		unlock(lk)
		total -= e.bytes
	}
}
