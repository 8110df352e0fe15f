package containerd

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/deadnode/deadnode/evidence"
	"github.com/deadnode/deadnode/forensics/internal/boltdb"
	"github.com/deadnode/deadnode/forensics/model"
	bolt "go.etcd.io/bbolt"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
)

// where names a bucket of a database in warnings:
// "meta.db: offset N: v1/k8s.io/containers/x: …", N being the byte offset
// of the bucket's page in the file.
type where struct {
	db   *boltdb.DB
	path []string
}

func (w where) warnf(format string, args ...any) evidence.Warning {
	return evidence.Warning{File: w.db.File, Offset: w.db.Offset(w.path...), Msg: strings.Join(w.path, "/") + ": " + fmt.Sprintf(format, args...)}
}

func (w where) sub(name ...string) where {
	return where{w.db, append(w.path[:len(w.path):len(w.path)], name...)}
}

// damage is what the database's page check cut out of this bucket.
func (w where) damage() []evidence.Warning { return w.db.Damage(w.path...) }

// readTime decodes a time.Time.MarshalBinary value; a missing key is the
// zero time.
func readTime(b *bolt.Bucket, key string, w where, warn *[]evidence.Warning) time.Time {
	v := b.Get([]byte(key))
	if v == nil {
		return time.Time{}
	}
	var t time.Time
	if err := t.UnmarshalBinary(v); err != nil {
		*warn = append(*warn, w.warnf("%s: bad timestamp %x: %v", key, v, err))
		return time.Time{}
	}
	return t.UTC()
}

// stamps reads what most records of meta.db have: their creation and
// update times and their labels.
func stamps(b *bolt.Bucket, w where, warn *[]evidence.Warning) (created, updated model.Time, labels map[string]string) {
	created = model.T(readTime(b, keyCreatedAt, w, warn))
	updated = model.T(readTime(b, keyUpdatedAt, w, warn))
	return created, updated, readLabels(b, bucketLabels, w, warn)
}

// readVarint decodes a binary.PutVarint value.
func readVarint(b *bolt.Bucket, key string, w where, warn *[]evidence.Warning) int64 {
	v := b.Get([]byte(key))
	if v == nil {
		return 0
	}
	n, k := binary.Varint(v)
	if k <= 0 {
		*warn = append(*warn, w.warnf("%s: bad varint %x", key, v))
		return 0
	}
	return n
}

func readUvarint(b *bolt.Bucket, key string) (uint64, bool) {
	v := b.Get([]byte(key))
	if v == nil {
		return 0, false
	}
	n, k := binary.Uvarint(v)
	return n, k > 0
}

// MaxLabels bounds the labels read from one bucket.
const MaxLabels = 4096

func readLabels(b *bolt.Bucket, name string, w where, warn *[]evidence.Warning) map[string]string {
	lb := b.Bucket([]byte(name))
	out := map[string]string{}
	if lb == nil {
		return out
	}
	n := 0
	lb.ForEach(func(k, v []byte) error {
		if n++; n > MaxLabels {
			return errStop
		}
		if v != nil {
			out[string(k)] = string(v)
		}
		return nil
	})
	if n > MaxLabels {
		*warn = append(*warn, w.warnf("%s: more than %d entries, the rest ignored", name, MaxLabels))
	}
	return out
}

type stopErr struct{}

func (stopErr) Error() string { return "stop" }

var errStop error = stopErr{}

// decodeAny decodes a protobuf Any.
func decodeAny(v []byte) (string, []byte, error) {
	var a anypb.Any
	if err := proto.Unmarshal(v, &a); err != nil {
		return "", nil, err
	}
	return a.TypeUrl, a.Value, nil
}

// runcOptions reads the fields we use of containerd.runc.v1.Options
// (binary_name = 6, root = 7) without depending on its generated type.
func runcOptions(v []byte) (binaryName, root string) {
	for len(v) > 0 {
		num, typ, n := protowire.ConsumeTag(v)
		if n < 0 {
			return
		}
		v = v[n:]
		if typ == protowire.BytesType {
			s, m := protowire.ConsumeBytes(v)
			if m < 0 {
				return
			}
			switch num {
			case 6:
				binaryName = string(s)
			case 7:
				root = string(s)
			}
			v = v[m:]
			continue
		}
		m := protowire.ConsumeFieldValue(num, typ, v)
		if m < 0 {
			return
		}
		v = v[m:]
	}
	return
}

// criMetadata is what the CRI plugin stores in the
// io.cri-containerd.container.metadata / sandbox.metadata extensions.
type criMetadata struct {
	Version  string `json:"Version"`
	Metadata struct {
		ID        string `json:"ID"`
		Name      string `json:"Name"`
		SandboxID string `json:"SandboxID"`
		Config    struct {
			Metadata struct {
				Name      string `json:"name"`
				UID       string `json:"uid"`
				Namespace string `json:"namespace"`
				Attempt   uint32 `json:"attempt"`
			} `json:"metadata"`
			Image struct {
				Image string `json:"image"`
			} `json:"image"`
			Labels       map[string]string `json:"labels"`
			Annotations  map[string]string `json:"annotations"`
			LogPath      string            `json:"log_path"`
			LogDirectory string            `json:"log_directory"`
			Linux        struct {
				CgroupParent    string `json:"cgroup_parent"`
				SecurityContext struct {
					Privileged bool `json:"privileged"`
				} `json:"security_context"`
			} `json:"linux"`
		} `json:"Config"`
		ImageRef       string `json:"ImageRef"`
		LogPath        string `json:"LogPath"`
		IP             string `json:"IP"`
		RuntimeHandler string `json:"RuntimeHandler"`
	} `json:"Metadata"`
}

func decodeCRIMetadata(v []byte) (*criMetadata, error) {
	_, val, err := decodeAny(v)
	if err != nil {
		return nil, fmt.Errorf("not a protobuf Any: %w", err)
	}
	var m criMetadata
	if err := json.Unmarshal(val, &m); err != nil {
		return nil, fmt.Errorf("CRI metadata JSON: %w", err)
	}
	return &m, nil
}

var digestRE = regexp.MustCompile(`^(sha256:[a-f0-9]{64}|sha384:[a-f0-9]{96}|sha512:[a-f0-9]{128})$`)

// validDigest says whether d is safe to turn into a blob path.
func validDigest(d string) bool { return digestRE.MatchString(d) }
