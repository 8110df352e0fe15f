package checkpoint

import (
	"archive/tar"
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"iter"
	"os"
	"path"
	"regexp"
	"sort"
	"strings"

	"github.com/deadnode/deadnode/evidence"
)

// Pass reads a checkpoint archive of the host in one pass over its stream
// (for a compressed archive, whose members cannot be read at random): each
// pages image is handed to the caller as the stream reaches it, and the
// rest of what the checkpoint needs (the CRIU images, the engine's files,
// rootfs-diff.tar, as OpenPath keeps them) is copied to a private,
// unlinked temp file and decoded when the pass is over. A caller that
// needs the pages' bytes once, in archive order (a search), so
// decompresses the archive once and spills no page. The archive is opened
// without touching its access time. A Pass is not safe for concurrent use.
type Pass struct {
	ctx      context.Context
	hostPath string
	opt      *Options
	f        evidence.File
	tmp      *os.File
	bw       *bufio.Writer
	tw       *tar.Writer
	pages    map[string]*evidence.Stat // pages images and members not kept
	kept     int64                     // bytes of members copied to tmp
	started  bool
	err      error
}

// PassPages is a pages image met by a Pass: Data reads its bytes and is
// valid until the pass moves on.
type PassPages struct {
	Member string // its name in the archive
	Size   int64
	Data   io.Reader
}

// maxPassTemp bounds the bytes a Pass copies to its temp file (a
// variable for the tests).
var maxPassTemp int64 = evidence.DefaultMaxSpill

var pagesImageName = regexp.MustCompile(`^pages-[0-9]+\.img$`)

// StartPass opens the archive hostPath for a Pass. Close the Pass, or the
// Checkpoint it gives.
func StartPass(ctx context.Context, hostPath string, opt *Options) (*Pass, error) {
	f, err := OpenHost(hostPath)
	if err != nil {
		return nil, err
	}
	dir := ""
	if opt != nil {
		dir = opt.TempDir
	}
	tmp, err := os.CreateTemp(dir, "deadnode-pass-*")
	if err != nil {
		f.Close()
		return nil, err
	}
	os.Remove(tmp.Name()) // private and gone on close, whatever happens
	bw := bufio.NewWriterSize(tmp, 1<<20)
	return &Pass{ctx: ctx, hostPath: hostPath, opt: opt, f: f, tmp: tmp, bw: bw, tw: tar.NewWriter(bw), pages: map[string]*evidence.Stat{}}, nil
}

// Pages yields the pages images of the archive in archive order; the
// other members are kept as they go by. A damaged archive ends it with
// the error.
func (p *Pass) Pages() iter.Seq2[PassPages, error] {
	return func(yield func(PassPages, error) bool) {
		if p.started {
			yield(PassPages{}, errors.New("checkpoint: a Pass is read once"))
			return
		}
		p.started = true
		retain := archiveOptions(p.opt).Retain
		for m, err := range evidence.TarStream(p.ctx, io.NewSectionReader(p.f, 0, p.f.Size()), &evidence.TarOptions{Label: p.hostPath}) {
			if err != nil {
				p.err = err
				yield(PassPages{}, err)
				return
			}
			if m.Name == "" || m.Name == "." {
				continue // climbs out of the archive (or is its root)
			}
			h := m.Header
			regular := h.Typeflag == tar.TypeReg || h.Typeflag == tar.TypeGNUSparse
			if regular && pagesImageName.MatchString(path.Base(m.Name)) {
				p.pages[m.Name] = &evidence.Stat{Name: m.Name, Mode: 0o644, Size: h.Size, Mtime: h.ModTime}
				if !yield(PassPages{Member: m.Name, Size: h.Size, Data: m.Data}, nil) {
					p.err = errors.New("checkpoint: the pass was left before its end")
					return
				}
				continue
			}
			if regular && !retain(m.Name, h.Size) {
				p.pages[m.Name] = &evidence.Stat{Name: m.Name, Mode: h.FileInfo().Mode(), Size: h.Size, Mtime: h.ModTime}
				continue
			}
			if err := p.keep(m, regular); err != nil {
				p.err = err
				yield(PassPages{}, err)
				return
			}
		}
	}
}

// keep copies a member to the temp archive, its name cleaned.
func (p *Pass) keep(m evidence.TarMember, regular bool) error {
	h := *m.Header
	h.Name = m.Name
	if h.Typeflag == tar.TypeDir {
		h.Name += "/"
	}
	h.Format, h.PAXRecords = tar.FormatPAX, nil
	for k, v := range m.Header.PAXRecords {
		if strings.HasPrefix(k, "SCHILY.xattr.") || strings.HasPrefix(k, "LIBARCHIVE.xattr.") {
			if h.PAXRecords == nil {
				h.PAXRecords = map[string]string{}
			}
			h.PAXRecords[k] = v
		}
	}
	if regular {
		h.Typeflag = tar.TypeReg
		// The temp file is bounded as an archive's spill is: each member
		// kept is bounded, their number too, but not their sum.
		if p.kept += h.Size; p.kept > maxPassTemp {
			return fmt.Errorf("%s: the members kept pass %d bytes of temporary space (at %s)", p.hostPath, maxPassTemp, m.Name)
		}
	} else {
		h.Size = 0
	}
	if err := p.tw.WriteHeader(&h); err != nil {
		return err
	}
	if regular {
		if _, err := io.CopyN(p.tw, m.Data, h.Size); err != nil {
			return err
		}
	}
	return nil
}

// Checkpoint decodes the checkpoint from what the pass kept, once Pages
// is done; the Checkpoint owns the pass's files afterwards (close it).
// The pages images are listed (their sizes known) but hold no data, as
// with OpenPath without Options.Pages.
func (p *Pass) Checkpoint() (*Checkpoint, error) {
	if !p.started || p.err != nil {
		err := p.err
		if err == nil {
			err = errors.New("checkpoint: Pages was not read")
		}
		p.Close()
		return nil, err
	}
	if err := errors.Join(p.tw.Close(), p.bw.Flush()); err != nil {
		p.Close()
		return nil, err
	}
	st, err := p.tmp.Stat()
	if err != nil {
		p.Close()
		return nil, err
	}
	a, err := evidence.NewArchive(context.Background(), p.tmp, st.Size(), p.hostPath, nil)
	if err != nil {
		p.Close()
		return nil, err
	}
	cp, err := Open(p.ctx, &passSource{Archive: a, extra: p.pages}, "", p.opt)
	if err != nil {
		a.Close()
		p.Close()
		return nil, err
	}
	cp.Warnings = append(archiveWarnings(a), cp.Warnings...)
	if cp.Format == "criu" {
		cp.Format = "criu-tar"
	}
	if m := kubeletName.FindStringSubmatch(path.Base(p.hostPath)); m != nil {
		applyKubeletName(cp, m)
	}
	cp.closer = func() error { a.Close(); return p.Close() }
	return cp, nil
}

// Close releases the archive and the temp file.
func (p *Pass) Close() error {
	var err error
	if p.tmp != nil {
		err = p.tmp.Close()
		p.tmp = nil
	}
	if p.f != nil {
		err = errors.Join(err, p.f.Close())
		p.f = nil
	}
	return err
}

// passSource is the kept members, with the pages images (and what was not
// kept) listed as members whose data was not retained.
type passSource struct {
	*evidence.Archive
	extra map[string]*evidence.Stat
}

func (s *passSource) Lstat(name string) (*evidence.Stat, error) {
	if st, ok := s.extra[name]; ok {
		c := *st
		return &c, nil
	}
	return s.Archive.Lstat(name)
}

func (s *passSource) Open(name string) (evidence.File, error) {
	if _, ok := s.extra[name]; ok {
		return nil, &fs.PathError{Op: "open", Path: name, Err: evidence.ErrNotRetained}
	}
	return s.Archive.Open(name)
}

func (s *passSource) ReadDir(name string) ([]*evidence.Stat, error) {
	l, err := s.Archive.ReadDir(name)
	if err != nil {
		return nil, err
	}
	n := len(l)
	for p, st := range s.extra {
		if path.Dir(p) == name {
			c := *st
			l = append(l, &c)
		}
	}
	if len(l) > n {
		sort.Slice(l, func(i, j int) bool { return l[i].Name < l[j].Name })
	}
	return l, nil
}
