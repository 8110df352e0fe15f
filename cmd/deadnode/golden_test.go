package main

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/deadnode/deadnode/internal/testfix"
)

// The golden-output tests pin what every command prints — stdout, stderr and
// exit status, and the files it writes — on the committed fixtures, so that a
// refactoring can prove its output unchanged (issue 11). Regenerate with
//
//	go test ./cmd/deadnode -run Golden -update
//
// and review the diff. Only what truly depends on the run is replaced: the
// output directory (a fresh one per run) becomes $OUT, the place of the
// CRIU images directories' copies (see TestGolden) $CKPT, and the host
// archive testfix builds (in a cache directory named by its inputs'
// digests) $HOST. Nothing else is normalised.
var update = flag.Bool("update", false, "rewrite the golden files of TestGolden")

// goldenCase is one run of the CLI. In args, $NODE, $DOCKER, $STORAGE,
// $PODMAN, $PODMAN_TAR, $CRIU, $CTR_CKPT, $GT, $HOST (the compromised
// Kubernetes host, see hostGoldenArchive) and $RPM stand for the fixtures,
// $OUT for this case's output directory, and $DISK_EXT4, $DISK_VAR,
// $DISK_QCOW2 and $DISK_VMDK for the generated disk images, whose paths
// the output shows as these placeholders. files are globs under $OUT
// whose contents are kept (text) or hashed (binary).
type goldenCase struct {
	name  string
	args  []string
	files []string
}

const (
	gApp        = "4b324cab25486a33822d1672700ac0cdad1d9d183089b7126b778bc3343c4007"
	gSandbox    = "6b5e31bbf0ef256672a4b8c7bd59379ebee1b390723bab836bf8c514f0209721"
	gCkptK8s    = "containerd.io/checkpoint/4b324cab25486a33822d1672700ac0cdad1d9d183089b7126b778bc3343c4007:11-27-2026-02:31:57"
	gCkptDef    = "containerd.io/checkpoint/forge-default-cache:11-27-2026-02:32:18"
	gDockerWeb  = "f8a96d9431afcdcda37c334276774b7f696bc5c5c20c89182ad28a3f450eaed5"
	gPodmanCart = "015674db7f57680cac399505aa6e903f2837396a880b3e6bfa0ce13193fb8672"
	gSecret     = "FORGE-SECRET-7f3a9c"
)

func goldenCases() []goldenCase {
	var cs []goldenCase
	add := func(name string, args ...string) { cs = append(cs, goldenCase{name: name, args: args}) }
	addFiles := func(name string, files []string, args ...string) {
		cs = append(cs, goldenCase{name: name, args: args, files: files})
	}
	// each adds the case in every output form named, as NAME.FORM.
	each := func(forms, name string, args ...string) {
		for _, f := range strings.Split(forms, ",") {
			add(name+"."+f, append(append([]string{}, args...), "-o", f)...)
		}
	}
	const all = "table,json,jsonl"

	// The containerd sample node.
	for _, what := range []string{"namespaces", "pods", "containers", "images", "snapshots", "content", "leases"} {
		each(all, "node/ls-"+what, "--root", "$NODE", "ls", what)
	}
	each("table,json", "node/ls-containers-n-default", "--root", "$NODE", "-n", "default", "ls", "containers")
	each("json", "node/ls-pods-n-k8s", "--root", "$NODE", "--namespace", "k8s.io", "ls", "pods")
	each(all, "node/inspect-container", "--root", "$NODE", "inspect", gApp)
	each("table,json", "node/inspect-sandbox", "--root", "$NODE", "inspect", gSandbox)
	each("json", "node/inspect-by-name", "--root", "$NODE", "inspect", "shop/shop-frontend-7d9c8b6f5-x2k4q/app")
	each("json", "node/inspect-prefix", "--root", "$NODE", "inspect", "f617888d")
	each("json", "node/inspect-ctr-idle", "--root", "$NODE", "inspect", "forge-default-idle")
	each(all, "node/drift", "--root", "$NODE", "drift", gApp)
	each(all, "node/drift-all", "--root", "$NODE", "drift", "--all")
	each("table,json", "node/drift-all-exec-only", "--root", "$NODE", "drift", "--all", "--exec-only")
	each("table,json", "node/drift-no-hash", "--root", "$NODE", "drift", gApp, "--no-hash")
	each("json", "node/drift-identical-all", "--root", "$NODE", "drift", gApp, "--identical-all")
	each("json", "node/drift-pod", "--root", "$NODE", "drift", "--pod", "shop/shop-frontend-7d9c8b6f5-x2k4q")
	each("json", "node/drift-two", "--root", "$NODE", "drift", gApp, "forge-default-cache")
	each(all, "node/drift-checkpoint-k8s", "--root", "$NODE", "drift", "--checkpoint", gCkptK8s)
	each("json", "node/drift-checkpoint-default", "--root", "$NODE", "drift", "--checkpoint", gCkptDef)
	each("json", "node/drift-checkpoint-podman", "--root", "$NODE", "drift", "--checkpoint", "$PODMAN")
	add("node/timeline.default", "--root", "$NODE", "timeline")
	for _, f := range []string{"jsonl", "bodyfile", "timesketch"} {
		add("node/timeline."+f, "--root", "$NODE", "timeline", "--format", f)
		add("node/timeline-hash."+f, "--root", "$NODE", "timeline", "--format", f, "--hash")
	}
	add("node/timeline.json", "--root", "$NODE", "timeline", "-o", "json")
	addFiles("node/timeline-file", []string{"timeline.body"}, "--root", "$NODE", "timeline", "--format", "bodyfile", "-f", "$OUT/timeline.body")
	each(all, "node/fs-ls", "--root", "$NODE", "fs", "ls", gApp)
	each("table,json", "node/fs-ls-etc", "--root", "$NODE", "fs", "ls", gApp, "/etc")
	each("table,json,jsonl", "node/fs-ls-R-hash", "--root", "$NODE", "fs", "ls", gApp, "/", "-R", "--hash")
	each("json", "node/fs-ls-R", "--root", "$NODE", "fs", "ls", gApp, "/tmp", "-R")
	each("json", "node/fs-ls-sandbox", "--root", "$NODE", "fs", "ls", gSandbox, "/", "--hash")
	add("node/fs-cat-passwd", "--root", "$NODE", "fs", "cat", gApp, "/etc/passwd")
	add("node/fs-cat-backdoor", "--root", "$NODE", "fs", "cat", gApp, "/usr/local/bin/backdoor.sh")
	add("node/fs-cat-miner", "--root", "$NODE", "fs", "cat", gApp, "/tmp/.x/miner")
	add("node/fs-cat-symlink", "--root", "$NODE", "fs", "cat", gApp, "/linuxrc")
	add("node/fs-cat-deleted", "--root", "$NODE", "fs", "cat", gApp, "/etc/motd")
	add("node/fs-cat-dir", "--root", "$NODE", "fs", "cat", gApp, "/etc")
	each("table,json", "node/fs-stat-passwd", "--root", "$NODE", "fs", "stat", gApp, "/etc/passwd")
	each("table,json", "node/fs-stat-symlink", "--root", "$NODE", "fs", "stat", gApp, "/linuxrc")
	each("table,json", "node/fs-stat-symlink-L", "--root", "$NODE", "fs", "stat", gApp, "/linuxrc", "-L")
	each("json", "node/fs-stat-opaque", "--root", "$NODE", "fs", "stat", gApp, "/opt/cache")
	each("json", "node/fs-stat-dir", "--root", "$NODE", "fs", "stat", gApp, "/tmp/.x")
	each("json", "node/fs-stat-miner", "--root", "$NODE", "fs", "stat", gApp, "/tmp/.x/miner")
	add("node/fs-stat-deleted", "--root", "$NODE", "fs", "stat", gApp, "/etc/motd")
	for _, f := range []string{"table", "json"} {
		addFiles("node/export-merged."+f, []string{"merged.tar", "merged.json"}, "--root", "$NODE", "export", gApp, "-f", "$OUT/merged.tar", "--manifest", "$OUT/merged.json", "-o", f)
	}
	addFiles("node/export-upper.json", []string{"upper.tar", "upper.json"}, "--root", "$NODE", "export", gApp, "--upper", "-f", "$OUT/upper.tar", "--manifest", "$OUT/upper.json", "-o", "json")
	addFiles("node/export-no-xattrs.json", []string{"nx.tar", "nx.json"}, "--root", "$NODE", "export", gApp, "--upper", "--no-xattrs", "-f", "$OUT/nx.tar", "--manifest", "$OUT/nx.json", "-o", "json")
	add("node/export-stdout", "--root", "$NODE", "export", gApp, "--upper", "-f", "-")
	each(all, "node/image-ls", "--root", "$NODE", "image", "ls")
	each("table,json", "node/image-inspect-app", "--root", "$NODE", "image", "inspect", "forge.local/shop/app:1.0")
	each("json", "node/image-inspect-digest", "--root", "$NODE", "image", "inspect", "sha256:76c06ca2")
	each("json", "node/image-inspect-pause", "--root", "$NODE", "-n", "k8s.io", "image", "inspect", "forge.local/pause:3.9")
	each("table,json", "node/image-inspect-checkpoint", "--root", "$NODE", "image", "inspect", gCkptK8s)
	each(all, "node/image-verify-all", "--root", "$NODE", "image", "verify", "--all")
	each("json", "node/image-verify-busybox", "--root", "$NODE", "-n", "k8s.io", "image", "verify", "forge.local/library/busybox:1.35")
	each("json", "node/image-verify-max-ratio", "--root", "$NODE", "image", "verify", "forge.local/shop/app:1.0", "--max-ratio", "2")
	each("json", "node/image-verify-max-uncompressed", "--root", "$NODE", "image", "verify", "forge.local/shop/app:1.0", "--max-uncompressed", "4096")
	each(all, "node/checkpoint-ls", "--root", "$NODE", "checkpoint", "ls")
	each("table,json", "node/checkpoint-inspect-k8s", "--root", "$NODE", "checkpoint", "inspect", gCkptK8s)
	each("table,json", "node/checkpoint-inspect-k8s-all", "--root", "$NODE", "checkpoint", "inspect", gCkptK8s, "--all")
	each("table", "node/checkpoint-inspect-k8s-ps-tree-cmd", "--root", "$NODE", "checkpoint", "inspect", gCkptK8s, "--ps-tree-cmd", "--ps-tree-env")
	each("json", "node/checkpoint-inspect-default", "--root", "$NODE", "checkpoint", "inspect", "sha256:d3d78e7b9623e022a3a060efa46f163236ebf1bb9195f9ef3d9b7876b96e73b1")
	each("table,json", "node/mem-maps", "--root", "$NODE", "mem", "maps", gCkptK8s)
	each("json", "node/mem-search", "--root", "$NODE", "mem", "search", gCkptK8s, "--string", gSecret)

	// Docker and containers-storage roots.
	for _, r := range []struct{ name, root, id, dir, file, image string }{
		{"docker", "$DOCKER", gDockerWeb, "/opt/web", "/opt/web/run.sh", "forge.local/shop/web:1.4"},
		{"storage", "$STORAGE", gPodmanCart, "/opt/web", "/opt/web/run.sh", "forge.local/shop/web:1.4"},
	} {
		p := r.name + "/"
		for _, what := range []string{"namespaces", "pods", "containers", "images", "snapshots", "content", "leases"} {
			each("table,json", p+"ls-"+what, "--root", r.root, "ls", what)
		}
		each("jsonl", p+"ls-containers", "--root", r.root, "ls", "containers")
		each(all, p+"inspect", "--root", r.root, "inspect", r.id)
		each(all, p+"drift", "--root", r.root, "drift", r.id)
		each("table,json", p+"drift-all", "--root", r.root, "drift", "--all")
		each("json", p+"drift-all-exec-only-no-hash", "--root", r.root, "drift", "--all", "--exec-only", "--no-hash")
		each("json", p+"drift-identical-all", "--root", r.root, "drift", r.id, "--identical-all")
		add(p+"timeline.jsonl", "--root", r.root, "timeline")
		add(p+"timeline.bodyfile", "--root", r.root, "timeline", "--format", "bodyfile")
		add(p+"timeline.timesketch", "--root", r.root, "timeline", "--format", "timesketch", "--hash")
		each("table,json", p+"fs-ls", "--root", r.root, "fs", "ls", r.id)
		each("json", p+"fs-ls-R-hash", "--root", r.root, "fs", "ls", r.id, r.dir, "-R", "--hash")
		add(p+"fs-cat", "--root", r.root, "fs", "cat", r.id, r.file)
		each("table,json", p+"fs-stat", "--root", r.root, "fs", "stat", r.id, r.file)
		each("json", p+"fs-stat-busybox", "--root", r.root, "fs", "stat", r.id, "/bin/busybox")
		each("json", p+"fs-stat-wget-L", "--root", r.root, "fs", "stat", r.id, "/usr/bin/wget", "-L")
		addFiles(p+"export-upper.json", []string{"upper.tar", "upper.json"}, "--root", r.root, "export", r.id, "--upper", "-f", "$OUT/upper.tar", "--manifest", "$OUT/upper.json", "-o", "json")
		addFiles(p+"export-merged.json", []string{"merged.json"}, "--root", r.root, "export", r.id, "-f", "$OUT/merged.tar", "--manifest", "$OUT/merged.json", "-o", "json")
		each("table,json", p+"image-ls", "--root", r.root, "image", "ls")
		each("table,json", p+"image-inspect", "--root", r.root, "image", "inspect", r.image)
		each(all, p+"image-verify-all", "--root", r.root, "image", "verify", "--all")
		each("table,json", p+"checkpoint-ls", "--root", r.root, "checkpoint", "ls")
	}
	each("json", "storage/drift-checkpoint-podman", "--root", "$STORAGE", "drift", "--checkpoint", "$PODMAN")
	each("table,json", "storage/ls-execs", "--root", "$STORAGE", "ls", "execs")
	each("table,json", "storage/ls-orphans", "--root", "$STORAGE", "ls", "orphans")
	each("table,json", "docker/ls-orphans", "--root", "$DOCKER", "ls", "orphans")
	each("json", "node/ls-execs", "--root", "$NODE", "ls", "execs")

	// Lookup by name (issue 15.3), the image's version of a path (15.4).
	each("json", "node/inspect-bare-name", "--root", "$NODE", "inspect", "app")
	each("json", "node/inspect-pod-container", "--root", "$NODE", "inspect", "shop-frontend-7d9c8b6f5-x2k4q/app")
	add("node/fs-cat-deleted-image", "--root", "$NODE", "fs", "cat", gApp, "/etc/motd", "--image")
	add("node/fs-cat-passwd-image", "--root", "$NODE", "fs", "cat", gApp, "/etc/passwd", "--image")
	each("json", "node/fs-stat-deleted-image", "--root", "$NODE", "fs", "stat", gApp, "/etc/motd", "--image")
	each("table,json", "node/fs-ls-layer0", "--root", "$NODE", "fs", "ls", gApp, "/", "-R", "--layer", "0")
	each("table", "node/fs-ls-etc-layer2", "--root", "$NODE", "fs", "ls", gApp, "/etc", "--layer", "2")
	add("node/timeline.table", "--root", "$NODE", "timeline", "-o", "table")
	each("table,json", "node/drift-diff", "--root", "$NODE", "drift", gApp, "--diff")
	each("table", "storage/drift-diff", "--root", "$STORAGE", "drift", gPodmanCart, "--diff")
	add("errors/checkpoint-inspect-node-as-source", "checkpoint", "inspect", "$NODE")
	add("errors/mem-maps-node-as-source", "mem", "maps", "$DOCKER")
	add("errors/mem-search-node-as-source", "mem", "search", "$NODE", "--string", "x")
	add("errors/fs-image-and-layer", "--root", "$NODE", "fs", "ls", gApp, "--image", "--layer", "1")
	add("errors/fs-layer-missing", "--root", "$NODE", "fs", "ls", gApp, "--layer", "9")
	add("errors/inspect-checkpoint-as-root", "--root", "$PODMAN", "ls", "containers")

	// The podman checkpoint archives (zstd as podman wrote it; the plain
	// tar derived from the gzip one).
	each(all, "podman/checkpoint-inspect", "checkpoint", "inspect", "$PODMAN")
	for _, fl := range []string{"--all", "--ps-tree", "--files", "--sockets", "--mounts", "--env", "--ps-tree-cmd", "--ps-tree-env", "--keep-pages"} {
		each("table,json", "podman/checkpoint-inspect"+fl, "checkpoint", "inspect", "$PODMAN", fl)
	}
	each("json", "podman/checkpoint-inspect-tar-all", "checkpoint", "inspect", "$PODMAN_TAR", "--all")
	each("table,json", "podman/drift-checkpoint", "drift", "--checkpoint", "$PODMAN")
	each(all, "podman/mem-maps", "mem", "maps", "$PODMAN")
	each("table,json", "podman/mem-maps-ranges", "mem", "maps", "$PODMAN", "--pid", "18", "--ranges")
	each(all, "podman/mem-search-string", "mem", "search", "$PODMAN", "--string", gSecret)
	each("json", "podman/mem-search-string-context", "mem", "search", "$PODMAN", "--string", gSecret, "--context", "4", "--pid", "18")
	each("json", "podman/mem-search-regex", "mem", "search", "$PODMAN", "--regex", `FORGE-SECRET-[0-9a-f]+`, "--max-match", "64")
	each("json", "podman/mem-search-hex", "mem", "search", "$PODMAN", "--hex", "46 4f 52 47 45 2d 53 45 43 52 45 54")
	each("json", "podman/mem-search-utf16", "mem", "search", "$PODMAN", "--utf16", "FORGE")
	each("json", "podman/mem-search-include-zero", "mem", "search", "$PODMAN", "--hex", "00 00 00 00 00 00 00 00 46", "--include-zero", "--pid", "18")
	each("json", "podman/mem-search-tar", "mem", "search", "$PODMAN_TAR", "--string", gSecret)
	each(all, "podman/mem-strings", "mem", "strings", "$PODMAN", "--pid", "18")
	each("json", "podman/mem-strings-min", "mem", "strings", "$PODMAN", "--pid", "18", "--min", "16")
	each("json", "podman/mem-strings-utf16", "mem", "strings", "$PODMAN", "--pid", "18", "--utf16", "--min", "4")
	for _, f := range []string{"table", "json"} {
		addFiles("podman/mem-dump-all."+f, []string{"dump/*"}, "mem", "dump", "$PODMAN", "--pid", "18", "--all", "-d", "$OUT/dump", "-o", f)
	}
	addFiles("podman/mem-dump-vma.json", []string{"dump/*"}, "mem", "dump", "$PODMAN", "--pid", "18", "--vma", "30812a5a", "-d", "$OUT/dump", "-o", "json")
	addFiles("podman/mem-dump-range.json", []string{"dump/*"}, "mem", "dump", "$PODMAN", "--pid", "18", "--range", "30812000-30814000", "-d", "$OUT/dump", "-o", "json")
	for _, f := range []string{"table", "json"} {
		addFiles("podman/mem-core."+f, []string{"core"}, "mem", "core", "$PODMAN", "--pid", "18", "-f", "$OUT/core", "-o", f)
	}
	// A bound on content (a hostile checkpoint maps one object many times):
	// past 64 KiB, the rest is listed as skipped (past_max_data).
	addFiles("podman/mem-dump-all-max-data.json", []string{"dump/*"}, "mem", "dump", "$PODMAN", "--pid", "18", "--all", "--max-data", "64K", "-d", "$OUT/dump", "-o", "json")
	for _, f := range []string{"table", "json"} {
		addFiles("podman/mem-core-max-data."+f, []string{"core"}, "mem", "core", "$PODMAN", "--pid", "18", "--max-data", "64K", "-f", "$OUT/core", "-o", f)
	}

	// A raw CRIU images directory (criu dump), and ctr's --image-path one.
	each("table,json", "criu/checkpoint-inspect-all", "checkpoint", "inspect", "$CRIU", "--all")
	each("table,json", "criu/mem-maps-ranges", "mem", "maps", "$CRIU", "--ranges")
	each(all, "criu/mem-search-regex", "mem", "search", "$CRIU", "--regex", `heap-marker:[A-Z-]+[0-9a-f]+:end`)
	each("json", "criu/mem-strings", "mem", "strings", "$CRIU", "--pid", "1360", "--min", "10")
	addFiles("criu/mem-dump-all.json", []string{"dump/*"}, "mem", "dump", "$CRIU", "--pid", "1360", "--all", "-d", "$OUT/dump", "-o", "json")
	addFiles("criu/mem-core.json", []string{"core"}, "mem", "core", "$CRIU", "--pid", "1360", "-f", "$OUT/core", "-o", "json")
	each("table,json", "ctr-ckpt/checkpoint-inspect-ps-tree-cmd-env", "checkpoint", "inspect", "$CTR_CKPT", "--ps-tree-cmd", "--ps-tree-env")
	each("json", "ctr-ckpt/checkpoint-inspect-all", "checkpoint", "inspect", "$CTR_CKPT", "--all")
	each("table,json", "ctr-ckpt/mem-search-hex", "mem", "search", "$CTR_CKPT", "--hex", "46 4f 52 47 45 2d 53 45 43 52 45 54", "--pid", "50")
	each("json", "ctr-ckpt/mem-maps", "mem", "maps", "$CTR_CKPT", "--pid", "50")

	// Errors: usage (exit 2) and unusable input (exit 1), with stderr.
	add("errors/no-args")
	add("errors/help", "--help")
	add("errors/command-help", "ls", "--help")
	add("errors/unknown-command", "--root", "$NODE", "frobnicate")
	add("errors/bad-flag", "--root", "$NODE", "ls", "containers", "--bogus")
	add("errors/bad-output", "--root", "$NODE", "ls", "containers", "-o", "xml")
	add("errors/ls-no-what", "--root", "$NODE", "ls")
	add("errors/ls-bad-what", "--root", "$NODE", "ls", "volumes")
	add("errors/no-root", "ls", "containers")
	add("errors/root-missing", "--root", "$OUT/nope", "ls", "containers")
	add("errors/root-not-evidence", "--root", "$GT", "ls", "containers")
	add("errors/inspect-unknown", "--root", "$NODE", "inspect", "nosuchcontainer")
	add("errors/inspect-ambiguous", "--root", "$NODE", "inspect", "f")
	add("errors/inspect-no-arg", "--root", "$NODE", "inspect")
	add("errors/drift-unknown", "--root", "$NODE", "drift", "nosuchcontainer")
	add("errors/fs-cat-no-path", "--root", "$NODE", "fs", "cat", gApp)
	add("errors/fs-ls-missing", "--root", "$NODE", "fs", "ls", gApp, "/nope")
	add("errors/export-no-file", "--root", "$NODE", "export", gApp)
	add("errors/export-merged-upper", "--root", "$NODE", "export", gApp, "--merged", "--upper", "-f", "$OUT/x.tar")
	add("errors/image-inspect-unknown", "--root", "$NODE", "image", "inspect", "nosuch:image")
	add("errors/image-verify-no-arg", "--root", "$NODE", "image", "verify")
	add("errors/checkpoint-inspect-not-checkpoint", "checkpoint", "inspect", "$GT")
	add("errors/checkpoint-inspect-unknown", "--root", "$NODE", "checkpoint", "inspect", "nosuchcheckpoint")
	add("errors/mem-search-no-pattern", "mem", "search", "$CRIU")
	add("errors/mem-search-bad-hex", "mem", "search", "$CRIU", "--hex", "zz")
	add("errors/mem-search-not-checkpoint", "mem", "search", "$GT", "--string", "x")
	add("errors/mem-strings-no-pid", "mem", "strings", "$CRIU")
	add("errors/mem-strings-unknown-pid", "mem", "strings", "$CRIU", "--pid", "4242")
	add("errors/mem-dump-no-dir", "mem", "dump", "$CRIU", "--pid", "1360", "--all")
	add("errors/mem-core-no-file", "mem", "core", "$CRIU", "--pid", "1360")
	add("errors/mem-core-no-pid", "mem", "core", "$CRIU", "-f", "$OUT/core")
	add("errors/mem-dump-max-data-zero", "mem", "dump", "$CRIU", "--pid", "1360", "--all", "-d", "$OUT/dump", "--max-data", "0")
	add("errors/mem-core-max-data-bad", "mem", "core", "$CRIU", "--pid", "1360", "-f", "$OUT/core", "--max-data", "2X")
	add("errors/mem-dump-pid-too-large", "mem", "dump", "$CRIU", "--pid", "4294968656", "--all", "-d", "$OUT/dump")
	add("errors/mount-archive", "--root", "$NODE", "mount", gApp, "$OUT/mnt")
	add("errors/timeline-bad-format", "--root", "$NODE", "timeline", "--format", "csv")

	// The compromised Kubernetes host (issue 13): kubelet, logs, volumes.
	const gScratch = "/(volume:scratch)"
	each("table,json", "host/kubelet", "--root", "$HOST", "kubelet")
	each(all, "host/logs", "--root", "$HOST", "logs")
	each("table,json", "host/logs-app", "--root", "$HOST", "logs", "app")
	each("jsonl", "host/logs-id-prefix", "--root", "$HOST", "logs", "f617888d")
	each("table", "host/logs-pod", "--root", "$HOST", "logs", "--pod", "jobs/report-job-28374651-q7wzt")
	each("table", "host/logs-pod-container", "--root", "$HOST", "logs", "app", "--pod", "shop/shop-frontend-7d9c8b6f5-x2k4q")
	each("table", "host/logs-grep", "--root", "$HOST", "logs", "--grep", "miner|core_pattern")
	each("table", "host/logs-since-relative", "--root", "$HOST", "logs", "--since", "1s")
	each("table", "host/logs-since-until", "--root", "$HOST", "logs", "--since", "2026-11-26T21:14:00Z", "--until", "2026-11-27")
	each("table,json", "host/ls-pods", "--root", "$HOST", "ls", "pods")
	each("table,json", "host/inspect-app", "--root", "$HOST", "inspect", "app")
	each("json", "host/inspect-report", "--root", "$HOST", "inspect", "report")
	each(all, "host/drift-app", "--root", "$HOST", "drift", "app")
	each("table,json", "host/drift-all-exec-only", "--root", "$HOST", "drift", "--all", "--exec-only")
	each("json", "host/drift-app-host-paths-no-hash", "--root", "$HOST", "drift", "app", "--host-paths", "--no-hash")
	each("table,json", "host/fs-ls-volumes", "--root", "$HOST", "fs", "ls", "app", "--volumes")
	each("table,json", "host/fs-ls-volumes-etc", "--root", "$HOST", "fs", "ls", "app", "/etc", "--volumes")
	each(all, "host/fs-ls-volumes-R-hash", "--root", "$HOST", "fs", "ls", "app", gScratch, "-R", "--hash", "--volumes")
	add("host/fs-cat-volumes-sync", "--root", "$HOST", "fs", "cat", "app", gScratch+"/.cache/sync.sh", "--volumes")
	add("host/fs-cat-volumes-hostname", "--root", "$HOST", "fs", "cat", "app", "/etc/hostname", "--volumes")
	add("host/fs-cat-volumes-dotdot", "--root", "$HOST", "fs", "cat", "app", gScratch+"/.cache/../../../"+gScratch+"/.cache/sync.sh", "--volumes")
	each("table,json", "host/fs-stat-volumes-sync", "--root", "$HOST", "fs", "stat", "app", gScratch+"/.cache/sync.sh", "--volumes")
	each("json", "host/fs-stat-volumes-hosts", "--root", "$HOST", "fs", "stat", "app", "/etc/hosts", "--volumes")
	each("json", "host/fs-stat-volumes-layer", "--root", "$HOST", "fs", "stat", "app", "/etc/passwd", "--volumes")
	add("host/timeline.jsonl", "--root", "$HOST", "timeline")
	add("host/timeline.table", "--root", "$HOST", "timeline", "-o", "table")
	add("host/timeline.bodyfile", "--root", "$HOST", "timeline", "--format", "bodyfile")
	add("host/timeline.timesketch", "--root", "$HOST", "timeline", "--format", "timesketch")
	each(all, "node/logs", "--root", "$NODE", "logs")
	each("json", "node/logs-app", "--root", "$NODE", "logs", gApp)
	each("table,json", "node/fs-ls-volumes", "--root", "$NODE", "fs", "ls", gApp, "/etc", "--volumes")
	add("node/fs-cat-volumes-resolv", "--root", "$NODE", "fs", "cat", gApp, "/etc/resolv.conf", "--volumes")
	add("errors/kubelet-none", "--root", "$NODE", "kubelet")
	add("errors/kubelet-args", "--root", "$HOST", "kubelet", "x")
	add("errors/logs-unknown", "--root", "$HOST", "logs", "nosuchcontainer")
	add("errors/logs-unknown-pod", "--root", "$HOST", "logs", "--pod", "shop/nosuchpod")
	add("errors/logs-ambiguous", "--root", "$HOST", "logs", "f")
	add("errors/logs-sandbox", "--root", "$HOST", "logs", gSandbox)
	add("errors/logs-bad-since", "--root", "$HOST", "logs", "--since", "yesterday")
	add("errors/logs-bad-pod", "--root", "$HOST", "logs", "--pod", "shop")
	add("errors/logs-bad-grep", "--root", "$HOST", "logs", "--grep", "(")
	add("errors/fs-volumes-image", "--root", "$HOST", "fs", "ls", "app", "--volumes", "--image")
	add("errors/fs-volumes-missing", "--root", "$HOST", "fs", "cat", "app", gScratch+"/nope", "--volumes")
	// The compromised host (issue 13: persistence, package drift).
	each(all, "host/persistence", "--root", "$HOST", "host", "persistence")
	each(all, "host/packages", "--root", "$HOST", "host", "packages")
	each("table", "host/packages-wide", "--root", "$HOST", "host", "packages", "--wide")
	each("json", "host/persistence-node", "--root", "$NODE", "host", "persistence")
	add("host/packages-no-database", "--root", "$NODE", "host", "packages")
	add("host/persistence-args", "--root", "$HOST", "host", "persistence", "x")
	each("table,json", "host/packages-rpm", "--root", "$RPM", "host", "packages")
	each("table", "host/persistence-rpm", "--root", "$RPM", "host", "persistence")

	// Disk images (testdata/disk/forge-disk.sh, made by testfix.DiskImages).
	each("table,json", "disk/ls-gpt-ext4", "disk", "ls", "$DISK_EXT4")
	each("json", "disk/ls-gpt-ext4-root-flag", "--root", "$DISK_EXT4", "disk", "ls")
	each("table,json", "disk/ls-gpt-var", "disk", "ls", "$DISK_VAR")
	each("json", "disk/ls-qcow2", "disk", "ls", "$DISK_QCOW2")
	each("json", "disk/ls-gpt-xfs-vmdk", "disk", "ls", "$DISK_VMDK")
	each("json", "disk/ls-no-assemble", "--no-assemble", "disk", "ls", "$DISK_VAR")
	each("table", "disk/ls-containers", "--root", "$DISK_EXT4", "ls", "containers")
	each("json", "disk/ls-containers-var", "--root", "$DISK_VAR", "ls", "containers")
	add("errors/disk-ls-no-image", "disk", "ls")
	add("errors/disk-ls-two-images", "disk", "ls", "$DISK_EXT4", "$DISK_VAR")
	add("errors/disk-volume-not-fs", "--root", "$DISK_EXT4", "--volume", "p1", "ls", "containers")
	add("errors/disk-volume-unknown", "--root", "$DISK_EXT4", "--volume", "vg9/x", "ls", "containers")
	add("errors/recover-archive", "--root", "$NODE", "recover", "--all")
	add("errors/recover-no-args", "--root", "$NODE", "recover")
	add("errors/recover-both", "--root", "$NODE", "recover", "--all", gApp)
	return cs
}

func TestGolden(t *testing.T) {
	repo := testfix.RepoRoot(t)
	cwd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	// Fixtures by paths relative to the package directory, as a user would
	// type them: the same in every clone.
	rel := func(p string) string {
		r, err := filepath.Rel(cwd, p)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	// CRIU images directories are reported by absolute path and dated by
	// their files' mtimes, which a checkout does not keep: the tests read
	// copies at a fixed-length path with the files' times set to
	// goldenMtime, the same in every clone. (/tmp, not $TMPDIR: its length
	// would move table columns.)
	var suffix [4]byte
	rand.Read(suffix[:])
	ckptDir := "/tmp/deadnode-golden-" + hex.EncodeToString(suffix[:])
	t.Cleanup(func() { os.RemoveAll(ckptDir) })
	copyFixedTimes(t, testfix.Fixture(t, "criu-dump", "images"), filepath.Join(ckptDir, "criu"))
	copyFixedTimes(t, testfix.Fixture(t, "containerd-node", "ctr-checkpoint-image-path", "images"), filepath.Join(ckptDir, "ctr"))
	vars := map[string]string{
		"$NODE":       rel(testfix.NodeArchive(t)),
		"$DOCKER":     rel(testfix.Fixture(t, "runtimes-c1", "docker-root.tar.gz")),
		"$STORAGE":    rel(testfix.Fixture(t, "runtimes-c1", "storage-root.tar.gz")),
		"$PODMAN_TAR": rel(testfix.Fixture(t, "podman-checkpoint", "ckpt-leave-running.tar")),
		"$PODMAN":     rel(testfix.Fixture(t, "podman-checkpoint", "ckpt-default-zstd.tar.zst")),
		"$CRIU":       filepath.Join(ckptDir, "criu"),
		"$CTR_CKPT":   filepath.Join(ckptDir, "ctr"),
		"$GT":         rel(testfix.Fixture(t, "containerd-node", "GROUND_TRUTH.md")),
		"$HOST":       rel(hostGoldenArchive(t)),
		"$RPM":        rel(filepath.Join(repo, "forensics", "host", "testdata", "rpm", "rpm-root.tar.gz")),
	}
	// The disk images are generated (under a directory named by a hash of
	// their script): their paths are put back as placeholders in the
	// output.
	disks := testfix.DiskImages(t)
	diskVars := map[string]string{
		"$DISK_EXT4":  rel(filepath.Join(disks, "gpt-ext4.raw")),
		"$DISK_VAR":   rel(filepath.Join(disks, "gpt-var.raw")),
		"$DISK_QCOW2": rel(filepath.Join(disks, "gpt-ext4.qcow2")),
		"$DISK_VMDK":  rel(filepath.Join(disks, "gpt-xfs.vmdk")),
	}
	for k, v := range diskVars {
		vars[k] = v
	}
	// The output directory: under the gitignored testdata/tmp, named with a
	// fixed-length random suffix so that table columns do not move.
	outAbs := filepath.Join(repo, "testdata", "tmp", "golden-"+hex.EncodeToString(suffix[:]))
	if err := os.MkdirAll(outAbs, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(outAbs) })
	outRel := rel(outAbs)

	seen := map[string]bool{}
	for i, c := range goldenCases() {
		if seen[c.name] {
			t.Fatalf("duplicate golden case %s", c.name)
		}
		seen[c.name] = true
		t.Run(c.name, func(t *testing.T) {
			out := filepath.Join(outRel, fmt.Sprintf("%03d", i))
			if err := os.MkdirAll(out, 0o755); err != nil {
				t.Fatal(err)
			}
			args := make([]string, len(c.args))
			for j, a := range c.args {
				a = strings.ReplaceAll(a, "$OUT", out)
				if v, ok := vars[a]; ok {
					a = v
				}
				args[j] = a
			}
			stdout, stderr, code := runCLI(t, args...)
			got := renderGolden(t, c, args, stdout, stderr, code, out, outAbs)
			got = strings.ReplaceAll(got, out, "$OUT")
			got = strings.ReplaceAll(got, filepath.Join(outAbs, fmt.Sprintf("%03d", i)), "$OUT")
			got = strings.ReplaceAll(got, ckptDir, "$CKPT")
			got = strings.ReplaceAll(got, vars["$HOST"], "$HOST")
			for k, v := range diskVars {
				got = strings.ReplaceAll(got, v, k)
			}
			file := filepath.Join("testdata", "golden", filepath.FromSlash(c.name)+".golden")
			if *update {
				if err := os.MkdirAll(filepath.Dir(file), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(file, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(file)
			if err != nil {
				t.Fatalf("%v (run with -update to create it)", err)
			}
			if string(want) != got {
				t.Errorf("output differs from %s (-update rewrites it):\n%s", file, firstDiff(string(want), got))
			}
		})
	}
	if *update {
		// Remove goldens of cases that no longer exist.
		filepath.WalkDir(filepath.Join("testdata", "golden"), func(p string, d os.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			name := filepath.ToSlash(strings.TrimSuffix(strings.TrimPrefix(p, filepath.Join("testdata", "golden")+string(filepath.Separator)), ".golden"))
			if !seen[name] {
				return os.Remove(p)
			}
			return nil
		})
	}
}

// goldenMtime is the modification time given to the files of the copied
// CRIU images directories (the day forge.sh made them).
var goldenMtime = time.Date(2026, 11, 27, 0, 0, 0, 0, time.UTC)

// copyFixedTimes copies a flat directory of regular files to dst (created)
// and sets every file's and the directory's times to goldenMtime.
func copyFixedTimes(t *testing.T, src, dst string) {
	t.Helper()
	if err := os.MkdirAll(dst, 0o755); err != nil {
		t.Fatal(err)
	}
	ents, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		if !e.Type().IsRegular() {
			t.Fatalf("%s: only regular files expected in %s", e.Name(), src)
		}
		b, err := os.ReadFile(filepath.Join(src, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(dst, e.Name())
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(p, goldenMtime, goldenMtime); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chtimes(dst, goldenMtime, goldenMtime); err != nil {
		t.Fatal(err)
	}
}

// renderGolden is the golden file of one run: the command line, the exit
// status, stdout, stderr, then each written file (its text, or sha256 and
// size when it is binary or large).
func renderGolden(t *testing.T, c goldenCase, args []string, stdout, stderr string, code int, out, outAbs string) string {
	t.Helper()
	var b strings.Builder
	fmt.Fprintf(&b, "$ deadnode %s\nexit %d\n", shellQuote(args), code)
	section(&b, "stdout", []byte(stdout))
	section(&b, "stderr", []byte(stderr))
	for _, g := range c.files {
		matches, err := filepath.Glob(filepath.Join(out, g))
		if err != nil {
			t.Fatal(err)
		}
		if len(matches) == 0 {
			fmt.Fprintf(&b, "-- file %s: none --\n", g)
		}
		sort.Strings(matches)
		for _, m := range matches {
			data, err := os.ReadFile(m)
			if err != nil {
				t.Fatal(err)
			}
			section(&b, "file "+filepath.ToSlash(strings.TrimPrefix(m, out+string(filepath.Separator))), data)
		}
	}
	return b.String()
}

func section(b *strings.Builder, name string, data []byte) {
	if len(data) > 0 && (!utf8.Valid(data) || bytes.IndexByte(data, 0) >= 0 || len(data) > 1<<20) {
		sum := sha256.Sum256(data)
		fmt.Fprintf(b, "-- %s (binary) --\nsha256 %s, %d bytes\n", name, hex.EncodeToString(sum[:]), len(data))
		return
	}
	fmt.Fprintf(b, "-- %s --\n%s", name, data)
	if len(data) > 0 && data[len(data)-1] != '\n' {
		b.WriteString("\n(no newline at end)\n")
	}
}

func shellQuote(args []string) string {
	q := make([]string, len(args))
	for i, a := range args {
		if a == "" || strings.ContainsAny(a, " \t\"'\\$*?[]{}()<>|&;#~") {
			a = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
		}
		q[i] = a
	}
	return strings.Join(q, " ")
}

// firstDiff shows the first differing line of two texts.
func firstDiff(want, got string) string {
	wl, gl := strings.Split(want, "\n"), strings.Split(got, "\n")
	for i := 0; i < len(wl) || i < len(gl); i++ {
		var w, g string
		if i < len(wl) {
			w = wl[i]
		}
		if i < len(gl) {
			g = gl[i]
		}
		if w != g || i >= len(wl) || i >= len(gl) {
			return fmt.Sprintf("line %d:\n  want %q\n  got  %q\n(%d lines want, %d got)", i+1, w, g, len(wl), len(gl))
		}
	}
	return "(identical lines; the texts differ)"
}
