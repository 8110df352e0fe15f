// Command gennode writes a synthetic containerd node tree for benchmarks.
//
//	gennode -dir DIR -containers 1000 -snapshots 3000
package main

import (
	"flag"
	"fmt"
	"os"

	"github.com/deadnode/deadnode/internal/gennode"
)

func main() {
	dir := flag.String("dir", "", "node root to create (required; must not already contain containerd DBs)")
	containers := flag.Int("containers", 1000, "number of containers (every 4th is a pod sandbox)")
	snapshots := flag.Int("snapshots", 3000, "number of overlayfs snapshots (active + committed)")
	flag.Parse()
	if *dir == "" || flag.NArg() != 0 {
		flag.Usage()
		os.Exit(2)
	}
	if err := gennode.Containerd(*dir, *containers, *snapshots); err != nil {
		fmt.Fprintln(os.Stderr, "gennode:", err)
		os.Exit(1)
	}
	l := gennode.PlanContainerd(*containers, *snapshots)
	fmt.Printf("%s: %d containers (%d sandboxes), %d snapshots (%d active, %d committed), %d images\n",
		*dir, l.Containers, l.Sandboxes, l.Active+l.Committed, l.Active, l.Committed, l.Images)
}
