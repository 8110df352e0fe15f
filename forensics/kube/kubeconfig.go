package kube

import (
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"path"
	"regexp"
	"sort"
	"strings"

	"github.com/deadnode/deadnode/evidence"
	"github.com/deadnode/deadnode/forensics/internal/pathutil"
	"github.com/deadnode/deadnode/forensics/model"
)

// Kubeconfig is a kubeconfig the kubelet uses. Credentials are described,
// never copied: a token is "<redacted, N bytes>", a private key is only
// said to be present.
type Kubeconfig struct {
	FileInfo
	Role           string             `json:"role"`   // kubeconfig, bootstrap_kubeconfig
	Source         string             `json:"source"` // the setting that names it ("--kubeconfig")
	CurrentContext string             `json:"current_context"`
	Clusters       []KubeCluster      `json:"clusters"`
	Users          []KubeUser         `json:"users"`
	Contexts       []KubeContext      `json:"contexts"`
	Warnings       []evidence.Warning `json:"warnings"`
}

// KubeCluster is a cluster entry.
type KubeCluster struct {
	Name                  string    `json:"name"`
	Server                string    `json:"server"`
	CA                    string    `json:"ca"` // a path, "embedded", or "" (system roots)
	CAFile                *FileInfo `json:"ca_file,omitempty"`
	CACert                *CertInfo `json:"ca_cert,omitempty"`
	InsecureSkipTLSVerify bool      `json:"insecure_skip_tls_verify"`
	TLSServerName         string    `json:"tls_server_name,omitempty"`
	ProxyURL              string    `json:"proxy_url,omitempty"`
}

// KubeUser is a user entry and the kind of credential it holds.
type KubeUser struct {
	Name string `json:"name"`
	// Credential is client_cert_file, client_cert_embedded, token,
	// token_file, basic_auth, exec, auth_provider or none (several are
	// joined with "+").
	Credential        string        `json:"credential"`
	ClientCertificate string        `json:"client_certificate,omitempty"` // path or "embedded"
	ClientCertFile    *FileInfo     `json:"client_certificate_file,omitempty"`
	ClientCert        *CertInfo     `json:"client_cert,omitempty"`
	ClientKey         string        `json:"client_key,omitempty"` // path or "embedded, N bytes"
	ClientKeyFile     *FileInfo     `json:"client_key_file,omitempty"`
	Token             string        `json:"token,omitempty"` // "<redacted, N bytes>"
	TokenFile         string        `json:"token_file,omitempty"`
	Username          string        `json:"username,omitempty"`
	Password          string        `json:"password,omitempty"` // "<redacted, N bytes>"
	Exec              *ExecPlugin   `json:"exec,omitempty"`
	AuthProvider      *AuthProvider `json:"auth_provider,omitempty"`
}

// ExecPlugin is a client-go credential plugin: what it runs.
type ExecPlugin struct {
	Command    string   `json:"command"`
	Args       []string `json:"args"`      // values of token/secret/password/key flags redacted
	EnvNames   []string `json:"env_names"` // values withheld
	APIVersion string   `json:"api_version"`
}

// AuthProvider is a legacy auth provider (gcp, oidc, azure).
type AuthProvider struct {
	Name       string   `json:"name"`
	ConfigKeys []string `json:"config_keys"` // values withheld
}

// KubeContext is a context entry.
type KubeContext struct {
	Name      string `json:"name"`
	Cluster   string `json:"cluster"`
	User      string `json:"user"`
	Namespace string `json:"namespace,omitempty"`
}

// CertInfo describes an X.509 certificate (never a key).
type CertInfo struct {
	Subject   string     `json:"subject"`
	Issuer    string     `json:"issuer"`
	Serial    string     `json:"serial"`
	NotBefore model.Time `json:"not_before"`
	NotAfter  model.Time `json:"not_after"`
	SHA256    string     `json:"sha256"` // of the DER certificate
	IsCA      bool       `json:"is_ca"`
}

func redacted(s string) string { return fmt.Sprintf("<redacted, %d bytes>", len(s)) }

// ReadKubeconfig reads the kubeconfig at name (a path of the node).
func ReadKubeconfig(src evidence.Source, name, role, source string) Kubeconfig {
	k := Kubeconfig{Role: role, Source: source}
	n, err := hostPath(name, "/")
	if err != nil {
		k.FileInfo = FileInfo{Path: name}
		w := evidence.Warnf(name, -1, "%v", err)
		if name == "" {
			w = evidence.Warnf("", -1, ": %v", err) // as "<name>: <err>" printed it
		}
		k.Warnings = append(k.Warnings, w)
		return k
	}
	b, fi, err := readSmall(src, n, MaxConfigBytes)
	k.FileInfo = fi
	if err != nil {
		if !notExist(err) {
			k.Warnings = append(k.Warnings, evidence.WarningOf(err))
		}
		return k
	}
	doc, err := decodeYAML(b)
	if err != nil {
		k.Warnings = append(k.Warnings, evidence.WarningOf(&evidence.FormatError{File: pathutil.Abs(n), Offset: -1, Msg: "not a kubeconfig", Err: err}))
		return k
	}
	parseKubeconfig(src, &k, doc, path.Dir(n))
	return k
}

func parseKubeconfig(src evidence.Source, k *Kubeconfig, doc map[string]any, dir string) {
	k.CurrentContext = getString(doc, "current-context")
	for _, v := range getList(doc, "clusters") {
		e, _ := v.(map[string]any)
		c := KubeCluster{Name: getString(e, "name")}
		cl := getMap(e, "cluster")
		c.Server = getString(cl, "server")
		c.TLSServerName = getString(cl, "tls-server-name")
		c.ProxyURL = getString(cl, "proxy-url")
		c.InsecureSkipTLSVerify, _ = getBool(cl, "insecure-skip-tls-verify")
		if d := getString(cl, "certificate-authority-data"); d != "" {
			c.CA = "embedded"
			if raw, err := base64.StdEncoding.DecodeString(d); err == nil {
				c.CACert = firstCert(raw)
			}
		} else if p := getString(cl, "certificate-authority"); p != "" {
			c.CA = p
			fi, raw := refFile(src, p, dir)
			c.CAFile = &fi
			c.CACert = firstCert(raw)
		}
		k.Clusters = append(k.Clusters, c)
	}
	for _, v := range getList(doc, "users") {
		e, _ := v.(map[string]any)
		u := KubeUser{Name: getString(e, "name")}
		us := getMap(e, "user")
		var kinds []string
		if d := getString(us, "client-certificate-data"); d != "" {
			u.ClientCertificate = "embedded"
			kinds = append(kinds, "client_cert_embedded")
			if raw, err := base64.StdEncoding.DecodeString(d); err == nil {
				u.ClientCert = firstCert(raw)
			}
		} else if p := getString(us, "client-certificate"); p != "" {
			u.ClientCertificate = p
			kinds = append(kinds, "client_cert_file")
			fi, raw := refFile(src, p, dir)
			u.ClientCertFile = &fi
			u.ClientCert = firstCert(raw)
		}
		if d := getString(us, "client-key-data"); d != "" {
			u.ClientKey = fmt.Sprintf("embedded, %d bytes", len(d))
		} else if p := getString(us, "client-key"); p != "" {
			u.ClientKey = p
			fi, _ := refStat(src, p, dir)
			u.ClientKeyFile = &fi
		}
		if t := getString(us, "token"); t != "" {
			u.Token = redacted(t)
			kinds = append(kinds, "token")
		}
		if p := getString(us, "tokenFile"); p != "" {
			u.TokenFile = p
			kinds = append(kinds, "token_file")
		}
		if n := getString(us, "username"); n != "" {
			u.Username = n
			u.Password = redacted(getString(us, "password"))
			kinds = append(kinds, "basic_auth")
		}
		if ex := getMap(us, "exec"); ex != nil {
			p := &ExecPlugin{Command: getString(ex, "command"), Args: redactArgs(getStrings(ex, "args")), APIVersion: getString(ex, "apiVersion")}
			for _, ev := range getList(ex, "env") {
				em, _ := ev.(map[string]any)
				p.EnvNames = append(p.EnvNames, getString(em, "name"))
			}
			u.Exec = p
			kinds = append(kinds, "exec")
		}
		if ap := getMap(us, "auth-provider"); ap != nil {
			a := &AuthProvider{Name: getString(ap, "name")}
			for key := range getMap(ap, "config") {
				a.ConfigKeys = append(a.ConfigKeys, key)
			}
			sort.Strings(a.ConfigKeys)
			u.AuthProvider = a
			kinds = append(kinds, "auth_provider")
		}
		if len(kinds) == 0 {
			kinds = []string{"none"}
		}
		u.Credential = strings.Join(kinds, "+")
		k.Users = append(k.Users, u)
	}
	for _, v := range getList(doc, "contexts") {
		e, _ := v.(map[string]any)
		k.Contexts = append(k.Contexts, KubeContext{Name: getString(e, "name"), Cluster: getString(e, "context", "cluster"),
			User: getString(e, "context", "user"), Namespace: getString(e, "context", "namespace")})
	}
}

var secretArg = regexp.MustCompile(`(?i)(token|secret|password|passwd|key|credential)`)

// redactArgs withholds the values of flags whose name says they are
// secret (--token=x, --token x).
func redactArgs(args []string) []string {
	out := make([]string, len(args))
	for i := 0; i < len(args); i++ {
		a := args[i]
		if strings.HasPrefix(a, "-") && secretArg.MatchString(a) {
			if k, v, ok := strings.Cut(a, "="); ok {
				out[i] = k + "=" + redacted(v)
				continue
			}
			out[i] = a
			if i+1 < len(args) && !strings.HasPrefix(args[i+1], "-") {
				i++
				out[i] = redacted(args[i])
			}
			continue
		}
		out[i] = a
	}
	return out
}

// refFile reads a file a kubeconfig names (relative to the kubeconfig's
// directory), bounded; it returns nothing of a file that is too large.
func refFile(src evidence.Source, p, dir string) (FileInfo, []byte) {
	n, err := hostPath(p, dir)
	if err != nil {
		return FileInfo{Path: p}, nil
	}
	b, fi, err := readSmall(src, n, MaxConfigBytes)
	if err != nil {
		return fi, nil
	}
	return fi, b
}

// refStat stats a file a kubeconfig names without reading it (a key).
func refStat(src evidence.Source, p, dir string) (FileInfo, error) {
	n, err := hostPath(p, dir)
	if err != nil {
		return FileInfo{Path: p}, err
	}
	fi, _, _, err := statPath(src, n)
	return fi, err
}

// firstCert describes the first CERTIFICATE block of a PEM bundle; key
// blocks are skipped unread.
func firstCert(b []byte) *CertInfo {
	for len(b) > 0 {
		var blk *pem.Block
		blk, b = pem.Decode(b)
		if blk == nil {
			return nil
		}
		if blk.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(blk.Bytes)
		if err != nil {
			return nil
		}
		sum := sha256.Sum256(blk.Bytes)
		return &CertInfo{Subject: c.Subject.String(), Issuer: c.Issuer.String(), Serial: c.SerialNumber.String(),
			NotBefore: model.T(c.NotBefore), NotAfter: model.T(c.NotAfter), SHA256: hex.EncodeToString(sum[:]), IsCA: c.IsCA}
	}
	return nil
}
