package gennode

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
)

func openRO(t *testing.T, path string) *bolt.DB {
	t.Helper()
	db, err := bolt.Open(path, 0o444, &bolt.Options{ReadOnly: true, Timeout: time.Second})
	if err != nil {
		t.Fatalf("open %s: %v", path, err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func bucket(tx *bolt.Tx, path ...string) *bolt.Bucket {
	b := tx.Bucket([]byte(path[0]))
	for _, p := range path[1:] {
		if b == nil {
			return nil
		}
		b = b.Bucket([]byte(p))
	}
	return b
}

// counts returns the number of sub-buckets and plain keys directly in b.
func counts(b *bolt.Bucket) (buckets, keys int) {
	b.ForEach(func(k, v []byte) error {
		if v == nil {
			buckets++
		} else {
			keys++
		}
		return nil
	})
	return
}

func TestPlan(t *testing.T) {
	l := PlanContainerd(10, 30)
	want := Layout{Containers: 10, Sandboxes: 3, Active: 10, Committed: 20, Images: 7,
		ImageRecords: 14, Blobs: 34, Parents: 23}
	if l != want {
		t.Fatalf("PlanContainerd(10, 30) = %+v, want %+v", l, want)
	}
}

func TestContainerd(t *testing.T) {
	dir := t.TempDir()
	if err := Containerd(dir, 10, 30); err != nil {
		t.Fatal(err)
	}
	if err := Containerd(dir, 10, 30); err == nil {
		t.Fatal("second Containerd into the same dir succeeded; want refusal to overwrite")
	}

	// --- overlayfs metadata.db (snapshots/storage schema) ---
	type storageSnap struct {
		id     uint64
		kind   byte
		parent string
	}
	storage := map[string]storageSnap{}
	odb := openRO(t, filepath.Join(dir, OverlayDBPath))
	err := odb.View(func(tx *bolt.Tx) error {
		if n, k := counts(tx.Bucket([]byte("v1"))); n != 2 || k != 0 {
			t.Errorf("metadata.db v1: %d buckets %d keys, want 2/0", n, k)
		}
		sb := bucket(tx, "v1", "snapshots")
		if n, k := counts(sb); n != 30 || k != 0 {
			t.Errorf("metadata.db v1/snapshots: %d buckets %d keys, want 30/0", n, k)
		}
		if seq := sb.Sequence(); seq != 30 {
			t.Errorf("v1/snapshots sequence = %d, want 30", seq)
		}
		sb.ForEach(func(k, _ []byte) error {
			b := sb.Bucket(k)
			id, n := binary.Uvarint(b.Get([]byte("id")))
			if n <= 0 {
				t.Errorf("%s: bad id %x", k, b.Get([]byte("id")))
			}
			s := storageSnap{id: id, kind: b.Get([]byte("kind"))[0], parent: string(b.Get([]byte("parent")))}
			if s.kind == kindCommitted {
				if inodes, _ := binary.Varint(b.Get([]byte("inodes"))); inodes <= 0 {
					t.Errorf("%s: committed snapshot inodes = %d", k, inodes)
				}
			}
			var ts time.Time
			if err := ts.UnmarshalBinary(b.Get([]byte("createdat"))); err != nil || ts.Before(baseTime) {
				t.Errorf("%s: createdat %v %v", k, ts, err)
			}
			storage[string(k)] = s
			return nil
		})
		pb := bucket(tx, "v1", "parents")
		if n, k := counts(pb); n != 0 || k != 23 {
			t.Errorf("metadata.db v1/parents: %d buckets %d keys, want 0/23", n, k)
		}
		return pb.ForEach(func(k, v []byte) error {
			pid, n := binary.Uvarint(k)
			if n <= 0 || k[n] != 0 {
				t.Errorf("bad parent key %x", k)
				return nil
			}
			cid, _ := binary.Uvarint(k[n+1:])
			child, ok := storage[string(v)]
			if !ok || child.id != cid || storage[child.parent].id != pid {
				t.Errorf("parents %x -> %q inconsistent with snapshots bucket", k, v)
			}
			return nil
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	ids := map[uint64]bool{}
	kinds := map[byte]int{}
	for name, s := range storage {
		ids[s.id] = true
		kinds[s.kind]++
		for _, sub := range []string{"fs", "work"} {
			p := filepath.Join(dir, OverlayRoot, "snapshots", strconv.FormatUint(s.id, 10), sub)
			if fi, err := os.Stat(p); err != nil || !fi.IsDir() {
				t.Errorf("%s: missing dir %s: %v", name, p, err)
			}
		}
	}
	if len(ids) != 30 || !ids[1] || !ids[30] {
		t.Errorf("storage ids not exactly 1..30: %v", ids)
	}
	if kinds[kindActive] != 10 || kinds[kindCommitted] != 20 {
		t.Errorf("kinds = %v, want 10 active / 20 committed", kinds)
	}
	if ents, err := os.ReadDir(filepath.Join(dir, OverlayRoot, "snapshots")); err != nil || len(ents) != 30 {
		t.Errorf("snapshot dirs = %d (%v), want 30", len(ents), err)
	}

	// --- meta.db (metadata schema v1, dbversion 3) ---
	mdb := openRO(t, filepath.Join(dir, MetaDBPath))
	err = mdb.View(func(tx *bolt.Tx) error {
		if n, k := counts(tx.Bucket([]byte("v1"))); n != 1 || k != 1 {
			t.Errorf("meta.db v1: %d buckets %d keys, want 1 namespace + version", n, k)
		}
		if v, _ := binary.Varint(bucket(tx, "v1").Get([]byte("version"))); v != 3 {
			t.Errorf("dbversion = %d, want 3", v)
		}
		for _, c := range []struct {
			path          []string
			buckets, keys int
		}{
			{[]string{"v1", Namespace}, 5, 0},
			{[]string{"v1", Namespace, "containers"}, 10, 0},
			{[]string{"v1", Namespace, "content", "blob"}, 34, 0},
			{[]string{"v1", Namespace, "content", "ingests"}, 0, 0},
			{[]string{"v1", Namespace, "images"}, 14, 0},
			{[]string{"v1", Namespace, "leases"}, 0, 0},
			{[]string{"v1", Namespace, "snapshots"}, 1, 0},
			{[]string{"v1", Namespace, "snapshots", Snapshotter}, 30, 0},
		} {
			b := bucket(tx, c.path...)
			if b == nil {
				t.Errorf("missing bucket %s", strings.Join(c.path, "/"))
				continue
			}
			if n, k := counts(b); n != c.buckets || k != c.keys {
				t.Errorf("%s: %d buckets %d keys, want %d/%d", strings.Join(c.path, "/"), n, k, c.buckets, c.keys)
			}
		}

		snaps := bucket(tx, "v1", Namespace, "snapshots", Snapshotter)
		// Committed layers consume two sequence numbers (extract + commit).
		if seq := snaps.Sequence(); seq != 2*20+10 {
			t.Errorf("meta.db snapshotter sequence = %d, want 50", seq)
		}
		children := 0
		snaps.ForEach(func(k, _ []byte) error {
			b := snaps.Bucket(k)
			name := string(b.Get([]byte("name")))
			st, ok := storage[name]
			if !ok {
				t.Errorf("meta.db snapshot %s name %q not in metadata.db", k, name)
				return nil
			}
			if p := b.Get([]byte("parent")); p != nil {
				pname := string(snaps.Bucket(p).Get([]byte("name")))
				if st.parent != pname {
					t.Errorf("%s: meta parent %q (%q) != storage parent %q", k, p, pname, st.parent)
				}
			}
			if cb := b.Bucket([]byte("children")); cb != nil {
				_, n := counts(cb)
				children += n
			}
			return nil
		})
		if children != 23 {
			t.Errorf("children entries = %d, want 23", children)
		}

		kinds := map[string]int{}
		cb := bucket(tx, "v1", Namespace, "containers")
		cb.ForEach(func(k, _ []byte) error {
			b := cb.Bucket(k)
			labels := b.Bucket([]byte("labels"))
			kind := string(labels.Get([]byte("io.cri-containerd.kind")))
			kinds[kind]++
			for _, l := range []string{"io.kubernetes.pod.name", "io.kubernetes.pod.namespace", "io.kubernetes.pod.uid"} {
				if len(labels.Get([]byte(l))) == 0 {
					t.Errorf("%s: missing label %s", k, l)
				}
			}
			if got := string(b.Bucket([]byte("runtime")).Get([]byte("name"))); got != runtimeName {
				t.Errorf("%s: runtime %q", k, got)
			}
			key := b.Get([]byte("snapshotKey"))
			if !bytes.Equal(key, k) || snaps.Bucket(key) == nil || string(b.Get([]byte("snapshotter"))) != Snapshotter {
				t.Errorf("%s: snapshotKey %q has no overlayfs snapshot", k, key)
			}
			var spec anypb.Any
			if err := proto.Unmarshal(b.Get([]byte("spec")), &spec); err != nil || spec.TypeUrl != specTypeURL {
				t.Errorf("%s: spec Any %v %q", k, err, spec.TypeUrl)
			}
			var s struct {
				Hostname string
				Linux    struct{ CgroupsPath string }
			}
			if err := json.Unmarshal(spec.Value, &s); err != nil || !strings.HasSuffix(s.Linux.CgroupsPath, "/"+string(k)) {
				t.Errorf("%s: spec JSON %v cgroupsPath %q", k, err, s.Linux.CgroupsPath)
			}
			ext, extType := criContainerExt, criContainerType
			if kind == "sandbox" {
				ext, extType = criSandboxExt, criSandboxType
			} else if len(labels.Get([]byte("io.kubernetes.container.name"))) == 0 {
				t.Errorf("%s: container without io.kubernetes.container.name", k)
			}
			var a anypb.Any
			if err := proto.Unmarshal(b.Bucket([]byte("extensions")).Get([]byte(ext)), &a); err != nil || a.TypeUrl != extType {
				t.Errorf("%s: extension %s: %v %q", k, ext, err, a.TypeUrl)
			}
			var md struct {
				Version  string
				Metadata struct{ ID string }
			}
			if err := json.Unmarshal(a.Value, &md); err != nil || md.Version != "v1" || md.Metadata.ID != string(k) {
				t.Errorf("%s: extension JSON %v %+v", k, err, md)
			}
			img := bucket(tx, "v1", Namespace, "images", string(b.Get([]byte("image"))))
			if img == nil {
				t.Errorf("%s: image %q not in images bucket", k, b.Get([]byte("image")))
			} else {
				digest := string(img.Bucket([]byte("target")).Get([]byte("digest")))
				blob, err := os.ReadFile(filepath.Join(dir, ContentRoot, "blobs", "sha256", strings.TrimPrefix(digest, "sha256:")))
				if err != nil || digestOf(blob) != digest {
					t.Errorf("%s: manifest blob %s: %v", k, digest, err)
				}
			}
			return nil
		})
		if kinds["sandbox"] != 3 || kinds["container"] != 7 {
			t.Errorf("container kinds = %v, want 3 sandbox / 7 container", kinds)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestContainerdFewSnapshots(t *testing.T) {
	for _, tc := range []struct{ containers, snapshots int }{{0, 0}, {5, 2}, {4, 4}, {3, 9}} {
		dir := t.TempDir()
		if err := Containerd(dir, tc.containers, tc.snapshots); err != nil {
			t.Fatalf("%+v: %v", tc, err)
		}
		l := PlanContainerd(tc.containers, tc.snapshots)
		mdb := openRO(t, filepath.Join(dir, MetaDBPath))
		mdb.View(func(tx *bolt.Tx) error {
			if n, _ := counts(bucket(tx, "v1", Namespace, "containers")); n != tc.containers {
				t.Errorf("%+v: %d containers", tc, n)
			}
			if n, _ := counts(bucket(tx, "v1", Namespace, "snapshots", Snapshotter)); n != tc.snapshots {
				t.Errorf("%+v: %d meta snapshots", tc, n)
			}
			if n, _ := counts(bucket(tx, "v1", Namespace, "images")); n != l.ImageRecords {
				t.Errorf("%+v: %d images, want %d", tc, n, l.ImageRecords)
			}
			return nil
		})
		odb := openRO(t, filepath.Join(dir, OverlayDBPath))
		odb.View(func(tx *bolt.Tx) error {
			if n, _ := counts(bucket(tx, "v1", "snapshots")); n != tc.snapshots {
				t.Errorf("%+v: %d storage snapshots", tc, n)
			}
			if _, k := counts(bucket(tx, "v1", "parents")); k != l.Parents {
				t.Errorf("%+v: %d parents, want %d", tc, k, l.Parents)
			}
			return nil
		})
	}
}
