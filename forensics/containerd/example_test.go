package containerd_test

import (
	"context"
	"fmt"
	"log"

	"github.com/deadnode/deadnode/evidence"
	"github.com/deadnode/deadnode/forensics/containerd"
)

// List the containers of the committed sample node: its containerd root
// is found from /etc/containerd/config.toml, and each container's state is
// what the evidence records.
func ExampleOpen() {
	a, err := evidence.OpenArchive(context.Background(), "../../testdata/containerd-node/containerd-node.tar.gz", nil)
	if err != nil {
		log.Fatal(err)
	}
	defer a.Close()
	node, err := evidence.Sub(a, "node") // the collection holds the node under node/
	if err != nil {
		log.Fatal(err)
	}
	s, err := containerd.Open(node, nil)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("root", s.Root, "state", s.StateDir)
	for _, c := range s.Containers {
		id, pod := c.ID, "-"
		if len(id) == 64 {
			id = id[:12]
		}
		if c.Pod != nil {
			pod = c.Pod.Namespace + "/" + c.Pod.Name
		}
		fmt.Printf("%-8s %-19s %-9s %-7s %s\n", c.Namespace, id, c.Kind, c.Status.State, pod)
	}
	// Output:
	// root /var/lib/containerd state /run/containerd
	// default  forge-default-cache container stopped -
	// default  forge-default-idle  container created -
	// k8s.io   1cb04cd44720        sandbox   running jobs/report-job-28374651-q7wzt
	// k8s.io   4b324cab2548        container running shop/shop-frontend-7d9c8b6f5-x2k4q
	// k8s.io   6b5e31bbf0ef        sandbox   running shop/shop-frontend-7d9c8b6f5-x2k4q
	// k8s.io   f617888dbd39        container exited  jobs/report-job-28374651-q7wzt
}
