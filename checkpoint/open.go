package checkpoint

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"regexp"
	"strings"
	"time"

	"github.com/deadnode/deadnode/evidence"
	"golang.org/x/sys/unix"
)

// Options tune Open and its variants. The zero value (or nil) is usable.
type Options struct {
	// ExeOrigin tells where an executable path comes from when the
	// checkpoint's own container diff does not hold it (for instance by
	// looking the path up in the node's image layers): it returns
	// "image", "container_diff" or "unknown". Nil leaves "unknown".
	ExeOrigin func(path string) (origin string)
	// Pages keeps the pages images of compressed archives (spilled to a
	// private temp file) so that command lines and memory can be read.
	// Uncompressed archives and directories always give access to them.
	Pages bool
	// MaxRootfsDiff bounds the size of a compressed archive's
	// rootfs-diff.tar that is spilled to find executables in it
	// (default 512 MiB; past it exe_origin stays "unknown").
	MaxRootfsDiff int64
	// TempDir is where compressed archives spill (default os.TempDir()).
	TempDir string
}

func (o *Options) maxDiff() int64 {
	if o == nil || o.MaxRootfsDiff <= 0 {
		return 512 << 20
	}
	return o.MaxRootfsDiff
}

// Open decodes the checkpoint held by src. dir names the directory of the
// CRIU images inside src; "" detects it by content (the root, then
// "checkpoint", then the root's other directories). The engine files
// around the images (config.dump, spec.dump, …) are read from the parent
// of dir. src stays owned by the caller and must outlive the Checkpoint.
func Open(src evidence.Source, dir string, opt *Options) (*Checkpoint, error) {
	d, err := detectImagesDir(src, dir)
	if err != nil {
		return nil, err
	}
	cp := &Checkpoint{Source: src.String(), ImagesDir: d, Format: "criu", imgs: &images{src: src, dir: d}}
	if err := decodeImages(cp, cp.imgs); err != nil {
		return nil, err
	}
	top := "."
	if d != "." {
		top = path.Dir(d)
	}
	readEngineFiles(cp, &images{src: src, dir: top}, opt)
	if cp.CRIUVersion == "" {
		cp.CRIUVersion = criuVersion(cp.imgs)
	}
	if cp.Container.CheckpointedAt.IsZero() {
		if st, err := src.Lstat(cp.imgs.path(imgInventory)); err == nil && !st.Mtime.IsZero() {
			cp.Container.CheckpointedAt, cp.Container.CheckpointedAtSource = st.Mtime, "mtime"
		}
	}
	diff := &images{src: src, dir: top}
	if diff.exists(fileRootfsDiff) {
		f, err := src.Open(diff.path(fileRootfsDiff))
		if err != nil {
			cp.Warnings = append(cp.Warnings, fmt.Sprintf("%s: %v; executables' origin unknown", diff.label(fileRootfsDiff), err))
			setOrigins(cp, nil, opt)
		} else {
			have, info, err := scanDiff(f, f.Size(), diff.label(fileRootfsDiff), exePaths(cp), false)
			f.Close()
			if err != nil {
				cp.Warnings = append(cp.Warnings, err.Error())
			}
			info.Member = fileRootfsDiff
			cp.RootfsDiff = info
			setOrigins(cp, have, opt)
		}
	} else {
		setOrigins(cp, nil, opt)
	}
	return cp, nil
}

// OpenFile opens a checkpoint archive (.tar, .tar.gz, .tar.zst, of any
// engine, or a containerd criu tar) or a directory of CRIU images on the
// host. The Checkpoint owns the opened source: Close it.
func OpenFile(hostPath string, opt *Options) (*Checkpoint, error) {
	st, err := os.Stat(hostPath)
	if err != nil {
		return nil, err
	}
	var src evidence.Source
	var col *argCollector
	if st.IsDir() {
		d, err := evidence.OpenDir(hostPath)
		if err != nil {
			return nil, err
		}
		src = d
	} else {
		// A compressed archive whose pages are not kept: read the command
		// lines in a second stream, alongside the index pass.
		if opt == nil || !opt.Pages {
			if f, err := openHost(hostPath); err == nil {
				if evidence.DetectCompression(f) != evidence.CompressionNone {
					col = startArgCollector(f)
				} else {
					f.Close()
				}
			}
		}
		a, err := evidence.OpenArchive(context.TODO(), hostPath, archiveOptions(opt))
		if err != nil {
			if col != nil {
				col.abandon()
			}
			return nil, err
		}
		src = a
	}
	cp, err := Open(src, "", opt)
	if err != nil {
		if col != nil {
			col.abandon()
		}
		src.Close()
		return nil, err
	}
	if a, ok := src.(*evidence.Archive); ok {
		cp.Warnings = append(evidence.WarningLines(a.Warnings()), cp.Warnings...)
		if cp.Format == "criu" && st.Mode().IsRegular() {
			cp.Format = "criu-tar"
		}
	}
	if m := kubeletName.FindStringSubmatch(path.Base(hostPath)); m != nil {
		applyKubeletName(cp, m)
	}
	cp.closer = src.Close
	if col != nil {
		done := col.apply(cp)
		// What the collector missed (images in an unusual order).
		if f, err := openHost(hostPath); err == nil {
			if err := cp.streamArgs(f, f.Size(), hostPath, done); err != nil {
				cp.Warnings = append(cp.Warnings, err.Error())
			}
			f.Close()
		}
	}
	return cp, nil
}

// openHost opens a host file read-only without touching its access time
// where the kernel allows, as package evidence does.
func openHost(name string) (evidence.File, error) {
	fd, err := unix.Open(name, unix.O_RDONLY|unix.O_CLOEXEC|unix.O_NOATIME|unix.O_NONBLOCK, 0)
	if err == unix.EPERM {
		fd, err = unix.Open(name, unix.O_RDONLY|unix.O_CLOEXEC|unix.O_NONBLOCK, 0)
	}
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: name, Err: err}
	}
	f := os.NewFile(uintptr(fd), name)
	st, err := f.Stat()
	if err != nil || !st.Mode().IsRegular() {
		f.Close()
		return nil, &fs.PathError{Op: "open", Path: name, Err: evidence.ErrNotRegular}
	}
	return &hostFile{File: f, size: st.Size()}, nil
}

type hostFile struct {
	*os.File
	size int64
}

func (h *hostFile) Size() int64 { return h.size }

// archiveOptions keep, from a compressed archive, only what needs random
// access: the CRIU images and the engine's small files (each at most
// maxMetadata bytes), rootfs-diff.tar up to MaxRootfsDiff, and the pages
// images only when asked.
func archiveOptions(opt *Options) *evidence.ArchiveOptions {
	ao := &evidence.ArchiveOptions{}
	if opt != nil {
		ao.TempDir = opt.TempDir
	}
	pages := opt != nil && opt.Pages
	maxDiff := opt.maxDiff()
	ao.Retain = func(name string, size int64) bool {
		base := path.Base(name)
		switch {
		case strings.HasPrefix(base, "pages-") && strings.HasSuffix(base, ".img"):
			return pages
		case base == fileRootfsDiff:
			return size <= maxDiff
		}
		return size <= maxMetadata
	}
	return ao
}

// Close releases what OpenFile or OpenContainerd opened.
func (cp *Checkpoint) Close() error {
	if cp.closer != nil {
		err := cp.closer()
		cp.closer = nil
		return err
	}
	return nil
}

// Pagemap decodes pagemap-<pid>.img of a task of the pstree.
func (cp *Checkpoint) Pagemap(pid uint32) (*Pagemap, error) {
	if !cp.hasPID(pid) {
		return nil, fmt.Errorf("%s: task %d is not in %s", cp.Source, pid, imgPstree)
	}
	b := &builder{cp: cp, im: cp.imgs}
	return b.pagemap(pid)
}

// Pages opens pages-<id>.img for random access (a Pagemap entry's Offset
// is an offset in it). Compressed archives need Options.Pages.
func (cp *Checkpoint) Pages(pagesID uint32) (evidence.File, error) {
	return cp.imgs.src.Open(cp.imgs.path(fmt.Sprintf(imgPagesFmt, pagesID)))
}

// Image opens any CRIU protobuf image of the checkpoint by file name
// (for instance "seccomp.img"); close the returned io.Closer.
func (cp *Checkpoint) Image(name string) (*ImageReader, io.Closer, error) {
	if strings.Contains(name, "/") {
		return nil, nil, fmt.Errorf("image name %q has a slash", name)
	}
	return cp.imgs.open(name)
}

func (cp *Checkpoint) hasPID(pid uint32) bool {
	for _, p := range cp.Processes {
		if p.PID == pid {
			return true
		}
	}
	return false
}

// Process returns the task with that pid, or nil.
func (cp *Checkpoint) Process(pid uint32) *Process {
	for i := range cp.Processes {
		if cp.Processes[i].PID == pid {
			return &cp.Processes[i]
		}
	}
	return nil
}

var criuVersionLine = regexp.MustCompile(`\) Version: ([0-9][0-9A-Za-z.+~-]*)`)

// criuVersion finds "Version: X" near the start of dump.log, next to the
// images or beside them (containerd's work dir is elsewhere).
func criuVersion(im *images) string {
	f, err := im.src.Open(im.path(fileDumpLog))
	if err != nil {
		return ""
	}
	defer f.Close()
	buf := make([]byte, min(f.Size(), maxDumpLogHead))
	n, _ := f.ReadAt(buf, 0)
	if m := criuVersionLine.FindSubmatch(buf[:n]); m != nil {
		return string(m[1])
	}
	return ""
}

// exePaths lists the executables of the tasks.
func exePaths(cp *Checkpoint) map[string]bool {
	m := map[string]bool{}
	for _, p := range cp.Processes {
		if p.Exe != "" {
			m[strings.TrimPrefix(path.Clean("/"+p.Exe), "/")] = false
		}
	}
	return m
}

// setOrigins fills ExeOrigin: "deleted" stays, a path in the diff is
// "container_diff", else the caller's lookup, else "unknown".
func setOrigins(cp *Checkpoint, inDiff map[string]bool, opt *Options) {
	for i := range cp.Processes {
		p := &cp.Processes[i]
		if p.Exe == "" || p.ExeOrigin == OriginDeleted {
			continue
		}
		key := strings.TrimPrefix(path.Clean("/"+p.Exe), "/")
		switch {
		case inDiff[key]:
			p.ExeOrigin = OriginContainerDiff
		case opt != nil && opt.ExeOrigin != nil:
			if o := opt.ExeOrigin(p.Exe); o != "" {
				p.ExeOrigin = o
			}
		}
	}
}

// scanDiff reads the headers of a tar of the container's changes (plain,
// or gzip when gz is set) and marks which of the wanted paths it holds as
// regular files. Memory stays bounded: only wanted names are kept.
func scanDiff(r io.ReaderAt, size int64, label string, want map[string]bool, gz bool) (map[string]bool, *RootfsDiff, error) {
	info := &RootfsDiff{Size: size}
	var rd io.Reader = io.NewSectionReader(r, 0, size)
	if gz {
		d, err := evidence.Decompress(rd, evidence.CompressionGzip)
		if err != nil {
			return want, info, &evidence.FormatError{File: label, Offset: 0, Msg: "gzip", Err: err}
		}
		defer d.Close()
		rd = d
	}
	tr := tar.NewReader(rd)
	for n := 0; ; n++ {
		h, err := tr.Next()
		if err == io.EOF {
			return want, info, nil
		}
		if err != nil {
			return want, info, &evidence.FormatError{File: label, Offset: -1, Msg: fmt.Sprintf("after %d members", n), Err: err}
		}
		if n > 1<<22 {
			return want, info, &evidence.FormatError{File: label, Offset: -1, Msg: "more than 4194304 members"}
		}
		if h.Typeflag != tar.TypeReg && h.Typeflag != tar.TypeLink {
			continue
		}
		info.Files++
		name := strings.TrimPrefix(path.Clean("/"+h.Name), "/")
		if _, ok := want[name]; ok {
			want[name] = true
		}
	}
}

// engine metadata -------------------------------------------------------

// configDump is what Podman and CRI-O write to config.dump (the fields
// both use; Podman's file is its whole container config).
type configDump struct {
	ID              string            `json:"id"`
	Name            string            `json:"name"`
	RootfsImage     string            `json:"rootfsImage"`
	RootfsImageRef  string            `json:"rootfsImageRef"`
	RootfsImageName string            `json:"rootfsImageName"`
	RootfsImageID   string            `json:"rootfsImageID"`
	Runtime         string            `json:"runtime"`
	OCIRuntime      string            `json:"ociRuntime"`
	CreatedTime     time.Time         `json:"createdTime"`
	CheckpointedAt  time.Time         `json:"checkpointedTime"`
	Labels          map[string]string `json:"labels"`
}

type specDump struct {
	Annotations map[string]string `json:"annotations"`
	Hostname    string            `json:"hostname"`
	Process     *struct {
		Args []string `json:"args"`
	} `json:"process"`
	Linux *struct {
		CgroupsPath string `json:"cgroupsPath"`
	} `json:"linux"`
}

func readEngineFiles(cp *Checkpoint, top *images, opt *Options) {
	c := &cp.Container
	warn := func(err error) {
		if err != nil && !isNotExist(err) {
			cp.Warnings = append(cp.Warnings, err.Error())
		}
	}
	if b, err := top.readFile(fileConfigDump, maxMetadata); err == nil {
		var cfg configDump
		if err := json.Unmarshal(b, &cfg); err != nil {
			warn(&evidence.FormatError{File: top.label(fileConfigDump), Offset: -1, Msg: "not a container config", Err: err})
		} else {
			c.ID, c.Name, c.Runtime, c.CreatedAt = cfg.ID, cfg.Name, firstOf(cfg.Runtime, cfg.OCIRuntime), cfg.CreatedTime
			c.Image = firstOf(cfg.RootfsImageName, cfg.RootfsImage)
			c.ImageID = firstOf(cfg.RootfsImageID, cfg.RootfsImageRef)
			c.Labels = cfg.Labels
			if !cfg.CheckpointedAt.IsZero() {
				c.CheckpointedAt, c.CheckpointedAtSource = cfg.CheckpointedAt, fileConfigDump
			}
			cp.Format = "cri-o"
		}
	} else {
		warn(err)
	}
	if b, err := top.readFile(fileSpecDump, maxMetadata); err == nil {
		var sp specDump
		if err := json.Unmarshal(b, &sp); err != nil {
			warn(&evidence.FormatError{File: top.label(fileSpecDump), Offset: -1, Msg: "not an OCI spec", Err: err})
		} else {
			applySpec(c, &sp)
			if sp.Annotations[annContainerManager] == "libpod" {
				cp.Format = "podman"
			} else if cp.Format == "criu" {
				cp.Format = "cri-o"
			}
		}
	} else {
		warn(err)
	}
	switch cp.Format {
	case "podman":
		c.Engine = "podman"
	case "cri-o":
		c.Engine = "cri-o"
	}
	if b, err := top.readFile(fileDeletedFiles, maxMetadata); err == nil {
		var l []string
		if err := json.Unmarshal(b, &l); err != nil {
			warn(&evidence.FormatError{File: top.label(fileDeletedFiles), Offset: -1, Msg: "not a JSON list", Err: err})
		}
		cp.DeletedFiles = l
	} else {
		warn(err)
	}
	if b, err := top.readFile(fileNetworkStatus, maxMetadata); err == nil {
		cp.Network = parseNetwork(b)
	} else {
		warn(err)
	}
	if !cp.imgs.exists(imgStatsDump) && top.exists(imgStatsDump) {
		(&builder{cp: cp, im: top}).loadStats(imgStatsDump)
	}
	if v := criuVersion(top); v != "" {
		cp.CRIUVersion = v
	}
}

func applySpec(c *Container, sp *specDump) {
	a := sp.Annotations
	c.Annotations = a
	c.Hostname = sp.Hostname
	if sp.Process != nil {
		c.Args = sp.Process.Args
	}
	c.Pod = firstOf(c.Labels[annKubePodName], a[annKubePodName], a[annCRISandboxName])
	c.Namespace = firstOf(c.Labels[annKubePodNamespace], a[annKubePodNamespace], a[annCRISandboxNs])
	if c.Name == "" {
		c.Name = firstOf(a[annKubeContainerName], a[annCRIContainerName], a[annCRIOName])
	}
	if c.Image == "" {
		c.Image = firstOf(a[annCRIImageName], a[annCRIOImageName])
	}
	if c.CreatedAt.IsZero() {
		if t, err := time.Parse(time.RFC3339Nano, a[annCRIOCreated]); err == nil {
			c.CreatedAt = t
		}
	}
}

func firstOf(s ...string) string {
	for _, v := range s {
		if v != "" {
			return v
		}
	}
	return ""
}

// parseNetwork reads the IPs and MACs of network.status (Podman's map of
// networks, or CNI results as a list); the raw text is kept when small.
func parseNetwork(b []byte) *Network {
	n := &Network{}
	if len(b) <= 4096 {
		n.Raw = string(bytes.TrimSpace(b))
	}
	var v any
	if json.Unmarshal(b, &v) != nil {
		return n
	}
	var walk func(v any, depth int)
	walk = func(v any, depth int) {
		if depth > 16 {
			return
		}
		switch t := v.(type) {
		case map[string]any:
			for k, x := range t {
				if s, ok := x.(string); ok {
					switch k {
					case "ipnet", "address":
						n.IPs = append(n.IPs, s)
					case "mac_address", "mac":
						n.MACs = append(n.MACs, s)
					}
				}
				walk(x, depth+1)
			}
		case []any:
			for _, x := range t {
				walk(x, depth+1)
			}
		}
	}
	walk(v, 0)
	sortStrings(n.IPs)
	sortStrings(n.MACs)
	return n
}

func sortStrings(s []string) {
	for i := 1; i < len(s); i++ {
		for j := i; j > 0 && s[j] < s[j-1]; j-- {
			s[j], s[j-1] = s[j-1], s[j]
		}
	}
}

// kubelet archives ------------------------------------------------------

// kubeletName matches checkpoint-<pod>_<namespace>-<container>-<RFC3339>.tar.
var kubeletName = regexp.MustCompile(`^checkpoint-([^_/]+)_(.+)-([0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]+)?(?:Z|[+-][0-9]{2}:[0-9]{2}))\.tar(?:\.gz|\.zst)?$`)

func applyKubeletName(cp *Checkpoint, m []string) {
	if cp.Format == "cri-o" || cp.Format == "criu" {
		cp.Format = "kubelet"
	}
	if cp.Container.Pod == "" {
		cp.Container.Pod = m[1]
	}
	if t, err := time.Parse(time.RFC3339Nano, m[3]); err == nil && cp.Container.CheckpointedAtSource != fileConfigDump {
		cp.Container.CheckpointedAt, cp.Container.CheckpointedAtSource = t, "file_name"
	}
}

// Found is a kubelet checkpoint archive in a node's evidence.
type Found struct {
	Path string `json:"path"` // inside the evidence
	Size int64  `json:"size"`
	// Pod, and the "<namespace>-<container>" tail, and the time, as the
	// file name gives them (namespace and container names may both hold
	// dashes; open the archive for the exact values).
	Pod                string    `json:"pod,omitempty"`
	NamespaceContainer string    `json:"namespace_container,omitempty"`
	CheckpointedAt     time.Time `json:"checkpointed_at"`
	Mtime              time.Time `json:"mtime"`
}

// Find lists the kubelet checkpoint archives of a node's evidence
// (<root>/var/lib/kubelet/checkpoints/*.tar, also .tar.gz/.tar.zst),
// recognised by content (a tar archive) rather than by name alone.
func Find(src evidence.Source, root string) ([]Found, error) {
	root, err := evidence.Clean(root)
	if err != nil {
		return nil, err
	}
	dir := path.Join(root, kubeletCheckpointDir)
	ents, err := src.ReadDir(dir)
	if err != nil {
		if isNotExist(err) {
			return nil, nil
		}
		return nil, err
	}
	var out []Found
	for _, e := range ents {
		if !e.Mode.IsRegular() {
			continue
		}
		f := Found{Path: e.Name, Size: e.Size, Mtime: e.Mtime}
		if !looksLikeArchive(src, e.Name) {
			continue
		}
		if m := kubeletName.FindStringSubmatch(path.Base(e.Name)); m != nil {
			f.Pod, f.NamespaceContainer = m[1], m[2]
			f.CheckpointedAt, _ = time.Parse(time.RFC3339Nano, m[3])
		}
		out = append(out, f)
	}
	return out, nil
}

// looksLikeArchive checks the magic of a gzip or zstd stream or the
// "ustar" magic of a tar header.
func looksLikeArchive(src evidence.Source, name string) bool {
	f, err := src.Open(name)
	if err != nil {
		return false
	}
	defer f.Close()
	if evidence.DetectCompression(f) != evidence.CompressionNone {
		return true
	}
	var m [6]byte
	if _, err := f.ReadAt(m[:], 257); err != nil {
		return false
	}
	return string(m[:5]) == "ustar"
}

// OpenKubelet opens a kubelet archive of a node's evidence, as Find lists
// them. Close the Checkpoint.
func OpenKubelet(src evidence.Source, name string, opt *Options) (*Checkpoint, error) {
	f, err := src.Open(name)
	if err != nil {
		return nil, err
	}
	label := src.String() + ":" + name
	a, err := evidence.NewArchive(context.TODO(), f, f.Size(), label, archiveOptions(opt))
	if err != nil {
		f.Close()
		return nil, err
	}
	cp, err := Open(a, "", opt)
	if err != nil {
		a.Close()
		f.Close()
		return nil, err
	}
	cp.Warnings = append(evidence.WarningLines(a.Warnings()), cp.Warnings...)
	if m := kubeletName.FindStringSubmatch(path.Base(name)); m != nil {
		applyKubeletName(cp, m)
	}
	cp.closer = func() error { a.Close(); return f.Close() }
	if a.Compression() != evidence.CompressionNone && (opt == nil || !opt.Pages) {
		if err := cp.streamArgs(f, f.Size(), label, nil); err != nil {
			cp.Warnings = append(cp.Warnings, err.Error())
		}
	}
	return cp, nil
}
