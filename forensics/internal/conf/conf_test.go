package conf

import (
	"reflect"
	"slices"
	"strings"
	"testing"
)

// A kubeadm drop-in and a planted service, as systemd reads them: keys and
// values trimmed, a continuation's backslash turned into a space with the
// next line kept as written, comment lines inside a continuation skipped,
// CRLF endings, sections tracked.
func TestParseUnit(t *testing.T) {
	unit := "# /etc/systemd/system/kubelet.service.d/10-kubeadm.conf\r\n" +
		"[Service]\r\n" +
		"Environment=\"KUBELET_KUBECONFIG_ARGS=--bootstrap-kubeconfig=/etc/kubernetes/bootstrap-kubelet.conf --kubeconfig=/etc/kubernetes/kubelet.conf\"\r\n" +
		"ExecStart=\r\n" +
		"ExecStart=/usr/bin/kubelet $KUBELET_KUBECONFIG_ARGS \\\n" +
		"# a comment inside the continuation\n" +
		"  --anonymous-auth=true\t \n" +
		"  ; another section-less comment\n" +
		"[Install]\n" +
		" WantedBy = multi-user.target \n" +
		"not an assignment\n"
	got, long := ParseUnit([]byte(unit), 4096)
	want := []Directive{
		{Section: "Service", Key: "Environment", Value: `"KUBELET_KUBECONFIG_ARGS=--bootstrap-kubeconfig=/etc/kubernetes/bootstrap-kubelet.conf --kubeconfig=/etc/kubernetes/kubelet.conf"`, Line: 3},
		{Section: "Service", Key: "ExecStart", Value: "", Line: 4},
		{Section: "Service", Key: "ExecStart", Value: "/usr/bin/kubelet $KUBELET_KUBECONFIG_ARGS    --anonymous-auth=true", Line: 5},
		{Section: "Install", Key: "WantedBy", Value: "multi-user.target", Line: 10},
	}
	if long || !reflect.DeepEqual(got, want) {
		t.Errorf("ParseUnit = %#v, long %v\nwant %#v", got, long, want)
	}
}

// Bounds: a line past maxLine is cut and said to be long; a continuation
// past MaxUnitValue stops growing; past MaxDirectives the rest is left.
func TestParseUnitBounds(t *testing.T) {
	d, long := ParseUnit([]byte("[Service]\nExecStart=/bin/"+strings.Repeat("a", 100)+"\n"), 32)
	if !long || len(d) != 1 || d[0].Value != "/bin/"+strings.Repeat("a", 32-len("ExecStart=/bin/")) {
		t.Errorf("cut line: %#v long %v", d, long)
	}
	big := "[Service]\nExecStart=/bin/x \\\n" + strings.Repeat(strings.Repeat("b", 1000)+" \\\n", 2000) + "end\n"
	d, long = ParseUnit([]byte(big), 4096)
	if !long || len(d) != 1 || len(d[0].Value) > MaxUnitValue {
		t.Errorf("long continuation: %d directives, %d bytes, long %v", len(d), len(d[0].Value), long)
	}
	d, long = ParseUnit([]byte(strings.Repeat("A=1\n", MaxDirectives+10)), 64)
	if !long || len(d) != MaxDirectives {
		t.Errorf("many directives: %d, long %v", len(d), long)
	}
}

func TestLines(t *testing.T) {
	got := slices.Collect(Lines([]byte("one\r\n\ntoo long\nlast"), 4))
	want := []Line{{Num: 1, Text: "one"}, {Num: 2, Text: ""}, {Num: 3, Text: "too ", Long: true}, {Num: 4, Text: "last"}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Lines = %#v", got)
	}
	// A reader that stops early stops the split there.
	n := 0
	for l := range Lines([]byte(strings.Repeat("x\n", 1000)), 4) {
		if n++; l.Num == 3 {
			break
		}
	}
	if n != 3 {
		t.Errorf("Lines went on after break: %d lines", n)
	}
}

func FuzzParseUnit(f *testing.F) {
	f.Add([]byte("[Service]\nExecStart=/bin/a \\\n#c\n b\n"), 64)
	f.Add([]byte("[Unit\nA=\\"), 3)
	f.Fuzz(func(t *testing.T, b []byte, maxLine int) {
		if maxLine < 1 || maxLine > 1<<16 {
			return
		}
		ds, _ := ParseUnit(b, maxLine)
		if len(ds) > MaxDirectives {
			t.Fatalf("%d directives", len(ds))
		}
		for _, d := range ds {
			if d.Line < 1 || len(d.Value) > MaxUnitValue+maxLine || strings.ContainsAny(d.Key, "\n") {
				t.Fatalf("bad directive %#v", d)
			}
		}
	})
}

// A line ending in an escaped backslash does not go on, as systemd reads
// it: the ExecStart after it is a directive of its own, which the join
// hid.
func TestEscapedBackslashEndsTheLine(t *testing.T) {
	ds, _ := ParseUnit([]byte("[Service]\nExecStart=/bin/echo a\\\\\nExecStart=/tmp/evil\nExecStartPre=/bin/x \\\n  --flag\n"), 1<<16)
	var got []string
	for _, d := range ds {
		got = append(got, d.Key+"="+d.Value)
	}
	want := []string{`ExecStart=/bin/echo a\\`, "ExecStart=/tmp/evil", "ExecStartPre=/bin/x    --flag"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("%q, want %q", got, want)
	}
}
