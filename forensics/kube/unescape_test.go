package kube

import (
	"encoding/json"
	"testing"
)

// Both JSON string decoders of the log reader share their escapes: the
// exact one agrees with encoding/json, the one for cut lines decodes what
// it can and marks a bad \u escape with U+FFFD.
func TestUnescapeJSON(t *testing.T) {
	for _, body := range []string{`plain`, `a\"b\\c\/d`, `\n\t\r\b\f`, `\u00e9\u4e2d`, `\ud83d\ude00 ok`} {
		got, ok := unescapeJSON([]byte(body))
		var want string
		if err := json.Unmarshal([]byte(`"`+body+`"`), &want); err != nil {
			t.Fatal(err)
		}
		if !ok || got != want {
			t.Errorf("unescapeJSON(%s) = %q, %v; want %q", body, got, ok, want)
		}
		if p := unescapeJSONPrefix([]byte(body + `"rest`)); body != `\ud83d\ude00 ok` && p != want {
			t.Errorf("unescapeJSONPrefix(%s) = %q, want %q", body, p, want)
		}
	}
	for _, bad := range []string{`\x`, `\u12`, `\u12zz`, `\ud83d alone`, `end\`} {
		if got, ok := unescapeJSON([]byte(bad)); ok {
			t.Errorf("unescapeJSON(%s) = %q, accepted", bad, got)
		}
	}
	for body, want := range map[string]string{`ab\u00zzcd`: "ab\ufffdcd", `cut\u00`: "cut", `cut\`: "cut", `x\qy`: "xqy"} {
		if got := unescapeJSONPrefix([]byte(body)); got != want {
			t.Errorf("unescapeJSONPrefix(%s) = %q, want %q", body, got, want)
		}
	}
}
