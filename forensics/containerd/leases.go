package containerd

import (
	"github.com/deadnode/deadnode/forensics/model"
	bolt "go.etcd.io/bbolt"
)

// readLeases reads a namespace's leases/<id> buckets and the resources
// each holds.
func (s *Store) readLeases(ns string, nb *bolt.Bucket, w where) {
	eachRecord(nb, bucketLeases, w, false, func(k []byte, b *bolt.Bucket, lw where) {
		l := model.Lease{Runtime: model.RuntimeContainerd, Namespace: ns, ID: string(k), Resources: []model.LeaseResource{}}
		l.CreatedAt, _, l.Labels = stamps(b, lw, &s.Warnings)
		keys := func(b *bolt.Bucket, typ string) {
			b.ForEach(func(id, _ []byte) error {
				l.Resources = append(l.Resources, model.LeaseResource{Type: typ, ID: string(id)})
				return nil
			})
		}
		if cb := b.Bucket([]byte(bucketContent)); cb != nil {
			keys(cb, "content")
		}
		if sb := b.Bucket([]byte(bucketSnapshots)); sb != nil {
			sb.ForEach(func(sn, _ []byte) error {
				if b2 := sb.Bucket(sn); b2 != nil {
					keys(b2, "snapshots/"+string(sn))
				}
				return nil
			})
		}
		if ib := b.Bucket([]byte(bucketIngests)); ib != nil {
			keys(ib, "ingests")
		}
		s.Leases = append(s.Leases, l)
	})
}
