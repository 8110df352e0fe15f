package forensics_test

import (
	"fmt"
	"io"

	"github.com/deadnode/deadnode/forensics"
)

// A container's root as its processes saw it: its layers with the files
// the runtime bound in. The layers hold an empty /etc/resolv.conf (runc's
// mount point); the container read the sandbox's.
func ExampleNode_MountedView() {
	node, err := forensics.OpenPath(sampleNode, nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer node.Close()
	c, err := node.FindContainer("shop/shop-frontend-7d9c8b6f5-x2k4q/app")
	if err != nil {
		fmt.Println(err)
		return
	}
	v, _, err := node.MountedView(c)
	if err != nil {
		fmt.Println(err)
		return
	}
	ents, err := v.ReadDirEntries("/etc")
	if err != nil {
		fmt.Println(err)
	}
	for _, e := range ents {
		if e.Origin != forensics.OriginLayer {
			fmt.Printf("%s %d bytes from %s\n", e.ContainerPath(), e.Stat.Size, e.Origin)
		}
	}
	f, err := v.OpenFile("/etc/hostname")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer f.Close()
	b, _ := io.ReadAll(io.NewSectionReader(f, 0, f.Size()))
	fmt.Printf("hostname %s\n", b)
	// Output:
	// /etc/hostname 30 bytes from runtime:hostname
	// /etc/hosts 49 bytes from runtime:hosts
	// /etc/resolv.conf 100 bytes from runtime:resolv.conf
	// hostname shop-frontend-7d9c8b6f5-x2k4q
}
