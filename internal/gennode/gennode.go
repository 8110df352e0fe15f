// Package gennode writes synthetic container-runtime node trees for
// benchmarks and tests.
//
// Containerd produces a directory that looks like the filesystem root of a
// Kubernetes node running containerd 1.6/1.7 with the CRI plugin and the
// overlayfs snapshotter:
//
//	<dir>/var/lib/containerd/io.containerd.metadata.v1.bolt/meta.db
//	<dir>/var/lib/containerd/io.containerd.snapshotter.v1.overlayfs/metadata.db
//	<dir>/var/lib/containerd/io.containerd.snapshotter.v1.overlayfs/snapshots/<id>/{fs,work}
//	<dir>/var/lib/containerd/io.containerd.content.v1.content/blobs/sha256/<manifest and config blobs>
//
// Both bbolt databases use containerd's real on-disk schema (metadata schema
// "v1", dbversion 3; snapshots/storage schema "v1"), as observed in the
// shared containerd-node fixture. The output is deterministic for a given
// (nContainers, nSnapshots): IDs are derived from SHA-256 of fixed strings
// and all timestamps are offsets from a fixed base time.
package gennode

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
)

// Namespace is the containerd namespace all generated objects live in.
const Namespace = "k8s.io"

// Snapshotter is the snapshotter name used for all generated snapshots.
const Snapshotter = "overlayfs"

// LayersPerImage is the depth of each generated image's committed snapshot
// chain (the last image may be shorter).
const LayersPerImage = 3

// Paths relative to the node root.
const (
	ContainerdRoot = "var/lib/containerd"
	MetaDBPath     = ContainerdRoot + "/io.containerd.metadata.v1.bolt/meta.db"
	OverlayRoot    = ContainerdRoot + "/io.containerd.snapshotter.v1.overlayfs"
	OverlayDBPath  = OverlayRoot + "/metadata.db"
	ContentRoot    = ContainerdRoot + "/io.containerd.content.v1.content"
)

// Type URLs and names used by containerd 1.6/1.7 with CRI.
const (
	specTypeURL        = "types.containerd.io/opencontainers/runtime-spec/1/Spec"
	runcOptionsTypeURL = "containerd.runc.v1.Options"
	criContainerExt    = "io.cri-containerd.container.metadata"
	criContainerType   = "github.com/containerd/cri/pkg/store/container/Metadata"
	criSandboxExt      = "io.cri-containerd.sandbox.metadata"
	criSandboxType     = "github.com/containerd/cri/pkg/store/sandbox/Metadata"
	runtimeName        = "io.containerd.runc.v2"
	pauseImage         = "registry.k8s.io/pause:3.9"

	mediaTypeManifest = "application/vnd.oci.image.manifest.v1+json"
	mediaTypeConfig   = "application/vnd.oci.image.config.v1+json"
	mediaTypeLayer    = "application/vnd.oci.image.layer.v1.tar+gzip"
)

// Snapshot kinds as stored by containerd's snapshots/storage package.
const (
	kindActive    = 2
	kindCommitted = 3
)

// baseTime anchors all generated timestamps so output is reproducible.
var baseTime = time.Date(2026, time.January, 1, 0, 0, 0, 0, time.UTC)

// Layout describes the shape Containerd generates for the given arguments.
// It is exported so tests and benchmarks can assert exact counts.
type Layout struct {
	Containers int // entries in v1/k8s.io/containers
	Sandboxes  int // containers labelled io.cri-containerd.kind=sandbox
	Active     int // active snapshots (one per container, first Active containers)
	Committed  int // committed (image layer) snapshots
	Images     int // distinct images (each has LayersPerImage layers or fewer)
	// ImageRecords is the number of entries in v1/k8s.io/images (CRI stores
	// each image under its name and under sha256:<config digest>).
	ImageRecords int
	Blobs        int // entries in v1/k8s.io/content/blob
	Parents      int // entries in metadata.db v1/parents
}

// PlanContainerd returns the Layout Containerd(dir, nContainers, nSnapshots)
// writes.
func PlanContainerd(nContainers, nSnapshots int) Layout {
	return planLayers(nContainers, nSnapshots, LayersPerImage)
}

func planLayers(nContainers, nSnapshots, per int) Layout {
	var l Layout
	l.Containers = nContainers
	l.Sandboxes = (nContainers + 3) / 4
	l.Active = min(nContainers, nSnapshots)
	l.Committed = nSnapshots - l.Active
	l.Images = (l.Committed + per - 1) / per
	l.ImageRecords = 2 * l.Images
	l.Blobs = 2*l.Images + l.Committed
	l.Parents = l.Committed - l.Images // every layer but the bottom one
	if l.Images > 0 {
		l.Parents += l.Active // every active snapshot sits on an image
	}
	return l
}

// Containerd writes a synthetic containerd node tree under dir (which acts
// as the node's filesystem root). It creates nContainers CRI containers in
// namespace k8s.io, every fourth one (index 0, 4, 8, ...) a pod sandbox, and
// nSnapshots overlayfs snapshots: one active snapshot per container (for the
// first min(nContainers, nSnapshots) containers) and the rest committed image
// layers grouped into images of LayersPerImage layers. Sandboxes use image
// 0 (the pause image); other containers round-robin over the remaining images.
// If nSnapshots < nContainers, the trailing containers keep a snapshotKey that
// has no snapshot (a dangling reference, as after snapshot GC).
//
// It refuses to overwrite an existing meta.db or metadata.db.
func Containerd(dir string, nContainers, nSnapshots int) error {
	return ContainerdLayers(dir, nContainers, nSnapshots, LayersPerImage)
}

// ContainerdLayers is Containerd with images of layersPerImage layers.
func ContainerdLayers(dir string, nContainers, nSnapshots, layersPerImage int) error {
	if nContainers < 0 || nSnapshots < 0 || layersPerImage < 1 {
		return fmt.Errorf("gennode: bad count (containers=%d snapshots=%d layers=%d)", nContainers, nSnapshots, layersPerImage)
	}
	_, err := containerdGen(dir, nContainers, nSnapshots, layersPerImage)
	return err
}

func containerdGen(dir string, nContainers, nSnapshots, layersPerImage int) (*generator, error) {
	g := &generator{dir: dir, plan: planLayers(nContainers, nSnapshots, layersPerImage), per: layersPerImage}
	if err := g.mkdirs(); err != nil {
		return nil, err
	}
	g.buildImages()
	g.buildContainers()
	if err := g.writeContentBlobs(); err != nil {
		return nil, err
	}
	if err := g.writeSnapshotDirs(); err != nil {
		return nil, err
	}
	// Storage IDs must exist before meta.db's snapshot names are final, so
	// the snapshotter DB is written first (as containerd does).
	if err := g.writeOverlayDB(); err != nil {
		return nil, err
	}
	return g, g.writeMetaDB()
}

type layer struct {
	diffID     string // sha256:... of the uncompressed tar
	blobDigest string // sha256:... of the compressed blob
	blobSize   int64
	chainID    string // sha256:... OCI chain ID; meta.db snapshot key
	created    time.Time

	storageID uint64 // metadata.db id (dir name under snapshots/)
	metaName  string // "<ns>/<seq>/<key>" in both DBs
	inodes    int64
	size      int64
}

type image struct {
	name           string
	manifest       []byte
	manifestDigest string
	config         []byte
	configDigest   string
	layers         []*layer
	created        time.Time
}

type container struct {
	id        string
	sandbox   bool
	sandboxID string
	podName   string
	podNS     string
	podUID    string
	ctrName   string // io.kubernetes.container.name (containers only)
	attempt   int
	img       int // index into images, or -1 when there are no images
	imageName string
	created   time.Time

	hasSnapshot bool
	storageID   uint64
	metaName    string
}

type generator struct {
	dir        string
	plan       Layout
	images     []*image
	containers []*container
	metaSeq    uint64 // last sequence handed out by meta.db's snapshotter bucket
	per        int    // layers per image
}

func (g *generator) path(rel string) string { return filepath.Join(g.dir, filepath.FromSlash(rel)) }

func (g *generator) mkdirs() error {
	for _, p := range []string{MetaDBPath, OverlayDBPath} {
		if _, err := os.Lstat(g.path(p)); err == nil {
			return fmt.Errorf("gennode: %s already exists", g.path(p))
		} else if !errors.Is(err, fs.ErrNotExist) {
			return err
		}
	}
	// Permissions follow what containerd creates on a real node.
	for _, d := range []struct {
		rel  string
		mode os.FileMode
	}{
		{"var/lib", 0o755},
		{ContainerdRoot, 0o711},
		{ContainerdRoot + "/io.containerd.metadata.v1.bolt", 0o711},
		{OverlayRoot, 0o700},
		{OverlayRoot + "/snapshots", 0o700},
		{ContentRoot, 0o755},
		{ContentRoot + "/blobs", 0o755},
		{ContentRoot + "/blobs/sha256", 0o755},
		{ContentRoot + "/ingest", 0o755},
	} {
		if err := os.MkdirAll(g.path(d.rel), d.mode); err != nil {
			return err
		}
		if err := os.Chmod(g.path(d.rel), d.mode); err != nil {
			return err
		}
	}
	return nil
}

func hashHex(format string, a ...any) string {
	sum := sha256.Sum256(fmt.Appendf(nil, format, a...))
	return hex.EncodeToString(sum[:])
}

func digestOf(b []byte) string {
	sum := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(sum[:])
}

func uuidOf(format string, a ...any) string {
	h := hashHex(format, a...)
	return h[0:8] + "-" + h[8:12] + "-4" + h[13:16] + "-8" + h[17:20] + "-" + h[20:32]
}

// buildImages lays out the committed snapshots as OCI images, computing real
// chain IDs from the (synthetic) diff IDs and real manifest/config digests.
func (g *generator) buildImages() {
	remaining := g.plan.Committed
	for i := 0; i < g.plan.Images; i++ {
		img := &image{created: baseTime.Add(time.Duration(i) * time.Minute)}
		if i == 0 {
			img.name = pauseImage
		} else {
			img.name = fmt.Sprintf("registry.example.com/gennode/app-%04d:1.%d", i, i%7)
		}
		n := min(g.per, remaining)
		remaining -= n
		var diffIDs []string
		var chain string
		for j := 0; j < n; j++ {
			l := &layer{
				diffID:     "sha256:" + hashHex("gennode diff %d/%d", i, j),
				blobDigest: "sha256:" + hashHex("gennode blob %d/%d", i, j),
				blobSize:   int64(700_000 + 37_111*((i*g.per+j)%97)),
				created:    img.created.Add(time.Duration(j+1) * time.Second),
				inodes:     int64(40 + (i*13+j*7)%400),
			}
			l.size = l.blobSize * 2
			if j == 0 {
				chain = l.diffID
			} else {
				chain = digestOf([]byte(chain + " " + l.diffID))
			}
			l.chainID = chain
			diffIDs = append(diffIDs, l.diffID)
			img.layers = append(img.layers, l)
		}
		img.config = mustJSON(map[string]any{
			"architecture": "amd64",
			"os":           "linux",
			"created":      img.created.Format(time.RFC3339Nano),
			"config": map[string]any{
				"Env":        []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"},
				"Entrypoint": []string{entrypoint(i)},
				"WorkingDir": "/",
			},
			"rootfs": map[string]any{"type": "layers", "diff_ids": diffIDs},
		})
		img.configDigest = digestOf(img.config)
		var layerDescs []map[string]any
		for _, l := range img.layers {
			layerDescs = append(layerDescs, map[string]any{
				"mediaType": mediaTypeLayer, "digest": l.blobDigest, "size": l.blobSize,
			})
		}
		img.manifest = mustJSON(map[string]any{
			"schemaVersion": 2,
			"mediaType":     mediaTypeManifest,
			"config": map[string]any{
				"mediaType": mediaTypeConfig, "digest": img.configDigest, "size": len(img.config),
			},
			"layers": layerDescs,
		})
		img.manifestDigest = digestOf(img.manifest)
		g.images = append(g.images, img)
	}
}

func entrypoint(img int) string {
	if img == 0 {
		return "/pause"
	}
	return "/usr/local/bin/server"
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err) // only called on generator-built maps/structs
	}
	return b
}

func (g *generator) buildContainers() {
	var sandbox *container
	for i := 0; i < g.plan.Containers; i++ {
		pod := i / 4
		c := &container{
			id:      hashHex("gennode container %d", i),
			sandbox: i%4 == 0,
			created: baseTime.Add(time.Hour + time.Duration(pod)*10*time.Second + time.Duration(i%4)*time.Second),
			img:     -1,
		}
		if c.sandbox {
			c.podName = fmt.Sprintf("gen-%05d-%s", pod, hashHex("gennode pod %d", pod)[:5])
			c.podNS = fmt.Sprintf("tenant-%02d", pod%16)
			c.podUID = uuidOf("gennode pod uid %d", pod)
			c.sandboxID = c.id
			if len(g.images) > 0 {
				c.img = 0
			}
			sandbox = c
		} else {
			c.podName, c.podNS, c.podUID = sandbox.podName, sandbox.podNS, sandbox.podUID
			c.sandboxID = sandbox.id
			c.ctrName = fmt.Sprintf("app-%d", i%4)
			c.attempt = i % 3
			switch {
			case len(g.images) > 1:
				c.img = 1 + i%(len(g.images)-1)
			case len(g.images) == 1:
				c.img = 0
			}
		}
		switch {
		case c.img >= 0:
			c.imageName = g.images[c.img].name
		case c.sandbox:
			c.imageName = pauseImage
		default:
			c.imageName = "registry.example.com/gennode/app-0001:1.1"
		}
		c.hasSnapshot = i < g.plan.Active
		g.containers = append(g.containers, c)
	}
}

func (g *generator) writeContentBlobs() error {
	for _, img := range g.images {
		for _, b := range []struct {
			digest string
			data   []byte
		}{{img.manifestDigest, img.manifest}, {img.configDigest, img.config}} {
			p := g.path(ContentRoot + "/blobs/sha256/" + b.digest[len("sha256:"):])
			if err := os.WriteFile(p, b.data, 0o444); err != nil {
				return err
			}
		}
	}
	return nil
}

// writeSnapshotDirs creates snapshots/<id>/{fs,work} for every snapshot.
// Storage IDs are assigned here in creation order: image layers first, then
// container snapshots, exactly as bucket.NextSequence would hand them out.
func (g *generator) writeSnapshotDirs() error {
	var id uint64
	for _, img := range g.images {
		for _, l := range img.layers {
			id++
			l.storageID = id
		}
	}
	for _, c := range g.containers {
		if c.hasSnapshot {
			id++
			c.storageID = id
		}
	}
	for i := uint64(1); i <= id; i++ {
		base := g.path(OverlayRoot + "/snapshots/" + strconv.FormatUint(i, 10))
		if err := os.Mkdir(base, 0o755); err != nil {
			return err
		}
		if err := os.Mkdir(filepath.Join(base, "fs"), 0o755); err != nil {
			return err
		}
		if err := os.Mkdir(filepath.Join(base, "work"), 0o700); err != nil {
			return err
		}
	}
	return nil
}

func openNew(path string) (*bolt.DB, error) {
	return bolt.Open(path, 0o644, &bolt.Options{Timeout: 5 * time.Second, NoSync: true, NoFreelistSync: true})
}

func closeSynced(db *bolt.DB, err error) error {
	if err == nil {
		err = db.Sync()
	}
	if cerr := db.Close(); err == nil {
		err = cerr
	}
	return err
}

// Key encodings used by containerd.
func varint(v int64) []byte   { return binary.AppendVarint(nil, v) }
func uvarint(v uint64) []byte { return binary.AppendUvarint(nil, v) }

func timestamp(t time.Time) []byte {
	b, err := t.UTC().MarshalBinary()
	if err != nil {
		panic(err) // cannot fail for UTC times in range
	}
	return b
}

// parentKey mirrors containerd snapshots/storage parentKey: uvarint(parent),
// a zero byte, uvarint(child).
func parentKey(parent, child uint64) []byte {
	b := binary.AppendUvarint(nil, parent)
	b = append(b, 0)
	return binary.AppendUvarint(b, child)
}

func putAll(b *bolt.Bucket, kv ...any) error {
	for i := 0; i < len(kv); i += 2 {
		var v []byte
		switch x := kv[i+1].(type) {
		case string:
			v = []byte(x)
		case []byte:
			v = x
		default:
			return fmt.Errorf("gennode: unsupported value type %T", x)
		}
		if err := b.Put([]byte(kv[i].(string)), v); err != nil {
			return err
		}
	}
	return nil
}

func putTimes(b *bolt.Bucket, created, updated time.Time) error {
	return putAll(b, "createdat", timestamp(created), "updatedat", timestamp(updated))
}

func putLabels(b *bolt.Bucket, name string, labels map[string]string) error {
	if len(labels) == 0 {
		return nil
	}
	lb, err := b.CreateBucket([]byte(name))
	if err != nil {
		return err
	}
	for k, v := range labels {
		if err := lb.Put([]byte(k), []byte(v)); err != nil {
			return err
		}
	}
	return nil
}

// createBuckets creates the buckets of a bolt database at the given
// slash-separated paths, in order, each path's parent before it.
func createBuckets(tx *bolt.Tx, paths ...string) (map[string]*bolt.Bucket, error) {
	out := make(map[string]*bolt.Bucket, len(paths))
	for _, p := range paths {
		var b *bolt.Bucket
		var err error
		switch i := strings.LastIndexByte(p, '/'); {
		case i < 0:
			b, err = tx.CreateBucket([]byte(p))
		case out[p[:i]] != nil:
			b, err = out[p[:i]].CreateBucket([]byte(p[i+1:]))
		default:
			err = fmt.Errorf("%s is not created before it", p[:i])
		}
		if err != nil {
			return nil, fmt.Errorf("bucket %s: %w", p, err)
		}
		out[p] = b
	}
	return out, nil
}

func marshalAny(typeURL string, value []byte) ([]byte, error) {
	return proto.MarshalOptions{Deterministic: true}.Marshal(&anypb.Any{TypeUrl: typeURL, Value: value})
}

// writeOverlayDB writes the overlayfs snapshotter's metadata.db
// (containerd snapshots/storage schema).
func (g *generator) writeOverlayDB() error {
	db, err := openNew(g.path(OverlayDBPath))
	if err != nil {
		return err
	}
	err = db.Update(func(tx *bolt.Tx) error {
		bs, err := createBuckets(tx, "v1", "v1/snapshots", "v1/parents")
		if err != nil {
			return err
		}
		sb, pb := bs["v1/snapshots"], bs["v1/parents"]
		// meta.db's per-snapshotter sequence; a committed layer consumes two
		// numbers (the "extract-..." active snapshot, then the commit).
		var seq uint64
		put := func(id uint64, name, parentName string, parentID uint64, kind byte, created time.Time, inodes, size int64) error {
			if got, err := sb.NextSequence(); err != nil {
				return err
			} else if got != id {
				return fmt.Errorf("gennode: storage id %d, sequence %d", id, got)
			}
			b, err := sb.CreateBucket([]byte(name))
			if err != nil {
				return err
			}
			if err := putAll(b, "id", uvarint(id), "kind", []byte{kind}); err != nil {
				return err
			}
			if parentName != "" {
				if err := putAll(b, "parent", parentName); err != nil {
					return err
				}
				if err := pb.Put(parentKey(parentID, id), []byte(name)); err != nil {
					return err
				}
			}
			if err := putTimes(b, created, created); err != nil {
				return err
			}
			if kind == kindCommitted {
				return putAll(b, "inodes", varint(inodes), "size", varint(size))
			}
			return nil
		}
		for _, img := range g.images {
			var parent *layer
			for _, l := range img.layers {
				seq += 2
				l.metaName = fmt.Sprintf("%s/%d/%s", Namespace, seq, l.chainID)
				var pn string
				var pid uint64
				if parent != nil {
					pn, pid = parent.metaName, parent.storageID
				}
				if err := put(l.storageID, l.metaName, pn, pid, kindCommitted, l.created, l.inodes, l.size); err != nil {
					return err
				}
				parent = l
			}
		}
		for _, c := range g.containers {
			if !c.hasSnapshot {
				continue
			}
			seq++
			c.metaName = fmt.Sprintf("%s/%d/%s", Namespace, seq, c.id)
			var pn string
			var pid uint64
			if top := g.topLayer(c); top != nil {
				pn, pid = top.metaName, top.storageID
			}
			if err := put(c.storageID, c.metaName, pn, pid, kindActive, c.created.Add(-50*time.Millisecond), 0, 0); err != nil {
				return err
			}
		}
		g.metaSeq = seq
		return nil
	})
	return closeSynced(db, err)
}

func (g *generator) topLayer(c *container) *layer {
	if c.img < 0 {
		return nil
	}
	ls := g.images[c.img].layers
	return ls[len(ls)-1]
}

// writeMetaDB writes containerd's metadata store meta.db.
func (g *generator) writeMetaDB() error {
	db, err := openNew(g.path(MetaDBPath))
	if err != nil {
		return err
	}
	err = db.Update(func(tx *bolt.Tx) error {
		// In containerd's order: containers, content/{blob,ingests},
		// images, leases, snapshots/<snapshotter>.
		ns := "v1/" + Namespace
		bs, err := createBuckets(tx, "v1", ns, ns+"/containers", ns+"/content", ns+"/content/blob", ns+"/content/ingests",
			ns+"/images", ns+"/leases", ns+"/snapshots", ns+"/snapshots/"+Snapshotter)
		if err != nil {
			return err
		}
		if err := bs["v1"].Put([]byte("version"), varint(3)); err != nil {
			return err
		}
		cb, blobs, ib, ob := bs[ns+"/containers"], bs[ns+"/content/blob"], bs[ns+"/images"], bs[ns+"/snapshots/"+Snapshotter]
		if err := ob.SetSequence(g.metaSeq); err != nil {
			return err
		}
		if err := g.writeMetaImages(ib, blobs); err != nil {
			return err
		}
		if err := g.writeMetaSnapshots(ob); err != nil {
			return err
		}
		for _, c := range g.containers {
			if err := g.writeMetaContainer(cb, c); err != nil {
				return err
			}
		}
		return nil
	})
	return closeSynced(db, err)
}

func (g *generator) writeMetaImages(ib, blobs *bolt.Bucket) error {
	putBlob := func(digest string, size int64, created time.Time, labels map[string]string) error {
		b, err := blobs.CreateBucket([]byte(digest))
		if err != nil {
			return err
		}
		if err := putTimes(b, created, created); err != nil {
			return err
		}
		if err := putAll(b, "size", varint(size)); err != nil {
			return err
		}
		return putLabels(b, "labels", labels)
	}
	for _, img := range g.images {
		top := img.layers[len(img.layers)-1]
		manifestLabels := map[string]string{"containerd.io/gc.ref.content.config": img.configDigest}
		for j, l := range img.layers {
			manifestLabels[fmt.Sprintf("containerd.io/gc.ref.content.l.%d", j)] = l.blobDigest
			if err := putBlob(l.blobDigest, l.blobSize, l.created,
				map[string]string{"containerd.io/uncompressed": l.diffID}); err != nil {
				return err
			}
		}
		if err := putBlob(img.manifestDigest, int64(len(img.manifest)), img.created, manifestLabels); err != nil {
			return err
		}
		if err := putBlob(img.configDigest, int64(len(img.config)), img.created,
			map[string]string{"containerd.io/gc.ref.snapshot." + Snapshotter: top.chainID}); err != nil {
			return err
		}
		for _, name := range []string{img.name, img.configDigest} {
			b, err := ib.CreateBucket([]byte(name))
			if err != nil {
				return err
			}
			if err := putTimes(b, img.created, img.created); err != nil {
				return err
			}
			if err := putLabels(b, "labels", map[string]string{"io.cri-containerd.image": "managed"}); err != nil {
				return err
			}
			tb, err := b.CreateBucket([]byte("target"))
			if err != nil {
				return err
			}
			if err := putAll(tb, "digest", img.manifestDigest, "mediatype", mediaTypeManifest,
				"size", varint(int64(len(img.manifest)))); err != nil {
				return err
			}
		}
	}
	return nil
}

func (g *generator) writeMetaSnapshots(ob *bolt.Bucket) error {
	put := func(key, name, parentKey string, created time.Time) error {
		b, err := ob.CreateBucket([]byte(key))
		if err != nil {
			return err
		}
		if err := putAll(b, "name", name); err != nil {
			return err
		}
		if parentKey != "" {
			if err := putAll(b, "parent", parentKey); err != nil {
				return err
			}
			pb := ob.Bucket([]byte(parentKey))
			if pb == nil {
				return fmt.Errorf("gennode: parent snapshot %s missing", parentKey)
			}
			children, err := pb.CreateBucketIfNotExists([]byte("children"))
			if err != nil {
				return err
			}
			if err := children.Put([]byte(key), []byte{}); err != nil {
				return err
			}
		}
		return putTimes(b, created, created)
	}
	for _, img := range g.images {
		parent := ""
		for _, l := range img.layers {
			if err := put(l.chainID, l.metaName, parent, l.created); err != nil {
				return err
			}
			parent = l.chainID
		}
	}
	for _, c := range g.containers {
		if !c.hasSnapshot {
			continue
		}
		parent := ""
		if top := g.topLayer(c); top != nil {
			parent = top.chainID
		}
		if err := put(c.id, c.metaName, parent, c.created.Add(-40*time.Millisecond)); err != nil {
			return err
		}
	}
	return nil
}

func (g *generator) writeMetaContainer(cb *bolt.Bucket, c *container) error {
	b, err := cb.CreateBucket([]byte(c.id))
	if err != nil {
		return err
	}
	if err := putTimes(b, c.created, c.created.Add(20*time.Millisecond)); err != nil {
		return err
	}
	spec, err := marshalAny(specTypeURL, g.spec(c))
	if err != nil {
		return err
	}
	if err := putAll(b, "image", c.imageName, "snapshotKey", c.id, "snapshotter", Snapshotter, "spec", spec); err != nil {
		return err
	}
	rb, err := b.CreateBucket([]byte("runtime"))
	if err != nil {
		return err
	}
	opts, err := marshalAny(runcOptionsTypeURL, nil)
	if err != nil {
		return err
	}
	if err := putAll(rb, "name", runtimeName, "options", opts); err != nil {
		return err
	}
	labels := map[string]string{
		"io.kubernetes.pod.name":      c.podName,
		"io.kubernetes.pod.namespace": c.podNS,
		"io.kubernetes.pod.uid":       c.podUID,
	}
	extName, extType := criContainerExt, criContainerType
	if c.sandbox {
		labels["io.cri-containerd.kind"] = "sandbox"
		labels["app"] = c.podName[:9]
		extName, extType = criSandboxExt, criSandboxType
	} else {
		labels["io.cri-containerd.kind"] = "container"
		labels["io.kubernetes.container.name"] = c.ctrName
	}
	if err := putLabels(b, "labels", labels); err != nil {
		return err
	}
	ext, err := marshalAny(extType, g.criMetadata(c))
	if err != nil {
		return err
	}
	eb, err := b.CreateBucket([]byte("extensions"))
	if err != nil {
		return err
	}
	return eb.Put([]byte(extName), ext)
}

// Minimal but structurally faithful OCI runtime spec (field order and names
// as produced by containerd's CRI plugin).
type ociSpec struct {
	OCIVersion  string            `json:"ociVersion"`
	Process     ociProcess        `json:"process"`
	Root        ociRoot           `json:"root"`
	Hostname    string            `json:"hostname,omitempty"`
	Mounts      []ociMount        `json:"mounts"`
	Annotations map[string]string `json:"annotations"`
	Linux       ociLinux          `json:"linux"`
}

type ociProcess struct {
	User struct {
		UID            int   `json:"uid"`
		GID            int   `json:"gid"`
		AdditionalGids []int `json:"additionalGids"`
	} `json:"user"`
	Args         []string            `json:"args"`
	Env          []string            `json:"env"`
	Cwd          string              `json:"cwd"`
	Capabilities map[string][]string `json:"capabilities"`
	OOMScoreAdj  int                 `json:"oomScoreAdj"`
}

type ociRoot struct {
	Path     string `json:"path"`
	Readonly bool   `json:"readonly,omitempty"`
}

type ociMount struct {
	Destination string   `json:"destination"`
	Type        string   `json:"type"`
	Source      string   `json:"source"`
	Options     []string `json:"options"`
}

type ociLinux struct {
	CgroupsPath string            `json:"cgroupsPath"`
	Namespaces  []ociNamespace    `json:"namespaces"`
	Resources   map[string]any    `json:"resources"`
	Sysctl      map[string]string `json:"sysctl,omitempty"`
}

type ociNamespace struct {
	Type string `json:"type"`
	Path string `json:"path,omitempty"`
}

var defaultCaps = []string{
	"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD", "CAP_NET_RAW",
	"CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE",
	"CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE",
}

func (g *generator) spec(c *container) []byte {
	s := ociSpec{OCIVersion: "1.0.2-dev", Root: ociRoot{Path: "rootfs"}}
	s.Process.User.AdditionalGids = []int{0}
	s.Process.Cwd = "/"
	s.Process.Env = []string{
		"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
		"HOSTNAME=" + c.podName,
	}
	s.Process.Capabilities = map[string][]string{"bounding": defaultCaps, "effective": defaultCaps, "permitted": defaultCaps}
	s.Mounts = []ociMount{
		{"/proc", "proc", "proc", []string{"nosuid", "noexec", "nodev"}},
		{"/dev", "tmpfs", "tmpfs", []string{"nosuid", "strictatime", "mode=755", "size=65536k"}},
		{"/sys", "sysfs", "sysfs", []string{"nosuid", "noexec", "nodev", "ro"}},
	}
	sbDir := "/var/lib/containerd/io.containerd.grpc.v1.cri/sandboxes/" + c.sandboxID
	netns := "/var/run/netns/cni-" + uuidOf("gennode netns %s", c.sandboxID)
	s.Annotations = map[string]string{
		"io.kubernetes.cri.sandbox-id":        c.sandboxID,
		"io.kubernetes.cri.sandbox-name":      c.podName,
		"io.kubernetes.cri.sandbox-namespace": c.podNS,
		"io.kubernetes.cri.sandbox-uid":       c.podUID,
	}
	s.Linux.CgroupsPath = "/kubepods/besteffort/pod" + c.podUID + "/" + c.id
	s.Linux.Resources = map[string]any{
		"devices": []map[string]any{{"allow": false, "access": "rwm"}},
		"cpu":     map[string]any{"shares": 2},
	}
	if c.sandbox {
		s.Process.User.UID, s.Process.User.GID = 65535, 65535
		s.Process.User.AdditionalGids = []int{65535}
		s.Process.Args = []string{"/pause"}
		s.Root.Readonly = true
		s.Hostname = c.podName
		s.Annotations["io.kubernetes.cri.container-type"] = "sandbox"
		s.Annotations["io.kubernetes.cri.sandbox-log-directory"] = g.logDir(c)
		s.Mounts = append(s.Mounts, ociMount{"/etc/resolv.conf", "bind", sbDir + "/resolv.conf", []string{"rbind", "ro"}})
		s.Linux.Namespaces = []ociNamespace{{Type: "pid"}, {Type: "ipc"}, {Type: "uts"}, {Type: "mount"}, {Type: "network", Path: netns}}
	} else {
		s.Process.Args = []string{"/usr/local/bin/server", "--port=8080"}
		s.Annotations["io.kubernetes.cri.container-type"] = "container"
		s.Annotations["io.kubernetes.cri.container-name"] = c.ctrName
		s.Annotations["io.kubernetes.cri.image-name"] = c.imageName
		for _, f := range []string{"hostname", "hosts", "resolv.conf"} {
			s.Mounts = append(s.Mounts, ociMount{"/etc/" + f, "bind", sbDir + "/" + f, []string{"rbind", "rprivate", "rw"}})
		}
		s.Linux.Namespaces = []ociNamespace{{Type: "pid"}, {Type: "ipc", Path: "/proc/1/ns/ipc"},
			{Type: "uts", Path: "/proc/1/ns/uts"}, {Type: "mount"}, {Type: "network", Path: netns}}
	}
	return mustJSON(s)
}

func (g *generator) logDir(c *container) string {
	return "/var/log/pods/" + c.podNS + "_" + c.podName + "_" + c.podUID
}

// criMetadata returns the JSON stored in the CRI extension, shaped like
// containerd's pkg/cri/store/{container,sandbox}.Metadata (version "v1").
type criVersioned struct {
	Version  string
	Metadata any
}

func (g *generator) criMetadata(c *container) []byte {
	podMeta := map[string]any{"name": c.podName, "uid": c.podUID, "namespace": c.podNS}
	if c.sandbox {
		return mustJSON(criVersioned{
			Version: "v1",
			Metadata: map[string]any{
				"ID":   c.id,
				"Name": c.podName + "_" + c.podNS + "_" + c.podUID + "_0",
				"Config": map[string]any{
					"metadata":      podMeta,
					"hostname":      c.podName,
					"log_directory": g.logDir(c),
					"labels": map[string]string{
						"io.kubernetes.pod.name": c.podName, "io.kubernetes.pod.namespace": c.podNS,
						"io.kubernetes.pod.uid": c.podUID,
					},
					"linux": map[string]any{"cgroup_parent": "/kubepods/besteffort/pod" + c.podUID},
				},
				"NetNSPath":      "/var/run/netns/cni-" + uuidOf("gennode netns %s", c.id),
				"IP":             ipOf(c.id),
				"RuntimeHandler": "",
			},
		})
	}
	return mustJSON(criVersioned{
		Version: "v1",
		Metadata: map[string]any{
			"ID":        c.id,
			"Name":      fmt.Sprintf("%s_%s_%s_%s_%d", c.ctrName, c.podName, c.podNS, c.podUID, c.attempt),
			"SandboxID": c.sandboxID,
			"Config": map[string]any{
				"metadata": map[string]any{"name": c.ctrName, "attempt": c.attempt},
				"image":    map[string]any{"image": c.imageName},
				"labels": map[string]string{
					"io.kubernetes.container.name": c.ctrName, "io.kubernetes.pod.name": c.podName,
					"io.kubernetes.pod.namespace": c.podNS, "io.kubernetes.pod.uid": c.podUID,
				},
				"log_path": fmt.Sprintf("%s/%d.log", c.ctrName, c.attempt),
			},
			"ImageRef": g.imageRef(c),
			"LogPath":  fmt.Sprintf("%s/%s/%d.log", g.logDir(c), c.ctrName, c.attempt),
		},
	})
}

func (g *generator) imageRef(c *container) string {
	if c.img < 0 {
		return ""
	}
	return g.images[c.img].configDigest
}

func ipOf(id string) string {
	h := sha256.Sum256([]byte(id))
	return fmt.Sprintf("10.%d.%d.%d", 64+h[0]%64, h[1], 1+h[2]%254)
}
