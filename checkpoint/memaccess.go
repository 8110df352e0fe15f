package checkpoint

import "github.com/deadnode/deadnode/evidence"

// ImagesSource returns the evidence source the CRIU images are read from
// and the directory of the images inside it, so that package memory can
// follow the "parent" link of an incremental dump and open the shared
// memory pagemaps next to the images. The source stays owned by the
// Checkpoint.
func (cp *Checkpoint) ImagesSource() (evidence.Source, string) {
	if cp.imgs == nil {
		return nil, ""
	}
	return cp.imgs.src, cp.imgs.dir
}
