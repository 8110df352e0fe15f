package ondisk

import (
	"errors"
	"fmt"
	"testing"

	"github.com/deadnode/deadnode/evidence"
)

func TestObjectOffsets(t *testing.T) {
	var v map[string]any
	for _, tc := range []struct {
		in   string
		off  int64
		line string
	}{
		{`{"a":1,}`, 8, "/x.json: offset 8: what: invalid character '}' looking for beginning of object key string"},
		{`{"a":`, 5, "/x.json: offset 5: what: torn: the data ends inside the object"},
		{`{"a":1} {}`, 8, "/x.json: offset 8: what: trailing data"},
		{`{"a":"x"}`, -2, ""},
	} {
		err := Object([]byte(tc.in), &v, "empty")
		if tc.off == -2 {
			if err != nil {
				t.Errorf("%s: %v", tc.in, err)
			}
			continue
		}
		var oe *OffsetError
		if !errors.As(err, &oe) || oe.Offset != tc.off {
			t.Errorf("%s: %#v, want offset %d", tc.in, err, tc.off)
			continue
		}
		w := Warning("/x.json", "what", err)
		if w.File != "/x.json" || w.Offset != tc.off || w.String() != tc.line {
			t.Errorf("%s: warning %#v %q", tc.in, w, w.String())
		}
	}
	// An error without a place keeps offset -1; a FormatError keeps its own.
	if w := Warning("/x", "what", errors.New("boom")); w.Offset != -1 || w.String() != "/x: what: boom" {
		t.Errorf("%#v", w)
	}
	// A wrapped *OffsetError keeps its offset and the wrapper's words.
	wrapped := fmt.Errorf("record 2: %w", &OffsetError{Offset: 17, Err: errors.New("bad value")})
	if w := Warning("/x", "what", wrapped); w != (evidence.Warning{File: "/x", Offset: 17, Msg: "what: record 2: bad value"}) {
		t.Errorf("%#v", w)
	}
	fe := &evidence.FormatError{File: "/y", Offset: 3, Msg: "bad"}
	if w := Warning("/x", "what", fe); w.File != "/y" || w.Offset != 3 || w.Msg != "bad" {
		t.Errorf("%#v", w)
	}
}

func TestChain(t *testing.T) {
	parent := map[string]string{"c": "b", "b": "a", "a": "", "x": "y", "y": "x"}
	next := func(id string) (string, bool) { p, ok := parent[id]; return p, ok }
	if ids, loop, missing := Chain("c", 10, next); len(ids) != 3 || loop != "" || missing != "" {
		t.Errorf("c: %v %q %q", ids, loop, missing)
	}
	if ids, loop, _ := Chain("x", 10, next); len(ids) != 2 || loop != "x" {
		t.Errorf("x: %v loop %q", ids, loop)
	}
	if ids, _, missing := Chain("z", 10, next); len(ids) != 0 || missing != "z" {
		t.Errorf("z: %v missing %q", ids, missing)
	}
	if ids, loop, _ := Chain("c", 2, next); len(ids) != 2 || loop != "a" {
		t.Errorf("bounded: %v loop %q", ids, loop)
	}
}

func TestK8sAttempt(t *testing.T) {
	for name, want := range map[string]uint32{
		"k8s_cart_cart-6b7c9d8f5-p4r2s_shop_8a2c4e6f-1b3d-4f5a-8c7e-9d0f1a2b3c4d_3": 3,
		"k8s_x_y_z_u_notanumber": 0,
		"web":                    0,
		"k8s_":                   0,
	} {
		if got := K8sAttempt(name); got != want {
			t.Errorf("%s: %d, want %d", name, got, want)
		}
	}
}
