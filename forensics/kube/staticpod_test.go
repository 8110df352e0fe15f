package kube

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/deadnode/deadnode/evidence"
	"github.com/deadnode/deadnode/forensics/model"
)

// kubeadm's kube-apiserver manifest, trimmed to what is judged (as JSON:
// the kubelet reads JSON manifests as well).
const apiserverJSON = `{"apiVersion":"v1","kind":"Pod","metadata":{"name":"kube-apiserver","namespace":"kube-system"},
"spec":{"hostNetwork":true,"priorityClassName":"system-node-critical",
"containers":[{"name":"kube-apiserver","image":"registry.k8s.io/kube-apiserver:v1.30.2","command":["kube-apiserver","--advertise-address=10.0.0.10"],
"volumeMounts":[{"name":"ca-certs","mountPath":"/etc/ssl/certs","readOnly":true},{"name":"etc-pki","mountPath":"/etc/pki","readOnly":true},
{"name":"k8s-certs","mountPath":"/etc/kubernetes/pki","readOnly":true},{"name":"usr-share-ca-certificates","mountPath":"/usr/share/ca-certificates","readOnly":true}]}],
"volumes":[{"name":"ca-certs","hostPath":{"path":"/etc/ssl/certs","type":"DirectoryOrCreate"}},{"name":"etc-pki","hostPath":{"path":"/etc/pki","type":"DirectoryOrCreate"}},
{"name":"k8s-certs","hostPath":{"path":"/etc/kubernetes/pki","type":"DirectoryOrCreate"}},{"name":"usr-share-ca-certificates","hostPath":{"path":"/usr/share/ca-certificates","type":"DirectoryOrCreate"}}]}}`

const fakeProxy = `apiVersion: v1
kind: Pod
metadata:
  name: kube-proxy
  namespace: kube-system
spec:
  hostNetwork: true
  containers:
  - name: kube-proxy
    image: docker.io/k8sproxy/kube-proxy:v1.30.2
    securityContext:
      privileged: true
`

const etcdWithRoot = `apiVersion: v1
kind: Pod
metadata: {name: etcd, namespace: kube-system}
spec:
  hostNetwork: true
  containers:
  - name: etcd
    image: registry.k8s.io/etcd:3.5.12-0
    volumeMounts: [{name: data, mountPath: /var/lib/etcd}, {name: root, mountPath: /rootfs}]
  volumes:
  - {name: data, hostPath: {path: /var/lib/etcd}}
  - {name: root, hostPath: {path: /}}
`

const multiDoc = `---
apiVersion: v1
kind: Pod
metadata: {name: plain, namespace: web}
spec:
  containers: [{name: c, image: nginx:1.27}]
---
# a second pod the kubelet never reads
apiVersion: v1
kind: Pod
metadata: {name: second}
spec:
  hostPID: true
  containers:
  - name: c
    image: evil.example/x:1
    securityContext:
      capabilities:
        add: [CAP_SYS_ADMIN, NET_RAW]
`

const capsPod = `apiVersion: v1
kind: Pod
metadata: {name: debug, namespace: default}
spec:
  hostPID: true
  containers:
  - name: c
    image: busybox
    args: ["sleep", "infinity"]
    securityContext:
      capabilities: {add: [SYS_PTRACE]}
`

const hiddenPod = `apiVersion: v1
kind: Pod
metadata: {name: hidden, namespace: kube-system}
spec:
  hostPID: true
  hostNetwork: true
  containers:
  - {name: c, image: evil.example/x:1, securityContext: {privileged: true}}
`

func TestStaticPods(t *testing.T) {
	for _, s := range trees(t, map[string]node{
		"etc/kubernetes/manifests/kube-apiserver.json": file(apiserverJSON),
		"etc/kubernetes/manifests/kube-proxy.yaml":     file(fakeProxy),
		"etc/kubernetes/manifests/etcd.yaml":           file(etcdWithRoot),
		"etc/kubernetes/manifests/multi.yaml":          file(multiDoc),
		"etc/kubernetes/manifests/debug.yaml":          symlink("/opt/staged/debug.yaml"),
		"opt/staged/debug.yaml":                        file(capsPod),
		"etc/kubernetes/manifests/.hidden.yaml":        file(hiddenPod),
		"etc/kubernetes/manifests/broken.yaml":         file("apiVersion: v1\nkind: Pod\nmetadata: {name: [unclosed\n"),
		"etc/kubernetes/manifests/loop.yaml":           symlink("loop.yaml"),
		"etc/kubernetes/manifests/sub/inner.yaml":      file(hiddenPod),
	}) {
		t.Run(s.name, func(t *testing.T) {
			pods, warns := StaticPods(context.Background(), s.src, StaticPodOptions{Configured: false})
			type row struct {
				file, name, known string
				doc               int
				sev               model.Severity
				ignored           bool
			}
			var got []row
			for _, p := range pods {
				got = append(got, row{strings.TrimPrefix(p.Path, "/etc/kubernetes/manifests/"), p.Name, p.KnownComponent, p.Document, p.Severity, p.IgnoredByKubelet})
				if p.Configured || !strings.Contains(p.Why, "does not name this directory") {
					t.Errorf("%s: not configured, why %q", p.Path, p.Why)
				}
			}
			want := []row{
				{".hidden.yaml", "hidden", "", 0, model.SeverityMedium, true},
				{"broken.yaml", "", "", 0, model.SeverityLow, false},
				{"debug.yaml", "debug", "", 0, model.SeverityCritical, false},
				{"etcd.yaml", "etcd", "etcd", 0, model.SeverityHigh, false},
				{"kube-apiserver.json", "kube-apiserver", "kube-apiserver", 0, model.SeverityInfo, false},
				{"kube-proxy.yaml", "kube-proxy", "", 0, model.SeverityHigh, false},
				{"multi.yaml", "plain", "", 1, model.SeverityMedium, false},
				{"multi.yaml", "second", "", 2, model.SeverityMedium, true},
			}
			if len(got) != len(want) {
				t.Fatalf("got %d pods:\n%+v", len(got), got)
			}
			for i := range want {
				if got[i] != want[i] {
					t.Errorf("pod %d: got %+v, want %+v", i, got[i], want[i])
				}
			}
			byName := map[string]StaticPod{}
			for _, p := range pods {
				byName[p.Name] = p
			}
			if d := byName["debug"]; d.EvidencePath != "/opt/staged/debug.yaml" || strings.Join(d.Capabilities, ",") != "SYS_PTRACE" || strings.Join(d.Command, " ") != "sleep infinity" {
				t.Errorf("debug: %+v", d)
			}
			if sec := byName["second"]; strings.Join(sec.Capabilities, ",") != "NET_RAW,SYS_ADMIN" || sec.Namespace != "default" ||
				!strings.Contains(sec.IgnoredWhy, "after the first") {
				t.Errorf("second: %+v", sec)
			}
			if e := byName["etcd"]; !strings.Contains(e.Why, "hostPath / mounted read-write") || strings.Contains(e.Why, "/var/lib/etcd mounted") {
				t.Errorf("etcd why: %s", e.Why)
			}
			if f := byName["kube-apiserver"].Finding(); f.Kind != "static_pod" || f.Severity != model.SeverityInfo {
				t.Errorf("apiserver finding %+v", f)
			}
			if f := byName["kube-proxy"].Finding(); f.Kind != "unknown_static_pod" || !strings.Contains(strings.Join(f.Refs, " "), "attack:T1611") {
				t.Errorf("proxy finding %+v", f)
			}
			if f := byName["etcd"].Finding(); f.Kind != "static_pod_unexpected_access" {
				t.Errorf("etcd finding %+v", f)
			}
			if !strings.Contains(byName[""].Warnings[0].String(), "broken.yaml") {
				t.Errorf("broken: %+v", byName[""])
			}
			if sp := StaticPodFor("kube-system", "kube-apiserver-worker-1", map[string]string{"kubernetes.io/config.source": "file"}, pods); sp == nil || sp.Name != "kube-apiserver" {
				t.Errorf("static pod for the apiserver: %+v", sp)
			}
			if sp := StaticPodFor("kube-system", "kube-apiserver-worker-1", map[string]string{"kubernetes.io/config.source": "api"}, pods); sp != nil {
				t.Errorf("an API pod matched %+v", sp)
			}
			if sp := StaticPodFor("kube-system", "hidden-worker-1", nil, pods); sp != nil {
				t.Errorf("an ignored manifest matched %+v", sp)
			}
			w := strings.Join(evidence.WarningLines(warns), "\n")
			if !strings.Contains(w, "loop.yaml: ") || !strings.Contains(w, "sub: a directory") {
				t.Errorf("warnings %q", warns)
			}
		})
	}
}

func TestImageRepo(t *testing.T) {
	for in, want := range map[string]string{
		"nginx":                                  "docker.io/library/nginx",
		"nginx:1.27":                             "docker.io/library/nginx",
		"logshipr/agent:0.9":                     "docker.io/logshipr/agent",
		"registry.k8s.io/etcd:3.5.12-0":          "registry.k8s.io/etcd",
		"localhost:5000/x/y:1@sha256:abcd":       "localhost:5000/x/y",
		"registry.k8s.io/kube-proxy@sha256:beef": "registry.k8s.io/kube-proxy",
	} {
		if got := imageRepo(in); got != want {
			t.Errorf("imageRepo(%q) = %q, want %q", in, got, want)
		}
	}
}

func selfSigned(t *testing.T, cn string) (certPEM, keyPEM []byte) {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tpl := &x509.Certificate{SerialNumber: big.NewInt(42), Subject: pkix.Name{CommonName: cn, Organization: []string{"system:nodes"}},
		NotBefore: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), NotAfter: time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)}
	der, err := x509.CreateCertificate(rand.Reader, tpl, tpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	kd, _ := x509.MarshalECPrivateKey(k)
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kd})
}

func TestKubeconfigCredentials(t *testing.T) {
	cert, key := selfSigned(t, "system:node:worker-1")
	secretToken := "s3cr3t-b00tstrap.t0ken-value"
	b64 := func(b []byte) string { return base64.StdEncoding.EncodeToString(b) }
	kc := `apiVersion: v1
kind: Config
current-context: a
clusters:
- name: embedded
  cluster:
    server: https://api.example:6443
    certificate-authority-data: ` + b64(cert) + `
- name: insecure
  cluster: {server: "https://10.9.9.9:6443", insecure-skip-tls-verify: true}
users:
- name: node
  user:
    client-certificate-data: ` + b64(append(append([]byte{}, key...), cert...)) + `
    client-key-data: ` + b64(key) + `
- name: bootstrap
  user: {token: ` + secretToken + `}
- name: plugin
  user:
    exec:
      apiVersion: client.authentication.k8s.io/v1
      command: /tmp/.x/cred
      args: [get-token, --token=` + secretToken + `, --secret, ` + secretToken + `, --cluster, c1]
      env: [{name: AWS_SECRET_ACCESS_KEY, value: ` + secretToken + `}]
- name: legacy
  user:
    auth-provider: {name: oidc, config: {client-secret: ` + secretToken + `, idp-issuer-url: https://id}}
- name: basic
  user: {username: admin, password: ` + secretToken + `}
contexts:
- name: a
  context: {cluster: embedded, user: node}
`
	for _, s := range trees(t, map[string]node{"etc/kubernetes/kubelet.conf": file(kc)}) {
		k := ReadKubeconfig(s.src, "/etc/kubernetes/kubelet.conf", "kubeconfig", "--kubeconfig")
		js, _ := json.Marshal(k)
		for _, secret := range []string{secretToken, string(key), b64(key), "PRIVATE KEY"} {
			if strings.Contains(string(js), secret) {
				t.Fatalf("%s: the report holds a secret: %s", s.name, js)
			}
		}
		if k.Clusters[0].CA != "embedded" || k.Clusters[0].CACert.Subject != "CN=system:node:worker-1,O=system:nodes" || !k.Clusters[1].InsecureSkipTLSVerify {
			t.Errorf("clusters %+v", k.Clusters)
		}
		u := map[string]KubeUser{}
		for _, x := range k.Users {
			u[x.Name] = x
		}
		if n := u["node"]; n.Credential != "client_cert_embedded" || n.ClientCert == nil || n.ClientCert.Serial != "42" ||
			!n.ClientCert.NotAfter.Equal(time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)) || !strings.HasPrefix(n.ClientKey, "embedded, ") {
			t.Errorf("node user %+v", n)
		}
		if b := u["bootstrap"]; b.Credential != "token" || b.Token != "<redacted, 28 bytes>" {
			t.Errorf("bootstrap user %+v", b)
		}
		if p := u["plugin"]; p.Credential != "exec" || p.Exec.Command != "/tmp/.x/cred" ||
			strings.Join(p.Exec.Args, " ") != "get-token --token=<redacted, 28 bytes> --secret <redacted, 28 bytes> --cluster c1" ||
			strings.Join(p.Exec.EnvNames, ",") != "AWS_SECRET_ACCESS_KEY" {
			t.Errorf("plugin user %+v", p.Exec)
		}
		if l := u["legacy"]; l.Credential != "auth_provider" || strings.Join(l.AuthProvider.ConfigKeys, ",") != "client-secret,idp-issuer-url" {
			t.Errorf("legacy user %+v", l)
		}
		if b := u["basic"]; b.Credential != "basic_auth" || b.Password != "<redacted, 28 bytes>" {
			t.Errorf("basic user %+v", b)
		}
		if got := kinds(KubeconfigFindings(k)); got != "medium:kubeconfig_insecure_tls,high:kubeconfig_exec_plugin" {
			t.Errorf("findings %s", got)
		}
	}
}
