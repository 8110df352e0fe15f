package image

import "strings"

// Verification is the verification of one image record: every layer's
// unpacked snapshot against the layer (its blob, or the tar-split record a
// runtime kept instead), and a checkpoint's blobs. Status is the worst of
// its parts.
type Verification struct {
	Runtime   string              `json:"runtime"`
	Namespace string              `json:"namespace"`
	Name      string              `json:"name"`
	Digest    string              `json:"digest"`
	Kind      string              `json:"kind"`
	Status    string              `json:"status"` // verified, tampered or unverifiable: the worst of its parts
	Layers    []LayerVerification `json:"layers"`
	Blobs     []BlobCheck         `json:"blobs,omitempty"` // a checkpoint's blobs
	Missing   []string            `json:"missing_blobs,omitempty"`
	Corrupt   []string            `json:"corrupt_blobs,omitempty"` // blobs whose content does not match their digest or size
	Problems  []string            `json:"problems,omitempty"`
	Error     string              `json:"error,omitempty"`
}

// LayerVerification is one layer of a Verification.
type LayerVerification struct {
	Index       int          `json:"index"`
	Digest      string       `json:"digest"`
	DiffID      string       `json:"diff_id"`
	ChainID     string       `json:"chain_id"`
	SnapshotDir string       `json:"snapshot_dir"`
	Status      string       `json:"status"`
	Reason      string       `json:"reason,omitempty"`
	Differences []Difference `json:"differences"`
	Omitted     int          `json:"differences_omitted,omitempty"`
	Errors      []string     `json:"errors,omitempty"`
	Entries     int          `json:"entries"`
}

// LayerVerificationOf fills a LayerVerification from a LayerResult.
func LayerVerificationOf(index int, digest, diffID, chainID, snapshotDir string, r *LayerResult) LayerVerification {
	v := LayerVerification{Index: index, Digest: digest, DiffID: diffID, ChainID: chainID, SnapshotDir: snapshotDir,
		Status: r.Status, Reason: r.Reason, Differences: []Difference{}, Omitted: r.DifferencesOmitted, Errors: r.Errors, Entries: r.Entries}
	if r.Differences != nil {
		v.Differences = r.Differences
	}
	return v
}

// Worse returns the worse of two statuses: tampered over unverifiable
// over verified.
func Worse(a, b string) string {
	rank := map[string]int{StatusVerified: 0, StatusUnverifiable: 1, StatusTampered: 2}
	if rank[b] > rank[a] {
		return b
	}
	return a
}

// MatchesRef says whether an image known by names and id (a config or
// manifest digest) is the one ref names: one of its names, or its id or a
// prefix of it (with or without "sha256:"). No refs match every image.
func MatchesRef(refs []string, names []string, id string) bool {
	if len(refs) == 0 {
		return true
	}
	for _, ref := range refs {
		if strings.HasPrefix(id, ref) || strings.HasPrefix(strings.TrimPrefix(id, "sha256:"), strings.TrimPrefix(ref, "sha256:")) {
			return true
		}
		for _, n := range names {
			if n == ref {
				return true
			}
		}
	}
	return false
}
