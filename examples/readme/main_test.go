package main

import (
	"bytes"
	"testing"
)

func TestREADMESnippet(t *testing.T) {
	var b bytes.Buffer
	if err := run(&b, "../../testdata/containerd-node/containerd-node.tar.gz"); err != nil {
		t.Fatal(err)
	}
	want := `default forge-default-cache container stopped
default forge-default-idle container created
k8s.io 4b324cab25486a33822d1672700ac0cdad1d9d183089b7126b778bc3343c4007 container running
k8s.io f617888dbd39d44a9b551aa1d2562a8e3b6a4ea8b8706a48c3d608d6c52f183c container exited
k8s.io 1cb04cd4472039e05df53c366c2fc24ab4159d4e8049a11dba7bd716fffe515d sandbox running
k8s.io 6b5e31bbf0ef256672a4b8c7bd59379ebee1b390723bab836bf8c514f0209721 sandbox running
`
	if b.String() != want {
		t.Errorf("got\n%s", b.String())
	}
}
