package kube

import (
	"container/heap"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"iter"
	"path"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/klauspost/compress/gzip"

	"github.com/deadnode/deadnode/evidence"
	"github.com/deadnode/deadnode/forensics/internal/pathutil"
	"github.com/deadnode/deadnode/forensics/model"
)

// Log formats.
const (
	FormatCRI        = "cri"         // the kubelet's CRI log files (containerd, CRI-O), Podman's k8s-file
	FormatDockerJSON = "docker_json" // Docker's json-file driver
)

// RuntimeCRI names the writer of a /var/log/pods file when no runtime
// record says which CRI runtime it was (containerd or CRI-O).
const RuntimeCRI = "cri"

// LogLine is one line of a container's log: a CRI line, or partial lines
// (P) joined up to their final (F) one, or a Docker json-file entry (split
// entries joined likewise).
type LogLine struct {
	Time        model.Time `json:"time"`
	Stream      string     `json:"stream"`
	Text        string     `json:"text"`
	Pod         string     `json:"pod"` // namespace/name
	PodUID      string     `json:"pod_uid"`
	Container   string     `json:"container"`
	ContainerID string     `json:"container_id"`
	Attempt     *int       `json:"attempt"` // the restart count of the file's name; null for Docker
	Runtime     string     `json:"runtime"`
	Format      string     `json:"format"`
	// EvidencePath is the log file; Line the 1-based line number in it
	// (after decompression for .gz), Offset the byte offset of the line.
	EvidencePath string `json:"evidence_path"`
	Line         int64  `json:"line"`
	Offset       int64  `json:"offset"`
	// Parts is the number of fragments joined (more than 1 for a line
	// split by the runtime); Partial is true when the last fragment was
	// never written (a P line at the end of the log).
	Parts   int  `json:"parts"`
	Partial bool `json:"partial"`
	// Truncated is true when the line was longer than the bound: Text
	// holds its beginning.
	Truncated bool `json:"truncated"`
}

// LogFilter selects log lines. Zero values select everything.
type LogFilter struct {
	// Container is a container id, id prefix (4+ hex digits), name, or
	// namespace/pod/name.
	Container string
	// Pod is namespace/name; PodUID a pod uid.
	Pod    string
	PodUID string
	Since  time.Time
	Until  time.Time
	Grep   *regexp.Regexp
	// PodLogsDir is the kubelet's podLogsDir (default /var/log/pods).
	PodLogsDir string
	// DockerRoot is Docker's data root (default /var/lib/docker; "-"
	// skips Docker logs).
	DockerRoot string
	// StorageRoot is containers-storage's graph root, for Podman's
	// k8s-file logs (default /var/lib/containers/storage; "-" skips).
	StorageRoot string
	// Containers are the runtimes' records, to name the runtime and the
	// container id of a log file (by pod uid, container name and attempt).
	Containers []model.Container
	// MaxLineBytes bounds one line (default MaxLineBytes).
	MaxLineBytes int
}

// LogFile is a container log file found in the evidence.
type LogFile struct {
	FileInfo
	Format      string `json:"format"`
	Runtime     string `json:"runtime"`
	Pod         string `json:"pod"`
	PodUID      string `json:"pod_uid"`
	Container   string `json:"container"`
	ContainerID string `json:"container_id"`
	Attempt     *int   `json:"attempt"`
	// Rotated is the rotation suffix (a kubelet timestamp, or Docker's
	// number); "" for the live file.
	Rotated string `json:"rotated"`
	// Link is the /var/log/containers link that names the file, and
	// LinkContainerID the id its name gives.
	Link            string `json:"link,omitempty"`
	LinkContainerID string `json:"link_container_id,omitempty"`
	// stream groups the files of one log, oldest first
	stream string
	seq    int
}

// LogFiles finds the container log files the filter selects, grouped per
// log (oldest rotated file first, the live file last).
func LogFiles(ctx context.Context, src evidence.Source, f LogFilter) ([]LogFile, []evidence.Warning) {
	var files []LogFile
	var warns []evidence.Warning
	links, w := containerLinks(src)
	warns = append(warns, w...)
	join := joinContainers(f.Containers)
	// CRI logs under the pod logs dir.
	podLogs := defaultPodLogsDir
	if f.PodLogsDir != "" {
		if n, err := hostPath(f.PodLogsDir, "/"); err == nil {
			podLogs = n
		}
	}
	if res, err := evidence.Resolve(src, podLogs, true); err == nil {
		pods, err := src.ReadDir(res)
		if err != nil && !notExist(err) {
			warns = append(warns, evidence.Warnf(pathutil.Abs(podLogs), -1, "%v", err))
		}
		for _, p := range pods {
			if ctx.Err() != nil {
				return files, append(warns, evidence.WarningOf(ctx.Err()))
			}
			if !p.Mode.IsDir() {
				continue
			}
			ns, name, uid, ok := splitPodLogDir(path.Base(p.Name))
			if !ok {
				warns = append(warns, evidence.Warnf(pathutil.Abs(p.Name), -1, "not a <namespace>_<pod>_<uid> directory"))
				continue
			}
			if (f.Pod != "" && f.Pod != ns+"/"+name) || (f.PodUID != "" && f.PodUID != uid) {
				continue
			}
			ctrs, err := src.ReadDir(p.Name)
			if err != nil {
				warns = append(warns, evidence.Warnf(pathutil.Abs(p.Name), -1, "%v", err))
				continue
			}
			for _, c := range ctrs {
				if !c.Mode.IsDir() {
					continue
				}
				files = append(files, criFiles(src, c.Name, ns, name, uid, path.Base(c.Name), links, join, &warns)...)
			}
		}
	}
	if root, ok := runtimeRoot(f.DockerRoot, defaultDockerRoot); ok {
		files = append(files, dockerFiles(ctx, src, root, join, &warns)...)
	}
	if root, ok := runtimeRoot(f.StorageRoot, defaultStorageRoot); ok {
		files = append(files, podmanFiles(ctx, src, root, join)...)
	}
	out := files[:0]
	for _, lf := range files {
		if f.selects(lf) {
			out = append(out, lf)
		}
	}
	return out, warns
}

func (f LogFilter) selects(lf LogFile) bool {
	if f.Pod != "" && lf.Pod != f.Pod {
		return false
	}
	if f.PodUID != "" && lf.PodUID != f.PodUID {
		return false
	}
	if c := f.Container; c != "" {
		switch {
		case lf.ContainerID != "" && (lf.ContainerID == c || len(c) >= 4 && isHex(c) && strings.HasPrefix(lf.ContainerID, c)):
		case lf.Container == c:
		case lf.Pod != "" && lf.Pod+"/"+lf.Container == c:
		default:
			return false
		}
	}
	return true
}

func isHex(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

type linkInfo struct {
	link, pod, ns, container, id string
}

// containerLinks maps the resolved targets of /var/log/containers links
// to what their names say: <pod>_<namespace>_<container>-<id>.log.
func containerLinks(src evidence.Source) (map[string]linkInfo, []evidence.Warning) {
	out := map[string]linkInfo{}
	var warns []evidence.Warning
	ents, err := src.ReadDir(containersLogDir)
	if err != nil {
		if !notExist(err) {
			warns = append(warns, evidence.Warnf(pathutil.Abs(containersLogDir), -1, "%v", err))
		}
		return out, warns
	}
	for _, e := range ents {
		b := path.Base(e.Name)
		if !strings.HasSuffix(b, ".log") {
			continue
		}
		stem := strings.TrimSuffix(b, ".log")
		i := strings.LastIndexByte(stem, '-')
		if i < 0 {
			continue
		}
		id := stem[i+1:]
		parts := strings.SplitN(stem[:i], "_", 3)
		if len(parts) != 3 || !isHex(id) {
			continue
		}
		res, err := evidence.Resolve(src, e.Name, true)
		if err != nil {
			warns = append(warns, evidence.Warnf(pathutil.Abs(e.Name), -1, "%v", err))
			continue
		}
		out[res] = linkInfo{link: pathutil.Abs(e.Name), pod: parts[0], ns: parts[1], container: parts[2], id: id}
	}
	return out, warns
}

type joinKey struct {
	uid, container string
	attempt        uint32
}

type joined struct {
	id, runtime string
	c           *model.Container
}

type containerJoin struct {
	cri   map[joinKey]joined
	byID  map[string]*model.Container
	byLog map[string]joined // log path suffix from the pod logs dir on
}

func joinContainers(cs []model.Container) containerJoin {
	j := containerJoin{cri: map[joinKey]joined{}, byID: map[string]*model.Container{}}
	for i := range cs {
		c := &cs[i]
		j.byID[c.ID] = c
		if c.Kind == model.KindSandbox {
			continue
		}
		if c.Pod != nil && c.Pod.UID != "" {
			j.cri[joinKey{c.Pod.UID, c.ContainerName, c.Attempt}] = joined{c.ID, c.Runtime, c}
		}
	}
	return j
}

// criFiles lists one container directory of the pod logs dir:
// <attempt>.log and its rotations <attempt>.log.<YYYYMMDD-hhmmss>[.gz].
func criFiles(src evidence.Source, dir, ns, pod, uid, ctr string, links map[string]linkInfo, join containerJoin, warns *[]evidence.Warning) []LogFile {
	ents, err := src.ReadDir(dir)
	if err != nil {
		*warns = append(*warns, evidence.Warnf(pathutil.Abs(dir), -1, "%v", err))
		return nil
	}
	type group struct {
		live    *evidence.Stat
		rotated []*evidence.Stat
	}
	groups := map[int]*group{}
	for _, e := range ents {
		b := path.Base(e.Name)
		num, rest, ok := strings.Cut(b, ".log")
		attempt, err := strconv.Atoi(num)
		if !ok || err != nil || attempt < 0 {
			continue
		}
		if !e.Mode.IsRegular() {
			if e.Mode.Type() != 0 {
				*warns = append(*warns, evidence.Warnf(pathutil.Abs(e.Name), -1, "not a regular file (%s), not read", e.Mode))
			}
			continue
		}
		g := groups[attempt]
		if g == nil {
			g = &group{}
			groups[attempt] = g
		}
		switch {
		case rest == "":
			g.live = e
		case strings.HasSuffix(rest, ".tmp"):
			*warns = append(*warns, evidence.Warnf(pathutil.Abs(e.Name), -1, "a rotation left unfinished (.tmp), not read"))
		case strings.HasPrefix(rest, "."):
			g.rotated = append(g.rotated, e)
		}
	}
	attempts := make([]int, 0, len(groups))
	for a := range groups {
		attempts = append(attempts, a)
	}
	sort.Ints(attempts)
	var out []LogFile
	for _, a := range attempts {
		g := groups[a]
		sort.Slice(g.rotated, func(i, j int) bool { return g.rotated[i].Name < g.rotated[j].Name })
		all := append(append([]*evidence.Stat{}, g.rotated...), g.live)
		if g.live == nil {
			all = all[:len(all)-1]
		}
		live := dir + "/" + strconv.Itoa(a) + ".log"
		li, hasLink := links[live]
		jn, hasJoin := join.cri[joinKey{uid, ctr, uint32(a)}]
		for i, st := range all {
			att := a
			lf := LogFile{FileInfo: statInfo(st.Name, st.Name, st), Format: FormatCRI, Runtime: RuntimeCRI, Pod: ns + "/" + pod, PodUID: uid,
				Container: ctr, Attempt: &att, stream: live, seq: i}
			if st != g.live {
				lf.Rotated = strings.TrimPrefix(strings.TrimSuffix(strings.TrimPrefix(path.Base(st.Name), strconv.Itoa(a)+".log"), ".gz"), ".")
			}
			if hasLink {
				lf.ContainerID, lf.Link, lf.LinkContainerID = li.id, li.link, li.id
			}
			if hasJoin {
				// The runtime's record is the container's identity; a link
				// that names another id is said so once.
				lf.Runtime, lf.ContainerID = jn.runtime, jn.id
				if hasLink && li.id != jn.id && i == len(all)-1 {
					*warns = append(*warns, evidence.Warnf("", -1, "%s names container %s, but the runtime's record for %s/%s container %s attempt %d is %s", li.link, li.id, ns, pod, ctr, a, jn.id))
				}
			}
			out = append(out, lf)
		}
	}
	return out
}

// runtimeRoot is where a runtime's root is in the evidence: flag as given
// (a host path), or def when flag is empty; false when flag is "-" (not
// read).
func runtimeRoot(flag, def string) (string, bool) {
	switch flag {
	case "-":
		return "", false
	case "":
		return def, true
	}
	if n, err := hostPath(flag, "/"); err == nil {
		return n, true
	}
	return def, true
}

// containerDirs yields the container directories of a runtime's
// directory dir (by id) until ctx is done. An unreadable dir is warned in
// warns, unless absent or warns is nil.
func containerDirs(ctx context.Context, src evidence.Source, dir string, warns *[]evidence.Warning) iter.Seq2[string, *evidence.Stat] {
	return func(yield func(string, *evidence.Stat) bool) {
		res, err := evidence.Resolve(src, dir, true)
		if err != nil {
			return
		}
		ids, err := src.ReadDir(res)
		if err != nil {
			if warns != nil && !notExist(err) {
				*warns = append(*warns, evidence.Warnf(pathutil.Abs(dir), -1, "%v", err))
			}
			return
		}
		if len(ids) > MaxPods {
			if warns != nil {
				*warns = append(*warns, evidence.Warnf(pathutil.Abs(dir), -1, "more than %d container directories; the rest are not read", MaxPods))
			}
			ids = ids[:MaxPods]
		}
		for _, d := range ids {
			if ctx.Err() != nil {
				return
			}
			if d.Mode.IsDir() && !yield(path.Base(d.Name), d) {
				return
			}
		}
	}
}

// dockerFiles lists Docker's json-file logs:
// containers/<id>/<id>-json.log and its rotations .N (older as N grows).
func dockerFiles(ctx context.Context, src evidence.Source, root string, join containerJoin, warns *[]evidence.Warning) []LogFile {
	var out []LogFile
	for id, d := range containerDirs(ctx, src, root+"/containers", warns) {
		ents, err := src.ReadDir(d.Name)
		if err != nil {
			continue
		}
		prefix := id + "-json.log"
		type rot struct {
			n  int
			st *evidence.Stat
		}
		var rots []rot
		for _, e := range ents {
			b := path.Base(e.Name)
			if !strings.HasPrefix(b, prefix) || !e.Mode.IsRegular() {
				continue
			}
			suffix := strings.TrimSuffix(strings.TrimPrefix(b, prefix), ".gz")
			if suffix == "" {
				rots = append(rots, rot{0, e})
				continue
			}
			n, err := strconv.Atoi(strings.TrimPrefix(suffix, "."))
			if err != nil || n <= 0 {
				continue
			}
			rots = append(rots, rot{n, e})
		}
		sort.Slice(rots, func(i, j int) bool { return rots[i].n > rots[j].n })
		name, pod, podUID, ctr := dockerNames(src, d.Name, join.byID[id])
		for i, r := range rots {
			lf := LogFile{FileInfo: statInfo(r.st.Name, r.st.Name, r.st), Format: FormatDockerJSON, Runtime: model.RuntimeDocker,
				ContainerID: id, Container: name, Pod: pod, PodUID: podUID, stream: d.Name + "/" + prefix, seq: i}
			if ctr != "" {
				lf.Container = ctr
			}
			if r.n > 0 {
				lf.Rotated = strconv.Itoa(r.n)
			}
			out = append(out, lf)
		}
	}
	return out
}

// dockerNames names a Docker container: from the runtime's record when
// given, else from its config.v2.json (name, and the kubelet's labels of
// a dockershim node).
func dockerNames(src evidence.Source, dir string, c *model.Container) (name, pod, uid, ctr string) {
	if c != nil {
		name = c.ContainerName
		if c.Pod != nil {
			pod, uid = c.Pod.Namespace+"/"+c.Pod.Name, c.Pod.UID
		}
		return name, pod, uid, ""
	}
	b, err := evidence.ReadFile(src, dir+"/config.v2.json", 4<<20)
	if err != nil {
		return "", "", "", ""
	}
	var cfg struct {
		Name   string `json:"Name"`
		Config struct {
			Labels map[string]string `json:"Labels"`
		} `json:"Config"`
	}
	if json.Unmarshal(b, &cfg) != nil {
		return "", "", "", ""
	}
	l := cfg.Config.Labels
	if l["io.kubernetes.pod.name"] != "" {
		pod = l["io.kubernetes.pod.namespace"] + "/" + l["io.kubernetes.pod.name"]
	}
	return strings.TrimPrefix(cfg.Name, "/"), pod, l["io.kubernetes.pod.uid"], l["io.kubernetes.container.name"]
}

// podmanFiles lists Podman's k8s-file logs
// (overlay-containers/<id>/userdata/ctr.log, CRI format).
func podmanFiles(ctx context.Context, src evidence.Source, root string, join containerJoin) []LogFile {
	var out []LogFile
	for id, d := range containerDirs(ctx, src, root+"/overlay-containers", nil) {
		st, err := src.Lstat(d.Name + "/userdata/ctr.log")
		if err != nil || !st.Mode.IsRegular() {
			continue
		}
		lf := LogFile{FileInfo: statInfo(st.Name, st.Name, st), Format: FormatCRI, Runtime: model.RuntimePodman, ContainerID: id, stream: st.Name}
		if c := join.byID[id]; c != nil {
			lf.Runtime = c.Runtime
			lf.Container = c.ContainerName
			if c.Pod != nil {
				lf.Pod, lf.PodUID = c.Pod.Namespace+"/"+c.Pod.Name, c.Pod.UID
			}
		}
		out = append(out, lf)
	}
	return out
}

// Logs streams the log lines the filter selects, merged across files by
// time (a k-way merge: memory grows with the number of logs read at once,
// never with their size). Each log's files (rotated, then live) are read
// in order; lines keep their file order. A non-nil error is a warning
// about one line or file (a *vfs.FormatError naming the file and offset,
// or an evidence.Warning about a log directory or file found, as LogFiles
// gives them) and the stream goes on; it stops when ctx is done.
func Logs(ctx context.Context, src evidence.Source, f LogFilter) iter.Seq2[LogLine, error] {
	return func(yield func(LogLine, error) bool) {
		logs(ctx, src, f, nil, yield)
	}
}

// fileStats are what LogFindings judges, per file.
type fileStats struct {
	file        LogFile
	lines       int64
	bad         int64
	truncated   int64
	regressions int64
	maxBack     time.Duration
	backAt      int64 // line of the largest regression
	last        time.Time
}

func logs(ctx context.Context, src evidence.Source, f LogFilter, stats map[string]*fileStats, yield func(LogLine, error) bool) {
	files, warns := LogFiles(ctx, src, f)
	for _, w := range warns {
		if !yield(LogLine{}, w) {
			return
		}
	}
	max := f.MaxLineBytes
	if max <= 0 {
		max = MaxLineBytes
	}
	// Group into streams, each file list oldest first.
	byStream := map[string][]LogFile{}
	var order []string
	for _, lf := range files {
		if _, ok := byStream[lf.stream]; !ok {
			order = append(order, lf.stream)
		}
		byStream[lf.stream] = append(byStream[lf.stream], lf)
	}
	h := &cursorHeap{}
	for _, s := range order {
		fs := byStream[s]
		sort.SliceStable(fs, func(i, j int) bool { return fs[i].seq < fs[j].seq })
		c := &cursor{src: src, files: fs, max: max, stats: stats}
		if c.advance(ctx) {
			heap.Push(h, c)
		}
	}
	defer func() {
		for _, c := range *h {
			c.close()
		}
	}()
	for h.Len() > 0 {
		if err := ctx.Err(); err != nil {
			yield(LogLine{}, err)
			return
		}
		c := (*h)[0]
		l, err := c.head, c.headErr
		if err != nil || f.keeps(l) {
			if !yield(l, err) {
				return
			}
		}
		if c.advance(ctx) {
			heap.Fix(h, 0)
		} else {
			c.close()
			heap.Pop(h)
		}
	}
	if err := ctx.Err(); err != nil {
		yield(LogLine{}, err)
	}
}

// warningOf is the Warning a problem Logs yields stands for: the Warning
// itself (LogFiles' warnings are yielded as they are), or the file and
// offset of a *FormatError (see evidence.WarningOf).
func warningOf(err error) evidence.Warning {
	var w evidence.Warning
	if errors.As(err, &w) && w.Error() == err.Error() {
		return w
	}
	return evidence.WarningOf(err)
}

func (f LogFilter) keeps(l LogLine) bool {
	if !f.Since.IsZero() && l.Time.Before(f.Since) {
		return false
	}
	if !f.Until.IsZero() && l.Time.After(f.Until) {
		return false
	}
	if f.Grep != nil && !f.Grep.MatchString(l.Text) {
		return false
	}
	return true
}

// cursor reads one log (its files in order) a line at a time.
type cursor struct {
	src   evidence.Source
	files []LogFile
	idx   int
	max   int
	stats map[string]*fileStats

	f       evidence.File
	rc      io.Closer
	lr      *lineReader
	cur     *LogFile
	pending map[string]*LogLine // partial lines per stream
	queue   []LogLine           // completed lines waiting (flushes)

	head    LogLine
	headErr error
	key     time.Time // merge key: the head's time, or the last time seen
}

func (c *cursor) close() {
	if c.rc != nil {
		c.rc.Close()
		c.rc = nil
	}
	if c.f != nil {
		c.f.Close()
		c.f = nil
	}
}

// advance moves to the next line or warning; false at the end.
func (c *cursor) advance(ctx context.Context) bool {
	for {
		if len(c.queue) > 0 {
			c.head, c.headErr = c.queue[0], nil
			if len(c.queue) == 1 {
				c.queue = c.queue[:0] // keep the backing array
			} else {
				c.queue = c.queue[1:]
			}
			c.key = c.head.Time.Time
			return true
		}
		if ctx.Err() != nil {
			return false
		}
		if c.lr == nil {
			if c.idx >= len(c.files) {
				// End of the log: partial lines never completed.
				c.flushPending()
				if len(c.queue) > 0 {
					continue
				}
				return false
			}
			lf := c.files[c.idx]
			c.idx++
			if err := c.open(lf); err != nil {
				c.head, c.headErr = LogLine{EvidencePath: lf.EvidencePath}, err
				return true
			}
			continue
		}
		raw, err := c.lr.next()
		if err == io.EOF {
			c.close()
			c.lr = nil
			continue
		}
		if err != nil {
			c.head, c.headErr = LogLine{EvidencePath: c.cur.EvidencePath}, &evidence.FormatError{File: c.cur.EvidencePath, Offset: c.lr.off, Msg: "reading the log", Err: err}
			c.close()
			c.lr = nil
			return true
		}
		if werr := c.line(raw); werr != nil {
			c.head, c.headErr = LogLine{EvidencePath: c.cur.EvidencePath, Line: raw.no, Offset: raw.off}, werr
			return true
		}
	}
}

func (c *cursor) open(lf LogFile) error {
	c.cur = &c.files[c.idx-1]
	name := strings.TrimPrefix(lf.EvidencePath, "/")
	f, err := c.src.Open(name)
	if err != nil {
		return err
	}
	c.f = f
	var r io.Reader = io.NewSectionReader(f, 0, f.Size())
	var magic [2]byte
	if n, _ := f.ReadAt(magic[:], 0); n == 2 && magic[0] == 0x1f && magic[1] == 0x8b {
		zr, err := gzip.NewReader(r)
		if err != nil {
			f.Close()
			c.f = nil
			return &evidence.FormatError{File: lf.EvidencePath, Offset: 0, Msg: "gzip", Err: err}
		}
		c.rc = zr
		r = zr
	}
	c.lr = newLineReader(r, c.max)
	if c.pending == nil {
		c.pending = map[string]*LogLine{}
	}
	if c.stats != nil {
		if _, ok := c.stats[lf.EvidencePath]; !ok {
			c.stats[lf.EvidencePath] = &fileStats{file: lf}
		}
	}
	return nil
}

func (c *cursor) base(raw rawLine) LogLine {
	lf := c.cur
	return LogLine{Pod: lf.Pod, PodUID: lf.PodUID, Container: lf.Container, ContainerID: lf.ContainerID, Attempt: lf.Attempt,
		Runtime: lf.Runtime, Format: lf.Format, EvidencePath: lf.EvidencePath, Line: raw.no, Offset: raw.off, Parts: 1, Truncated: raw.truncated}
}

// line parses one physical line into the queue; a returned error is a
// warning about it.
func (c *cursor) line(raw rawLine) error {
	var st *fileStats
	if c.stats != nil {
		st = c.stats[c.cur.EvidencePath]
		st.lines++
		if raw.truncated {
			st.truncated++
		}
	}
	var t time.Time
	var stream, text string
	var partial bool
	var perr error
	switch c.cur.Format {
	case FormatDockerJSON:
		d, err := parseDocker(raw.head, raw.tail, raw.truncated)
		t, stream, partial, text, perr = d.t, d.stream, d.partial, d.text, err
	default:
		cl, err := parseCRI(raw.head)
		t, stream, partial, text, perr = cl.t, cl.stream, cl.partial, string(cl.text), err
	}
	if perr != nil {
		if st != nil {
			st.bad++
		}
		return &evidence.FormatError{File: c.cur.EvidencePath, Offset: raw.off,
			Msg: fmt.Sprintf("line %d: not a %s log line (%q)", raw.no, c.cur.Format, truncate(string(raw.head), 120)), Err: perr}
	}
	if st != nil {
		if !st.last.IsZero() && t.Before(st.last) {
			st.regressions++
			if back := st.last.Sub(t); back > st.maxBack {
				st.maxBack, st.backAt = back, raw.no
			}
		}
		if t.After(st.last) {
			st.last = t
		}
	}
	if p := c.pending[stream]; p != nil {
		room := c.max - len(p.Text)
		if room < len(text) {
			p.Text += text[:max(room, 0)]
			p.Truncated = true
		} else {
			p.Text += text
		}
		p.Parts++
		p.Truncated = p.Truncated || raw.truncated
		if !partial {
			delete(c.pending, stream)
			c.queue = append(c.queue, *p)
		}
		return nil
	}
	l := c.base(raw)
	l.Time, l.Stream, l.Text = model.T(t), stream, text
	if partial {
		c.pending[stream] = &l
		return nil
	}
	c.queue = append(c.queue, l)
	return nil
}

func (c *cursor) flushPending() {
	for _, s := range []string{"stdout", "stderr"} {
		if p := c.pending[s]; p != nil {
			p.Partial = true
			c.queue = append(c.queue, *p)
			delete(c.pending, s)
		}
	}
	for s, p := range c.pending { // other stream names (Docker's are free-form)
		p.Partial = true
		c.queue = append(c.queue, *p)
		delete(c.pending, s)
	}
	sort.SliceStable(c.queue, func(i, j int) bool { return c.queue[i].Time.Before(c.queue[j].Time.Time) })
}

type cursorHeap []*cursor

func (h cursorHeap) Len() int { return len(h) }
func (h cursorHeap) Less(i, j int) bool {
	a, b := h[i].key, h[j].key
	if h[i].headErr != nil || h[j].headErr != nil {
		// A warning goes out as soon as it is at a head.
		return h[i].headErr != nil && h[j].headErr == nil
	}
	if !a.Equal(b) {
		return a.Before(b)
	}
	return h[i].head.EvidencePath < h[j].head.EvidencePath
}
func (h cursorHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *cursorHeap) Push(x any)   { *h = append(*h, x.(*cursor)) }
func (h *cursorHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}
