// Command gendocker writes a synthetic Docker (overlay2) node tree for
// benchmarks.
//
//	gendocker -dir DIR -containers 500
package main

import (
	"flag"
	"fmt"
	"os"

	"github.com/deadnode/deadnode/internal/gennode"
)

func main() {
	dir := flag.String("dir", "", "node root to create (required; must not already hold a Docker root)")
	n := flag.Int("containers", 500, "number of containers (every 4th is a dockershim pod sandbox)")
	flag.Parse()
	if *dir == "" || flag.NArg() != 0 {
		flag.Usage()
		os.Exit(2)
	}
	if err := gennode.Docker(*dir, *n); err != nil {
		fmt.Fprintln(os.Stderr, "gendocker:", err)
		os.Exit(1)
	}
	l := gennode.PlanDocker(*n)
	fmt.Printf("%s: %d containers (%d sandboxes; %d running, %d exited, %d created), %d images, %d layers\n",
		*dir, l.Containers, l.Sandboxes, l.Running, l.Exited, l.Created, l.Images, l.Layers)
}
