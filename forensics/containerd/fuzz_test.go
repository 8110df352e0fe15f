package containerd

import (
	"testing"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
)

func anyBytes(url string, v []byte) []byte {
	b, _ := proto.Marshal(&anypb.Any{TypeUrl: url, Value: v})
	return b
}

// FuzzRecordDecoders feeds arbitrary bytes to every decoder of meta.db
// values: protobuf Any, the CRI metadata extension, runc options.
func FuzzRecordDecoders(f *testing.F) {
	f.Add(anyBytes("github.com/containerd/cri/pkg/store/container/Metadata", []byte(`{"Version":"v1","Metadata":{"ID":"x","SandboxID":"y","Config":{"metadata":{"name":"app","attempt":1}}}}`)))
	f.Add(anyBytes("containerd.runc.v1.Options", []byte("\x3a\x05/runc\x32\x04runc")))
	f.Add([]byte{0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f})
	f.Fuzz(func(t *testing.T, b []byte) {
		decodeAny(b)
		decodeCRIMetadata(b)
		runcOptions(b)
	})
}
