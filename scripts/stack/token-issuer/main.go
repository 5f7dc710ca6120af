// Command token-issuer is the token service of the test stack's
// token-auth registry (scripts/stack.sh): the bearer flow that GHCR,
// Docker Hub and GitLab use, so that the provider's registry client and
// the Docker Engine's pulls are tested against a real registry speaking it.
//
// It answers GET /token?service=…&scope=repository:<name>:<actions> with a
// JWT (ES256) for one user, given with HTTP basic auth, granting pull and
// push on every repository asked for. Its signing key and self-signed
// certificate are created in -dir on first start; the registry trusts the
// certificate (auth.token.rootcertbundle). The token's header names the key
// both ways the registry accepts: the certificate (x5c) and its key ID (kid).
// Test infrastructure only: one user, no refresh tokens.
package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base32"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"flag"
	"fmt"
	"log"
	"math/big"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:5003", "listen address")
	dir := flag.String("dir", ".", "directory of the signing key (key.pem) and certificate (cert.pem)")
	user := flag.String("user", "release", "the one user")
	pass := flag.String("password", "", "its password")
	issuer := flag.String("issuer", "release-test-issuer", "the tokens' issuer (auth.token.issuer)")
	flag.Parse()
	key, cert, err := loadOrCreate(*dir)
	if err != nil {
		log.Fatal(err)
	}
	http.HandleFunc("/token", func(w http.ResponseWriter, r *http.Request) {
		u, p, ok := r.BasicAuth()
		if !ok || u != *user || p != *pass {
			w.Header().Set("WWW-Authenticate", `Basic realm="release-test-token"`)
			http.Error(w, `{"details":"wrong user or password"}`, http.StatusUnauthorized)
			return
		}
		q := r.URL.Query()
		var access []map[string]any
		for _, scope := range q["scope"] {
			// repository:<name>:<actions>; the name may hold no colon, the actions are comma separated.
			parts := strings.Split(scope, ":")
			if len(parts) == 3 && parts[0] == "repository" {
				access = append(access, map[string]any{"type": "repository", "name": parts[1], "actions": []string{"pull", "push"}})
			}
		}
		now := time.Now()
		token, err := sign(key, cert, map[string]any{
			"iss": *issuer, "sub": u, "aud": q.Get("service"),
			"exp": now.Add(5 * time.Minute).Unix(), "nbf": now.Add(-time.Minute).Unix(), "iat": now.Unix(),
			"jti": fmt.Sprintf("%d", now.UnixNano()), "access": access,
		})
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"token": token, "access_token": token, "expires_in": 300, "issued_at": now.UTC().Format(time.RFC3339)})
	})
	log.Printf("token-issuer: listening on %s", *addr)
	log.Fatal(http.ListenAndServe(*addr, nil))
}

func sign(key *ecdsa.PrivateKey, cert *x509.Certificate, claims map[string]any) (string, error) {
	header := map[string]any{"typ": "JWT", "alg": "ES256", "kid": keyID(&key.PublicKey), "x5c": []string{base64.StdEncoding.EncodeToString(cert.Raw)}}
	h, err := json.Marshal(header)
	if err != nil {
		return "", err
	}
	c, err := json.Marshal(claims)
	if err != nil {
		return "", err
	}
	signing := b64(h) + "." + b64(c)
	sum := sha256.Sum256([]byte(signing))
	rr, ss, err := ecdsa.Sign(rand.Reader, key, sum[:])
	if err != nil {
		return "", err
	}
	// JWS ES256: r and s, 32 bytes each.
	sig := make([]byte, 64)
	rr.FillBytes(sig[:32])
	ss.FillBytes(sig[32:])
	return signing + "." + b64(sig), nil
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

// keyID is the key's ID as the registry computes it for the keys of its
// root certificates (libtrust): base32 of the first 30 bytes of the SHA-256
// of the key's DER form, in groups of four joined by colons.
func keyID(pub *ecdsa.PublicKey) string {
	der, _ := x509.MarshalPKIXPublicKey(pub)
	sum := sha256.Sum256(der)
	s := strings.TrimRight(base32.StdEncoding.EncodeToString(sum[:30]), "=")
	var groups []string
	for i := 0; i+4 <= len(s); i += 4 {
		groups = append(groups, s[i:i+4])
	}
	return strings.Join(groups, ":")
}

func loadOrCreate(dir string) (*ecdsa.PrivateKey, *x509.Certificate, error) {
	keyPath, certPath := filepath.Join(dir, "key.pem"), filepath.Join(dir, "cert.pem")
	if kb, err := os.ReadFile(keyPath); err == nil {
		cb, err := os.ReadFile(certPath)
		if err != nil {
			return nil, nil, err
		}
		kblock, _ := pem.Decode(kb)
		cblock, _ := pem.Decode(cb)
		if kblock == nil || cblock == nil {
			return nil, nil, fmt.Errorf("%s or %s is not PEM", keyPath, certPath)
		}
		key, err := x509.ParseECPrivateKey(kblock.Bytes)
		if err != nil {
			return nil, nil, err
		}
		cert, err := x509.ParseCertificate(cblock.Bytes)
		return key, cert, err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "release-test-token-issuer"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().AddDate(10, 0, 0),
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign, BasicConstraintsValid: true, IsCA: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, nil, err
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return nil, nil, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, nil, err
	}
	if err := os.WriteFile(keyPath, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		return nil, nil, err
	}
	return key, cert, os.WriteFile(certPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644)
}
