package report

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/deadnode/deadnode/forensics"
	"github.com/deadnode/deadnode/internal/testfix"
)

const hostileName = `<img src=x onerror=alert(1)>`

// hostileCase is the triage of the sample node with a file named like
// markup (and one with terminal escapes) dropped into the attacked
// container's upper layer.
func hostileCase(t *testing.T) *forensics.Case {
	t.Helper()
	dir := testfix.Extract(t, testfix.NodeArchive(t))
	up := filepath.Join(dir, "node/var/lib/containerd/io.containerd.snapshotter.v1.overlayfs/snapshots/6/fs/tmp")
	if err := os.WriteFile(filepath.Join(up, hostileName), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(up, "esc\x1b]0;pwned\x07\x9b2J"), []byte("y"), 0o644); err != nil {
		t.Fatal(err)
	}
	n, err := forensics.OpenPath(context.Background(), dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	sum := "0000000000000000000000000000000000000000000000000000000000000000"
	cs, err := forensics.Triage(context.Background(), n, &forensics.TriageOptions{
		Evidence: forensics.EvidenceInfo{Path: dir, Kind: "tar.gz", Size: 5980243, SHA256: &sum},
		Now:      time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC),
	})
	if err != nil {
		t.Fatal(err)
	}
	return cs
}

func TestHTMLEscapesEvidence(t *testing.T) {
	cs := hostileCase(t)
	var b bytes.Buffer
	if err := HTML(&b, cs); err != nil {
		t.Fatal(err)
	}
	page := b.String()
	if strings.Contains(page, hostileName) {
		t.Error("the hostile name is in the page as markup")
	}
	if !strings.Contains(page, "&lt;img src=x onerror=alert(1)&gt;") {
		t.Error("the hostile name is not in the page as text")
	}
	if strings.ContainsAny(page, "\x1b\x07") || strings.Contains(page, "\u009b") {
		t.Error("a control character of the evidence reached the page")
	}
	if !strings.Contains(page, `esc\x1b]0;pwned\a\x9b2J`) {
		t.Error("the escaped name is not shown")
	}
	for _, bad := range []string{"http://", "https://", "//cdn", "src=\"http", "@import", "url("} {
		if strings.Contains(strings.ToLower(stripText(page)), bad) {
			t.Errorf("the page refers to an outside resource (%s)", bad)
		}
	}
}

// stripText keeps the markup of the page (tags and attributes), not the
// text, where evidence strings may legitimately contain "http://".
func stripText(page string) string {
	var out []string
	for _, m := range regexp.MustCompile(`<[^>]*>`).FindAllString(page, -1) {
		out = append(out, m)
	}
	return strings.Join(out, "\n")
}

// The report as a person sees it: rendered by headless Chromium (Debian's
// chromium package, installed by scripts/test.sh), with its script
// running under the page's CSP, no element made from evidence text, and no
// request leaving the page.
func TestReportInChromium(t *testing.T) {
	bin, err := exec.LookPath("chromium")
	if err != nil {
		t.Fatal("chromium is not installed (scripts/test.sh installs Debian's chromium package)")
	}
	cs := hostileCase(t)
	tmp := t.TempDir()
	html := filepath.Join(tmp, "report.html")
	f, err := os.Create(html)
	if err != nil {
		t.Fatal(err)
	}
	if err := HTML(f, cs); err != nil {
		t.Fatal(err)
	}
	f.Close()
	netlog := filepath.Join(tmp, "net.json")
	shot := filepath.Join(tmp, "report.png")
	base := []string{"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--user-data-dir=" + filepath.Join(tmp, "profile"), "--log-net-log=" + netlog, "--window-size=1400,2000"}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	dom, err := exec.CommandContext(ctx, bin, append(base, "--dump-dom", "file://"+html)...).Output()
	if err != nil {
		t.Fatalf("chromium --dump-dom: %v", err)
	}
	d := string(dom)
	// Findings present, the attacked container ranked first.
	for _, want := range []string{"/tmp/.x/miner", "process_from_container_diff", "evidence-sha256"} {
		if !strings.Contains(d, want) {
			t.Errorf("the rendered page lacks %q", want)
		}
	}
	if i, j := strings.Index(d, "shop/shop-frontend-7d9c8b6f5-x2k4q/app"), strings.Index(d, "forge-default-cache"); i < 0 || (j >= 0 && j < i && !strings.Contains(d[:j], "finding")) {
		t.Errorf("the attacked container is not listed first")
	}
	// No element was made from the hostile name: the DOM has no img at
	// all, and the name is text in a drift cell.
	if strings.Contains(strings.ToLower(d), "<img") {
		t.Error("an img element exists in the rendered DOM")
	}
	if !strings.Contains(d, `<td class="mono drift-path">/tmp/&lt;img src=x onerror=alert(1)&gt;</td>`) {
		t.Error("the hostile name is not a text cell of the drift table")
	}
	// The script ran under the CSP: info rows start hidden by the filter.
	if !regexp.MustCompile(`<tr class="finding hidden" data-sev="info"`).MatchString(d) {
		t.Error("the filter script did not run (CSP hash mismatch?)")
	}
	// Nothing but the file itself was requested.
	if err := exec.CommandContext(ctx, bin, append(base, "--screenshot="+shot, "file://"+html)...).Run(); err != nil {
		t.Fatalf("chromium --screenshot: %v", err)
	}
	if st, err := os.Stat(shot); err != nil || st.Size() < 10000 {
		t.Fatalf("screenshot: %v", err)
	}
	if urls := pageRequests(t, netlog); len(urls) > 0 {
		t.Errorf("the page made requests: %v", urls)
	}
	// The check can fail: a page that loads an image from the network is
	// caught (the request is refused by this machine's network; it is still
	// made, and logged).
	ctl := filepath.Join(tmp, "control.html")
	os.WriteFile(ctl, []byte(`<html><body><img src="http://203.0.113.9/x.png"></body></html>`), 0o644)
	ctlLog := filepath.Join(tmp, "control.json")
	args := append(append([]string{}, base...), "--log-net-log="+ctlLog, "--dump-dom", "file://"+ctl)
	if err := exec.CommandContext(ctx, bin, args...).Run(); err != nil {
		t.Fatalf("chromium on the control page: %v", err)
	}
	if urls := pageRequests(t, ctlLog); len(urls) != 1 || urls[0] != "http://203.0.113.9/x.png" {
		t.Errorf("the control page's request was not seen: %v", urls)
	}
	if out := os.Getenv("DEADNODE_REPORT_SCREENSHOT"); out != "" {
		if b, err := os.ReadFile(shot); err == nil {
			os.WriteFile(out, b, 0o644)
		}
	}
}

// pageRequests lists the URLs a page requested, from Chromium's net log:
// requests whose initiator is an origin (a file:// page's is "null"); the
// browser's own background requests have "not an origin".
func pageRequests(t *testing.T, netlog string) []string {
	t.Helper()
	b, err := os.ReadFile(netlog)
	if err != nil || len(b) == 0 {
		t.Fatalf("net log: %v", err)
	}
	seen := map[string]bool{}
	var urls []string
	for _, line := range strings.Split(string(b), "\n") {
		line = strings.TrimSuffix(strings.TrimSpace(line), ",")
		if !strings.Contains(line, `"initiator"`) {
			continue
		}
		var e struct {
			Params struct {
				Initiator string `json:"initiator"`
				URL       string `json:"url"`
			} `json:"params"`
		}
		if json.Unmarshal([]byte(line), &e) != nil || e.Params.URL == "" {
			continue
		}
		if e.Params.Initiator != "not an origin" && !seen[e.Params.URL] {
			seen[e.Params.URL] = true
			urls = append(urls, e.Params.URL)
		}
	}
	return urls
}

// Every field that can carry evidence text is shown cleaned, a finding's
// Why and a container's id and state among them: a U+202E in a drift
// entry's volume name reached the page raw and reversed the rest of the
// sentence as Chromium drew it.
func TestHTMLCleansEveryEvidenceField(t *testing.T) {
	cs := hostileCase(t)
	cs.Findings[0].Why = "volume cache\u202e: nothing suspicious here, esc\x1b[2J"
	cs.Findings[0].ContainerID = "id\u202ex"
	if len(cs.Containers) > 0 {
		cs.Containers[0].State = "run\u202ening\x07"
	}
	var b bytes.Buffer
	if err := HTML(&b, cs); err != nil {
		t.Fatal(err)
	}
	page := b.String()
	if strings.ContainsAny(page, "\u202e\x1b\x07") {
		t.Error("a bidi override or control character of the evidence reached the page")
	}
	if !strings.Contains(page, `volume cache\u202e: nothing suspicious here`) {
		t.Error("the cleaned Why is not shown")
	}
}
