package evidence

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"io"
	"testing"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
)

func tarOf(t *testing.T, files map[string]string, order []string) []byte {
	t.Helper()
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	for _, n := range order {
		if err := tw.WriteHeader(&tar.Header{Name: n, Mode: 0o644, Size: int64(len(files[n])), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		io.WriteString(tw, files[n])
	}
	tw.Close()
	return b.Bytes()
}

func TestTarStreamEveryCompression(t *testing.T) {
	files := map[string]string{"./etc/hostname": "node-a\n", "/var/x": "xx", "../escape": "no"}
	order := []string{"./etc/hostname", "/var/x", "../escape"}
	plain := tarOf(t, files, order)
	var gz, zs bytes.Buffer
	gw := gzip.NewWriter(&gz)
	gw.Write(plain)
	gw.Close()
	zw, _ := zstd.NewWriter(&zs)
	zw.Write(plain)
	zw.Close()
	for name, data := range map[string][]byte{"plain": plain, "gzip": gz.Bytes(), "zstd": zs.Bytes()} {
		var got []string
		var offs []int64
		for m, err := range TarStream(context.Background(), bytes.NewReader(data), &TarOptions{Label: name}) {
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			b, _ := io.ReadAll(m.Data)
			got = append(got, m.Name+"="+string(b))
			offs = append(offs, m.Offset)
		}
		want := []string{"etc/hostname=node-a\n", "var/x=xx", "=no"}
		if len(got) != 3 || got[0] != want[0] || got[1] != want[1] || got[2] != want[2] {
			t.Errorf("%s: %q", name, got)
		}
		// headers are 512-byte blocks: the second member starts after the
		// first's header and one data block.
		if offs[0] != 0 || offs[1] != 1024 || offs[2] != 2048 {
			t.Errorf("%s: offsets %v", name, offs)
		}
	}
}

func TestTarStreamDamagedAndBounded(t *testing.T) {
	plain := tarOf(t, map[string]string{"a": "1", "b": "2", "c": "3"}, []string{"a", "b", "c"})
	damaged := append([]byte{}, plain...)
	copy(damaged[1024:1024+100], bytes.Repeat([]byte{0xff}, 100)) // second header
	var n int
	var ferr *FormatError
	for _, err := range TarStream(context.Background(), bytes.NewReader(damaged), &TarOptions{Label: "x.tar"}) {
		if err != nil {
			if !errors.As(err, &ferr) || ferr.Offset != 1024 || ferr.File != "x.tar" {
				t.Fatalf("error %v", err)
			}
			break
		}
		n++
	}
	if n != 1 || ferr == nil {
		t.Fatalf("%d members before the damage, err %v", n, ferr)
	}
	n = 0
	var last error
	for _, err := range TarStream(context.Background(), bytes.NewReader(plain), &TarOptions{MaxMembers: 2}) {
		if err != nil {
			last = err
			break
		}
		n++
	}
	if n != 2 || last == nil {
		t.Fatalf("bound: %d members, %v", n, last)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	for _, err := range TarStream(ctx, bytes.NewReader(plain), nil) {
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("cancelled stream: %v", err)
		}
		break
	}
}
