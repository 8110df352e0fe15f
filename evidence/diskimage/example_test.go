package diskimage_test

import (
	"fmt"
	"io"

	"github.com/deadnode/deadnode/evidence/diskimage"
)

// ExampleOpen opens a small GPT disk (testdata/make-example.sh) whose root
// filesystem's fstab mounts a second filesystem on /var/lib/containerd,
// and reads through the assembled namespace.
func ExampleOpen() {
	im, err := diskimage.Open("testdata/example.raw", nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer im.Close()
	fmt.Println(im.Kind(), im.Layout.Table, "root:", im.Root.Volume)
	for _, n := range im.Notes {
		fmt.Println("note:", n)
	}
	f, err := im.Open("var/lib/containerd/README")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer f.Close()
	b, _ := io.ReadAll(io.NewSectionReader(f, 0, f.Size()))
	fmt.Printf("%s", b)
	// Output:
	// disk:raw gpt root: p1
	// note: root filesystem: p1 ext4 UUID d15ce001-0000-4000-8000-000000000001 (label root): it holds /etc and /var/lib/containerd
	// note: /var/lib/containerd from p2 ext4 UUID d15ce002-0000-4000-8000-000000000002 (/etc/fstab line 2)
	// containerd state lives here
}

// ExampleList lists what a disk image holds, as `deadnode disk ls` does.
func ExampleList() {
	l, err := diskimage.List("testdata/example.raw", nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, f := range l.Filesystems {
		fmt.Println(f.Volume, f.Type, f.Label, f.MountPoint)
	}
	for _, m := range l.Mounts {
		fmt.Println(m.MountPoint, m.Source, m.Origin, m.Mounted)
	}
	// Output:
	// p1 ext4 root /
	// p2 ext4 ctrdata /var/lib/containerd
	// / UUID=d15ce001-0000-4000-8000-000000000001 picked; /etc/fstab line 1 true
	// /var/lib/containerd LABEL=ctrdata /etc/fstab line 2 true
}
