package kube

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/deadnode/deadnode/evidence"
	"github.com/deadnode/deadnode/forensics/model"
)

func jwtOf(header, claims map[string]any) string {
	enc := func(v any) string {
		b, _ := json.Marshal(v)
		return base64.RawURLEncoding.EncodeToString(b)
	}
	return enc(header) + "." + enc(claims) + "." + base64.RawURLEncoding.EncodeToString(make([]byte, 64))
}

const (
	podA = "11111111-2222-3333-4444-555555555555"
	podB = "99999999-8888-7777-6666-555555555555"
)

func boundToken(ns, sa, pod, uid string) string {
	return jwtOf(map[string]any{"alg": "RS256", "kid": "key-2"}, map[string]any{
		"aud": "https://kubernetes.default.svc", "iss": "https://kubernetes.default.svc", "sub": "system:serviceaccount:" + ns + ":" + sa,
		"iat": 1795748400, "nbf": 1795748400, "exp": 1795752007.5,
		"kubernetes.io": map[string]any{"namespace": ns, "pod": map[string]any{"name": pod, "uid": uid},
			"serviceaccount": map[string]any{"name": sa, "uid": "sa-uid"}, "node": map[string]any{"name": "worker-1", "uid": "node-uid"}, "warnafter": 1795751000},
	})
}

func TestPodDirs(t *testing.T) {
	legacy := jwtOf(map[string]any{"alg": "RS256", "kid": ""}, map[string]any{"iss": "kubernetes/serviceaccount",
		"kubernetes.io/serviceaccount/namespace": "ops", "kubernetes.io/serviceaccount/secret.name": "deployer-token-x1",
		"kubernetes.io/serviceaccount/service-account.name": "deployer", "kubernetes.io/serviceaccount/service-account.uid": "u1",
		"sub": "system:serviceaccount:ops:deployer"})
	a := "var/lib/kubelet/pods/" + podA
	ts := "..2026_11_26_21_14_05.1234567"
	proj := a + "/volumes/kubernetes.io~projected/kube-api-access-abcde"
	for _, s := range trees(t, map[string]node{
		// The atomic writer's layout: the names the pod sees are links
		// through ..data into a timestamped directory.
		proj + "/" + ts + "/token":     file(boundToken("ops", "runner", "runner-7f", podA) + "\n"),
		proj + "/" + ts + "/ca.crt":    file("-----BEGIN CERTIFICATE-----\n"),
		proj + "/" + ts + "/namespace": file("ops"),
		proj + "/..data":               symlink(ts),
		proj + "/token":                symlink("..data/token"),
		proj + "/ca.crt":               symlink("..data/ca.crt"),
		proj + "/namespace":            symlink("..data/namespace"),
		// A legacy secret token, and a token of another pod with a custom
		// name.
		a + "/volumes/kubernetes.io~secret/deployer-token-x1/token":                file(legacy),
		a + "/volumes/kubernetes.io~secret/creds/vault/id":                         file(boundToken("prod", "payments", "pay-0", podB)),
		a + "/volumes/kubernetes.io~secret/creds/escape":                           symlink("/etc/shadow"),
		a + "/volumes/kubernetes.io~secret/creds/notes":                            file("not a token"),
		a + "/volumes/kubernetes.io~configmap/app-config/settings.ini":             file("x=1"),
		a + "/volumes/kubernetes.io~empty-dir/cache/bin/tool":                      file("#!/bin/sh\n"),
		a + "/volumes/kubernetes.io~csi/pvc-1/mount":                               {dir: true},
		a + "/volumes/example.com~flex/data/x":                                     file("y"),
		a + "/containers/runner/0a1b2c3d":                                          fileAt("", time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC)),
		a + "/containers/runner/4e5f6a7b":                                          fileAt("OOMKilled: out of memory", time.Date(2026, 11, 26, 11, 0, 0, 0, time.UTC)),
		a + "/etc-hosts":                                                           file("127.0.0.1 localhost\n"),
		a + "/plugins/kubernetes.io~empty-dir/wrapped_kube-api-access-abcde/ready": file(""),
		a + "/volume-subpaths/app-config/runner/0":                                 file(""),
		a + "/stray": file("?"),
		"var/lib/kubelet/pods/" + podB + "/volumes/kubernetes.io~projected/t/token": file(strings.Repeat("x", 100)),
	}) {
		t.Run(s.name, func(t *testing.T) {
			pods, warns := Pods(context.Background(), s.src, PodOptions{})
			if len(warns) != 0 || len(pods) != 2 {
				t.Fatalf("%d pods, warnings %q", len(pods), warns)
			}
			p := pods[0]
			if p.UID != podA || p.Namespace != "ops" || p.Name != "runner-7f" || p.NameFrom != "token" {
				t.Errorf("pod naming %+v", p)
			}
			var vols []string
			for _, v := range p.Volumes {
				vols = append(vols, v.Kind+":"+v.Name)
			}
			if strings.Join(vols, ",") != "other:data,configmap:app-config,csi:pvc-1,empty_dir:cache,projected:kube-api-access-abcde,secret:creds,secret:deployer-token-x1" {
				t.Errorf("volumes %s", vols)
			}
			for _, v := range p.Volumes {
				if v.Kind == VolProjected && (strings.Join(v.Entries, ",") != "ca.crt,namespace,token" || v.Namespace != "ops") {
					t.Errorf("projected %+v", v)
				}
				if v.Kind == VolEmptyDir && (!v.Writable || v.Files != 1) {
					t.Errorf("emptyDir %+v", v)
				}
			}
			if len(p.Tokens) != 3 {
				t.Fatalf("tokens %+v", p.Tokens)
			}
			bound := p.Tokens[0]
			if bound.RelPath != "token" || bound.EvidencePath != "/"+proj+"/"+ts+"/token" || bound.Path != "/"+proj+"/token" ||
				bound.Claims.NodeName != "worker-1" || !bound.Claims.Expires.Equal(time.Unix(1795752007, 500000000)) ||
				!bound.Claims.WarnAfter.Equal(time.Unix(1795751000, 0)) || strings.Join(bound.Claims.Audience, ",") != "https://kubernetes.default.svc" {
				t.Errorf("bound token %+v", bound)
			}
			if o := p.Tokens[1]; o.RelPath != "vault/id" || o.Claims.PodUID != podB || o.Volume != "creds" {
				t.Errorf("other pod's token %+v", o)
			}
			if l := p.Tokens[2]; !l.Claims.Legacy || l.Claims.Namespace != "ops" || l.Claims.ServiceAccount != "deployer" || l.Claims.SecretName != "deployer-token-x1" || !l.Claims.Expires.IsZero() {
				t.Errorf("legacy token %+v", l)
			}
			if !strings.Contains(strings.Join(evidence.WarningLines(p.Warnings), "\n"), "creds/escape: a link out of the volume, to /etc/shadow") {
				t.Errorf("pod warnings %q", p.Warnings)
			}
			// The warning keeps the file it is about, typed.
			escape := evidence.Warning{File: "/" + a + "/volumes/kubernetes.io~secret/creds/escape", Offset: -1, Msg: "a link out of the volume, to /etc/shadow (not read)"}
			if !slices.Contains(p.Warnings, escape) {
				t.Errorf("pod warnings %#v, want %#v", p.Warnings, escape)
			}
			if len(p.Containers) != 1 || len(p.Containers[0].Starts) != 2 || p.Containers[0].Starts[1].Message != "OOMKilled: out of memory" {
				t.Errorf("containers %+v", p.Containers)
			}
			if len(p.VolumeSubpaths) != 1 || len(p.Plugins) != 1 || len(p.Other) != 1 || p.EtcHosts == nil {
				t.Errorf("pod dir %+v", p)
			}
			if got := kinds(PodFindings(&p)); got != "info:service_account_token,info:service_account_token,high:token_of_another_pod,info:service_account_token,low:non_expiring_token" {
				t.Errorf("findings %s", got)
			}
			q := pods[1]
			if q.NameFrom != "" || len(q.Tokens) != 1 || q.Tokens[0].TokenSHA256 != "" || len(q.Tokens[0].Warnings) != 1 {
				t.Fatalf("pod B %+v", q)
			}
			// A token that is not a JWT: the warning is about the token
			// file, at its first byte.
			tw := q.Tokens[0].Warnings[0]
			if tw.File != "/var/lib/kubelet/pods/"+podB+"/volumes/kubernetes.io~projected/t/token" || tw.Offset != 0 || !strings.HasPrefix(tw.Msg, "token: ") ||
				tw.String() != tw.File+": offset 0: "+tw.Msg {
				t.Errorf("token warning %#v", tw)
			}
			if f := PodFindings(&q); len(f) != 1 || !strings.HasSuffix(f[0].Why, "is not a readable service-account token: "+tw.String()) {
				t.Errorf("pod B finding %+v", f)
			}
			if got := kinds(PodFindings(&q)); got != "low:unreadable_token" {
				t.Errorf("pod B findings %s", got)
			}
			ev := PodEvents(&p)
			var starts, exps int
			for _, e := range ev {
				if e.What == "started" && e.Container == "runner" {
					starts++
				}
				if e.What == "exp" {
					exps++
				}
			}
			if starts != 2 || exps != 3-1 {
				t.Errorf("events: %d starts, %d exp", starts, exps)
			}
		})
	}
}

func TestContainerMounts(t *testing.T) {
	root := "data/kubelet/pods/" + podA
	for _, s := range trees(t, map[string]node{
		root + "/volumes/kubernetes.io~empty-dir/cache/x":                 file("1"),
		root + "/volumes/kubernetes.io~empty-dir/scratch/y":               file("2"),
		root + "/volumes/kubernetes.io~secret/tls/tls.crt":                file("c"),
		root + "/volumes/kubernetes.io~projected/kube-api-access-q/token": file("t"),
		root + "/etc-hosts":          file("h"),
		root + "/containers/web/abc": file(""),
		"etc/passwd":                 file("root:x:0:0::/root:/bin/sh\n"),
	}) {
		t.Run(s.name, func(t *testing.T) {
			k := "/var/lib/kubelet/pods/" + podA
			c := &model.Container{ID: "c1", Kind: model.KindContainer, Pod: &model.PodRef{Namespace: "ops", Name: "web", UID: podA}, Spec: &model.Spec{Mounts: []model.SpecMount{
				{Destination: "/proc", Type: "proc", Source: "proc"},
				{Destination: "/cache", Type: "bind", Source: k + "/volumes/kubernetes.io~empty-dir/cache", Options: []string{"rbind", "rprivate", "rw"}},
				{Destination: "/tls", Type: "bind", Source: k + "/volumes/kubernetes.io~secret/tls", Options: []string{"rbind", "ro"}},
				{Destination: "/var/run/secrets/kubernetes.io/serviceaccount", Source: k + "/volumes/kubernetes.io~projected/kube-api-access-q", Options: []string{"rbind", "ro"}},
				{Destination: "/etc/hosts", Type: "bind", Source: k + "/etc-hosts", Options: []string{"rbind", "rw"}},
				{Destination: "/dev/termination-log", Type: "bind", Source: k + "/containers/web/abc", Options: []string{"rbind", "rw"}},
				{Destination: "/host/etc", Type: "bind", Source: "/etc", Options: []string{"rbind", "rw"}},
				{Destination: "/host/missing", Type: "bind", Source: "/srv/missing", Options: []string{"rbind", "ro"}},
			}}}
			ms, warns := ContainerMounts(s.src, c, MountOptions{RootDir: "/data/kubelet"})
			if len(warns) != 0 {
				t.Errorf("warnings %q", warns)
			}
			var got []string
			for _, m := range ms {
				cp := "null"
				if m.ContainerPath != nil {
					cp = *m.ContainerPath
				}
				got = append(got, strings.Join([]string{cp, m.Origin, m.Kind, m.EvidencePath, flag(m.Writable, "w"), flag(m.FromSpec, "spec"), flag(m.Exists, "exists")}, " "))
			}
			want := []string{
				"/cache volume:cache volume /data/kubelet/pods/" + podA + "/volumes/kubernetes.io~empty-dir/cache w spec exists",
				"/tls volume:tls volume /data/kubelet/pods/" + podA + "/volumes/kubernetes.io~secret/tls - spec exists",
				"/var/run/secrets/kubernetes.io/serviceaccount volume:kube-api-access-q volume /data/kubelet/pods/" + podA + "/volumes/kubernetes.io~projected/kube-api-access-q - spec exists",
				"/host/etc host:/etc host_path /etc w spec exists",
				"/host/missing host:/srv/missing host_path  - spec -",
				"null volume:scratch volume /data/kubelet/pods/" + podA + "/volumes/kubernetes.io~empty-dir/scratch w - exists",
			}
			if strings.Join(got, "\n") != strings.Join(want, "\n") {
				t.Errorf("mounts\n got %s\nwant %s", strings.Join(got, "\n"), strings.Join(want, "\n"))
			}
			if !strings.Contains(ms[0].Note, "read at the kubelet root /data/kubelet") {
				t.Errorf("note %q", ms[0].Note)
			}
			if ms[0].ContainerPathOf("x") != "/cache/x" {
				t.Errorf("container path %q", ms[0].ContainerPathOf("x"))
			}
			ms, _ = ContainerMounts(s.src, c, MountOptions{RootDir: "/data/kubelet", IncludeRuntime: true})
			if len(ms) != 8 || ms[3].Origin != "runtime:etc-hosts" || ms[4].Origin != "runtime:termination-log" || !ms[3].Exists {
				t.Errorf("with runtime files: %+v", ms)
			}
			// A single-file mount yields that file.
			var n int
			for vf, err := range VolumeFiles(s.src, Mount{EvidencePath: "/etc/passwd"}) {
				if err != nil || vf.RelPath != "" || vf.Stat.Size != 26 {
					t.Errorf("file mount %+v %v", vf, err)
				}
				n++
			}
			// Stopping early stops the walk.
			for range WalkDir(s.src, "/data") {
				n++
				break
			}
			if n != 2 {
				t.Errorf("%d entries", n)
			}
			for _, err := range VolumeFiles(s.src, Mount{}) {
				if err == nil {
					t.Error("no error for a mount not in the evidence")
				}
			}
		})
	}
}

func flag(b bool, s string) string {
	if b {
		return s
	}
	return "-"
}
