// Package pathutil holds path helpers shared by the forensics readers
// (containerd, docker, storage). It reads the evidence only through
// evidence.Source and never writes to it.
package pathutil

import (
	"fmt"
	"strings"

	"github.com/deadnode/deadnode/evidence"
)

// Rebase finds a host-absolute path of the seized node inside the evidence.
// Collections are often made of a tree that was itself below some prefix
// (a chroot, a triage copy), so when the path does not exist as it is, its
// leading components are dropped one at a time until ok accepts what is
// left (resolved inside the evidence). It returns the resolved path (""
// when none) and a note saying where it was found when that is not where
// the host put it.
func Rebase(src evidence.Source, abs string, ok func(resolved string) bool) (string, string) {
	comps := strings.Split(strings.Trim(abs, "/"), "/")
	for i := range comps {
		r, err := evidence.Resolve(src, strings.Join(comps[i:], "/"), true)
		if err != nil || !ok(r) {
			continue
		}
		if i == 0 {
			return r, ""
		}
		return r, fmt.Sprintf(" (not in the evidence as it is; found at /%s)", r)
	}
	return "", ""
}
