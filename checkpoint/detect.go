package checkpoint

import "github.com/deadnode/deadnode/evidence"

// Holds reports whether src holds a checkpoint — CRIU images (an
// inventory.img with CRIU's magic beside a pstree.img) at its root, in
// "checkpoint/" or in a top-level directory — rather than, say, a node's
// filesystem. Callers use it to tell a user who gave one for the other.
func Holds(src evidence.Source) bool {
	_, err := detectImagesDir(src, "")
	return err == nil
}
