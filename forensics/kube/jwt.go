package kube

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/deadnode/deadnode/forensics/model"
)

// JWT is a decoded JSON Web Token. The signature is never verified and
// the token is never kept: SHA256 (of the token as written, whitespace
// trimmed) is the pivot to find it elsewhere (audit logs, other nodes).
type JWT struct {
	Header         JWTHeader `json:"header"`
	Claims         JWTClaims `json:"claims"`
	SignatureBytes int       `json:"signature_bytes"`
	SHA256         string    `json:"sha256"`
	Bytes          int       `json:"bytes"`
}

// JWTHeader is the JOSE header.
type JWTHeader struct {
	Alg string `json:"alg"`
	Kid string `json:"kid"`
	Typ string `json:"typ,omitempty"`
}

// JWTClaims are the claims an examiner reads from a Kubernetes
// service-account token: the standard ones and the kubernetes.io private
// claims (bound tokens), or the legacy secret-based ones.
type JWTClaims struct {
	Issuer    string     `json:"iss"`
	Subject   string     `json:"sub"`
	Audience  []string   `json:"aud"`
	IssuedAt  model.Time `json:"iat"`
	NotBefore model.Time `json:"nbf"`
	Expires   model.Time `json:"exp"`
	ID        string     `json:"jti,omitempty"`
	// Kubernetes claims.
	Namespace         string     `json:"namespace"`
	ServiceAccount    string     `json:"service_account"`
	ServiceAccountUID string     `json:"service_account_uid"`
	PodName           string     `json:"pod_name,omitempty"`
	PodUID            string     `json:"pod_uid,omitempty"`
	SecretName        string     `json:"secret_name,omitempty"`
	NodeName          string     `json:"node_name,omitempty"`
	NodeUID           string     `json:"node_uid,omitempty"`
	WarnAfter         model.Time `json:"warn_after"`
	// Legacy is true for a secret-based token (kubernetes/serviceaccount
	// issuer, no expiry).
	Legacy bool `json:"legacy"`
}

// ErrNotJWT is returned by DecodeJWT for input that is not a compact JWS.
var ErrNotJWT = errors.New("not a JWT (three base64url segments, a JSON header with alg)")

// DecodeJWT decodes a compact JWS without verifying it. Input over
// MaxTokenBytes is refused.
func DecodeJWT(b []byte) (*JWT, error) {
	b = bytes.TrimSpace(b)
	if len(b) > MaxTokenBytes {
		return nil, fmt.Errorf("token is %d bytes, over the %d-byte limit", len(b), MaxTokenBytes)
	}
	parts := bytes.Split(b, []byte("."))
	if len(parts) != 3 || len(parts[0]) == 0 || len(parts[1]) == 0 {
		return nil, ErrNotJWT
	}
	hdr, err := b64url(parts[0])
	if err != nil {
		return nil, fmt.Errorf("%w: header: %v", ErrNotJWT, err)
	}
	payload, err := b64url(parts[1])
	if err != nil {
		return nil, fmt.Errorf("%w: payload: %v", ErrNotJWT, err)
	}
	sig, err := b64url(parts[2])
	if err != nil {
		return nil, fmt.Errorf("%w: signature: %v", ErrNotJWT, err)
	}
	sum := sha256.Sum256(b)
	t := &JWT{SignatureBytes: len(sig), SHA256: hex.EncodeToString(sum[:]), Bytes: len(b)}
	var h map[string]any
	if err := json.Unmarshal(hdr, &h); err != nil {
		return nil, fmt.Errorf("%w: header: %v", ErrNotJWT, err)
	}
	t.Header.Alg, _ = h["alg"].(string)
	t.Header.Kid, _ = h["kid"].(string)
	t.Header.Typ, _ = h["typ"].(string)
	if t.Header.Alg == "" {
		return nil, fmt.Errorf("%w: header has no alg", ErrNotJWT)
	}
	d := json.NewDecoder(bytes.NewReader(payload))
	d.UseNumber()
	var c map[string]any
	if err := d.Decode(&c); err != nil {
		return t, fmt.Errorf("payload: %v", err)
	}
	cl := &t.Claims
	cl.Issuer, _ = c["iss"].(string)
	cl.Subject, _ = c["sub"].(string)
	cl.ID, _ = c["jti"].(string)
	switch a := c["aud"].(type) {
	case string:
		cl.Audience = []string{a}
	case []any:
		for _, x := range a {
			if s, ok := x.(string); ok {
				cl.Audience = append(cl.Audience, s)
			}
		}
	}
	cl.IssuedAt, cl.NotBefore, cl.Expires = numericDate(c["iat"]), numericDate(c["nbf"]), numericDate(c["exp"])
	if k, ok := c["kubernetes.io"].(map[string]any); ok {
		cl.Namespace = getString(k, "namespace")
		cl.ServiceAccount = getString(k, "serviceaccount", "name")
		cl.ServiceAccountUID = getString(k, "serviceaccount", "uid")
		cl.PodName, cl.PodUID = getString(k, "pod", "name"), getString(k, "pod", "uid")
		cl.SecretName = getString(k, "secret", "name")
		cl.NodeName, cl.NodeUID = getString(k, "node", "name"), getString(k, "node", "uid")
		cl.WarnAfter = numericDate(k["warnafter"])
	}
	if cl.Namespace == "" {
		// Legacy secret-based tokens (issuer kubernetes/serviceaccount).
		cl.Namespace, _ = c["kubernetes.io/serviceaccount/namespace"].(string)
		cl.ServiceAccount, _ = c["kubernetes.io/serviceaccount/service-account.name"].(string)
		cl.ServiceAccountUID, _ = c["kubernetes.io/serviceaccount/service-account.uid"].(string)
		cl.SecretName, _ = c["kubernetes.io/serviceaccount/secret.name"].(string)
		cl.Legacy = cl.Namespace != "" || cl.Issuer == "kubernetes/serviceaccount"
	}
	if cl.ServiceAccount == "" && strings.HasPrefix(cl.Subject, "system:serviceaccount:") {
		parts := strings.SplitN(strings.TrimPrefix(cl.Subject, "system:serviceaccount:"), ":", 2)
		if len(parts) == 2 {
			if cl.Namespace == "" {
				cl.Namespace = parts[0]
			}
			cl.ServiceAccount = parts[1]
		}
	}
	return t, nil
}

func b64url(b []byte) ([]byte, error) {
	s := strings.TrimRight(string(b), "=")
	return base64.RawURLEncoding.DecodeString(s)
}

// numericDate reads a JWT NumericDate (seconds, maybe fractional).
func numericDate(v any) model.Time {
	n, ok := v.(json.Number)
	if !ok {
		return model.Time{}
	}
	if i, err := n.Int64(); err == nil {
		if i < -62135596800 || i > 253402300799 { // years 1..9999
			return model.Time{}
		}
		return model.T(time.Unix(i, 0).UTC())
	}
	f, err := n.Float64()
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) || f < -62135596800 || f > 253402300799 {
		return model.Time{}
	}
	sec, frac := math.Modf(f)
	return model.T(time.Unix(int64(sec), int64(frac*1e9)).UTC())
}
