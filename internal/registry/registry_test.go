package registry

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/releasekit/terraform-provider-release/internal/imageref"
)

func TestParseChallenge(t *testing.T) {
	scheme, params := parseChallenge(`Bearer realm="https://auth.example.com/token",service="registry.example.com",scope="repository:shop/web:pull"`)
	if scheme != "Bearer" || params["realm"] != "https://auth.example.com/token" || params["service"] != "registry.example.com" || params["scope"] != "repository:shop/web:pull" {
		t.Errorf("got %q %v", scheme, params)
	}
	scheme, params = parseChallenge(`Basic realm="Registry Realm"`)
	if scheme != "Basic" || params["realm"] != "Registry Realm" {
		t.Errorf("got %q %v", scheme, params)
	}
	_, params = parseChallenge(`Bearer realm="a\"b", service=plain`)
	if params["realm"] != `a"b` || params["service"] != "plain" {
		t.Errorf("escapes and unquoted values: %v", params)
	}
}

func TestIsLoopback(t *testing.T) {
	for host, want := range map[string]bool{
		"127.0.0.1:5000": true, "localhost": true, "localhost:5000": true, "[::1]:5000": true, "127.1.2.3": true,
		"registry.example.com": false, "10.0.0.1:5000": false, "localhost.example.com": false,
	} {
		if got := isLoopback(host); got != want {
			t.Errorf("isLoopback(%q) = %v", host, got)
		}
	}
}

func TestDockerConfigLookup(t *testing.T) {
	dir := t.TempDir()
	cfg := `{"auths":{"https://registry.example.com/v1/":{"auth":"` + base64.StdEncoding.EncodeToString([]byte("alice:s3cr:et")) + `"},
	"other.example.com":{"identitytoken":"refresh"}}}`
	p := filepath.Join(dir, "config.json")
	if err := os.WriteFile(p, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	dc, err := LoadDockerConfig(p, false)
	if err != nil {
		t.Fatal(err)
	}
	c, ok, err := dc.Lookup("registry.example.com")
	if err != nil || !ok || c.Username != "alice" || c.Password != "s3cr:et" {
		t.Errorf("auths entry: %+v %v %v", c, ok, err)
	}
	c, ok, _ = dc.Lookup("other.example.com")
	if !ok || c.IdentityToken != "refresh" {
		t.Errorf("identity token: %+v %v", c, ok)
	}
	if _, ok, _ := dc.Lookup("unknown.example.com"); ok {
		t.Error("found credentials for an unknown registry")
	}
	if _, err := LoadDockerConfig(filepath.Join(dir, "missing.json"), true); err != nil {
		t.Errorf("an optional missing config is no error: %v", err)
	}
	if _, err := LoadDockerConfig(filepath.Join(dir, "missing.json"), false); err == nil {
		t.Error("a required missing config must be an error")
	}
}

// TestBearerTokenFlow exercises the token handshake of the distribution
// spec, which the acceptance stack's registries (plain and basic auth) do not use.
func TestBearerTokenFlow(t *testing.T) {
	manifest := []byte(`{"schemaVersion":2,"mediaType":"` + MediaTypeOCIManifest + `","config":{"digest":"sha256:00"}}`)
	sum := sha256.Sum256(manifest)
	digest := "sha256:" + hex.EncodeToString(sum[:])
	var tokenRequests int
	var srv *httptest.Server
	srv = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/token":
			tokenRequests++
			user, pass, _ := r.BasicAuth()
			if user != "bob" || pass != "pw" || r.URL.Query().Get("scope") != "repository:shop/web:pull" || r.URL.Query().Get("service") != "reg" {
				w.WriteHeader(http.StatusUnauthorized)
				return
			}
			_ = json.NewEncoder(w).Encode(map[string]string{"token": "t0k"})
		case "/v2/shop/web/manifests/1.0":
			if r.Header.Get("Authorization") != "Bearer t0k" {
				w.Header().Set("WWW-Authenticate", `Bearer realm="`+srv.URL+`/token",service="reg",scope="repository:shop/web:pull"`)
				w.WriteHeader(http.StatusUnauthorized)
				return
			}
			w.Header().Set("Content-Type", MediaTypeOCIManifest)
			w.Header().Set("Docker-Content-Digest", digest)
			_, _ = w.Write(manifest)
		default:
			w.WriteHeader(http.StatusNotFound)
		}
	}))
	defer srv.Close()
	host := strings.TrimPrefix(srv.URL, "https://")

	c := NewClient(StaticCredentials{host: {Username: "bob", Password: "pw"}})
	c.HTTP = srv.Client()
	q := Query{Repository: imageref.Repository{Host: host, Path: "shop/web"}, Tag: "1.0"}
	for i := 0; i < 2; i++ {
		res, err := c.Resolve(context.Background(), q)
		if err != nil {
			t.Fatal(err)
		}
		if res.Digest != digest {
			t.Fatalf("digest %s, want %s", res.Digest, digest)
		}
	}
	if tokenRequests != 1 {
		t.Errorf("the token was fetched %d times, want once and then reused", tokenRequests)
	}

	c = NewClient(StaticCredentials{host: {Username: "bob", Password: "wrong"}})
	c.HTTP = srv.Client()
	_, err := c.Resolve(context.Background(), q)
	var re *Error
	if !errors.As(err, &re) || re.Kind != KindUnauthorized {
		t.Errorf("wrong password: got %v, want an access refused error", err)
	}
}

func TestPlatformMatches(t *testing.T) {
	arm := imageref.Platform{OS: "linux", Architecture: "arm64", Variant: "v8"}
	if !platformMatches(imageref.Platform{OS: "linux", Architecture: "arm64"}, arm) {
		t.Error("a platform without variant must match any variant")
	}
	if platformMatches(imageref.Platform{OS: "linux", Architecture: "arm64", Variant: "v7"}, arm) {
		t.Error("a different variant matched")
	}
	if platformMatches(imageref.Platform{OS: "linux", Architecture: "amd64"}, arm) {
		t.Error("a different architecture matched")
	}
}
