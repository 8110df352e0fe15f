package ptr

import "testing"

func TestValue(t *testing.T) {
	type options struct {
		Name  string
		Limit int
	}
	if got := Value[options](nil); got != (options{}) {
		t.Fatalf("Value(nil) = %+v, want the zero value", got)
	}
	in := &options{Name: "ext4", Limit: 32 << 20}
	got := Value(in)
	if got != *in {
		t.Fatalf("Value(%+v) = %+v", *in, got)
	}
	got.Limit = 1
	if in.Limit != 32<<20 {
		t.Fatalf("Value returned an alias: the caller's options changed to %d", in.Limit)
	}
}
