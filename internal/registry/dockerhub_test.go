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
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/releasekit/terraform-provider-release/internal/imageref"
)

// hubServer is an httptest registry standing in for registry-1.docker.io:
// it answers with Docker Hub's token challenge, its token endpoint wants
// the login `docker login` stored, and it counts requests by method.
type hubServer struct {
	*httptest.Server
	manifest []byte
	digest   string
	// fail answers the next manifest requests with this status (and
	// Retry-After, when set) before it answers normally; -1 forever.
	fail       int
	failStatus int
	retryAfter string
	// noDigestOnHead leaves Docker-Content-Digest out of HEAD answers.
	noDigestOnHead bool

	mu      sync.Mutex
	methods map[string]int // manifest requests by method
	scopes  []string
}

func newHubServer(t *testing.T) *hubServer {
	t.Helper()
	h := &hubServer{methods: map[string]int{}}
	h.manifest = []byte(`{"schemaVersion":2,"mediaType":"` + MediaTypeOCIManifest + `","config":{"digest":"sha256:00"}}`)
	sum := sha256.Sum256(h.manifest)
	h.digest = "sha256:" + hex.EncodeToString(sum[:])
	h.Server = httptest.NewServer(http.HandlerFunc(h.serve))
	t.Cleanup(h.Close)
	return h
}

func (h *hubServer) serve(w http.ResponseWriter, r *http.Request) {
	h.mu.Lock()
	defer h.mu.Unlock()
	switch {
	case r.URL.Path == "/token":
		user, pass, _ := r.BasicAuth()
		h.scopes = append(h.scopes, r.URL.Query().Get("scope"))
		if user != "alice" || pass != "hub-secret" || r.URL.Query().Get("service") != "registry.docker.io" {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		_ = json.NewEncoder(w).Encode(map[string]string{"token": "hub-token"})
	case r.URL.Path == "/v2/library/nginx/manifests/latest":
		if r.Header.Get("Authorization") != "Bearer hub-token" {
			w.Header().Set("WWW-Authenticate", `Bearer realm="`+h.URL+`/token",service="registry.docker.io",scope="repository:library/nginx:pull"`)
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		h.methods[r.Method]++
		if h.fail != 0 {
			if h.fail > 0 {
				h.fail--
			}
			if h.retryAfter != "" {
				w.Header().Set("Retry-After", h.retryAfter)
			}
			w.WriteHeader(h.failStatus)
			_, _ = w.Write([]byte(`{"errors":[{"code":"TOOMANYREQUESTS","message":"You have reached your pull rate limit."}]}`))
			return
		}
		w.Header().Set("Content-Type", MediaTypeOCIManifest)
		if r.Method != http.MethodHead || !h.noDigestOnHead {
			w.Header().Set("Docker-Content-Digest", h.digest)
		}
		if r.Method == http.MethodGet {
			_, _ = w.Write(h.manifest)
		}
	default:
		w.WriteHeader(http.StatusNotFound)
	}
}

// hubClient is a client whose Docker Hub is the server, with the login
// `docker login` stores for Docker Hub in a config.json.
func hubClient(t *testing.T, h *hubServer) (*Client, *[]time.Duration) {
	t.Helper()
	dir := t.TempDir()
	cfg := `{"auths":{"https://index.docker.io/v1/":{"auth":"` + base64.StdEncoding.EncodeToString([]byte("alice:hub-secret")) + `"}}}`
	if err := os.WriteFile(filepath.Join(dir, "config.json"), []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	dc, err := LoadDockerConfig(filepath.Join(dir, "config.json"), false)
	if err != nil {
		t.Fatal(err)
	}
	c := NewClient(dc)
	c.DockerHubAPI = strings.TrimPrefix(h.URL, "http://")
	rec := &sleepRecorder{}
	c.Clock = rec
	return c, &rec.slept
}

// sleepRecorder is a clock whose sleeps return at once and are recorded.
type sleepRecorder struct{ slept []time.Duration }

func (r *sleepRecorder) Now() time.Time { return time.Now() }
func (r *sleepRecorder) Sleep(_ context.Context, d time.Duration) error {
	r.slept = append(r.slept, d)
	return nil
}

func hubQuery(t *testing.T, name string) Query {
	t.Helper()
	repo, err := imageref.ParseRepository(name)
	if err != nil {
		t.Fatal(err)
	}
	return Query{Repository: repo, Tag: "latest"}
}

// docker.io/nginx is Docker Hub's library/nginx, asked of its API host with
// the login stored under https://index.docker.io/v1/, as the Docker CLI does.
func TestDockerHubNameHostAndLogin(t *testing.T) {
	h := newHubServer(t)
	c, _ := hubClient(t, h)
	for _, name := range []string{"docker.io/nginx", "index.docker.io/library/nginx"} {
		res, err := c.Resolve(context.Background(), hubQuery(t, name))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if res.Digest != h.digest {
			t.Errorf("%s: digest %s, want %s", name, res.Digest, h.digest)
		}
	}
	if len(h.scopes) == 0 || h.scopes[0] != "repository:library/nginx:pull" {
		t.Errorf("token scopes %v, want repository:library/nginx:pull", h.scopes)
	}
	// registry_auth written with any of Docker Hub's names finds the same login.
	for _, addr := range []string{"docker.io", "https://index.docker.io/v1/", "registry-1.docker.io", "index.docker.io"} {
		if _, ok, _ := (StaticCredentials{NormalizeHost(addr): {Username: "alice"}}).Lookup(imageref.DockerHubCredentialHost); !ok {
			t.Errorf("registry_auth address %q is not found for Docker Hub", addr)
		}
	}
}

// The plan's "tag moved" check is a HEAD (Docker Hub counts a manifest GET
// as a pull); a registry that sends no digest with it gets the GET.
func TestTagDigestIsAHead(t *testing.T) {
	h := newHubServer(t)
	c, _ := hubClient(t, h)
	digest, err := c.TagDigest(context.Background(), hubQuery(t, "docker.io/nginx"))
	if err != nil || digest != h.digest {
		t.Fatalf("TagDigest = %s, %v; want %s", digest, err, h.digest)
	}
	if want := map[string]int{http.MethodHead: 1}; !reflect.DeepEqual(h.methods, want) {
		t.Errorf("manifest requests %v, want %v", h.methods, want)
	}
	h.noDigestOnHead = true
	h.methods = map[string]int{}
	digest, err = c.TagDigest(context.Background(), hubQuery(t, "docker.io/nginx"))
	if err != nil || digest != h.digest {
		t.Fatalf("without the header: TagDigest = %s, %v", digest, err)
	}
	if want := map[string]int{http.MethodHead: 1, http.MethodGet: 1}; !reflect.DeepEqual(h.methods, want) {
		t.Errorf("without the header: manifest requests %v, want %v", h.methods, want)
	}
}

// 429 and 5xx are asked again after the registry's Retry-After, or after a
// backoff of 1s, 2s, 4s; then a clear error says what to do.
func TestRetriesHonourRetryAfter(t *testing.T) {
	for _, tc := range []struct {
		name       string
		fail       int
		status     int
		retryAfter string
		wantSleeps []time.Duration
		wantKind   Kind // KindUnknown: success
		wantText   string
	}{
		{"429 twice, Retry-After 2", 2, http.StatusTooManyRequests, "2", []time.Duration{2 * time.Second, 2 * time.Second}, KindUnknown, ""},
		{"503 once, no Retry-After", 1, http.StatusServiceUnavailable, "", []time.Duration{time.Second}, KindUnknown, ""},
		{"429 always", -1, http.StatusTooManyRequests, "1", []time.Duration{time.Second, time.Second, time.Second}, KindRateLimited, "429 Too Many Requests after 4 attempts"},
		{"503 always", -1, http.StatusServiceUnavailable, "", []time.Duration{time.Second, 2 * time.Second, 4 * time.Second}, KindUnreachable, "503 Service Unavailable after 4 attempts"},
		{"429 for an hour", -1, http.StatusTooManyRequests, "3600", nil, KindRateLimited, "asks to wait 1h0m0s"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHubServer(t)
			h.fail, h.failStatus, h.retryAfter = tc.fail, tc.status, tc.retryAfter
			c, slept := hubClient(t, h)
			res, err := c.Resolve(context.Background(), hubQuery(t, "docker.io/nginx"))
			if !reflect.DeepEqual(*slept, tc.wantSleeps) {
				t.Errorf("waited %v, want %v", *slept, tc.wantSleeps)
			}
			if tc.wantKind == KindUnknown {
				if err != nil || res.Digest != h.digest {
					t.Fatalf("Resolve = %+v, %v", res, err)
				}
				return
			}
			var re *Error
			if !errors.As(err, &re) || re.Kind != tc.wantKind || !strings.Contains(err.Error(), tc.wantText) {
				t.Fatalf("err = %v, want %s with %q", err, tc.wantKind, tc.wantText)
			}
			// A HEAD that is refused so is not followed by a GET that adds to the quota.
			h.methods = map[string]int{}
			*slept = nil
			if _, err := c.TagDigest(context.Background(), hubQuery(t, "docker.io/nginx")); !errors.As(err, &re) || re.Kind != tc.wantKind {
				t.Errorf("TagDigest: err = %v, want %s", err, tc.wantKind)
			}
			if h.methods[http.MethodGet] != 0 {
				t.Errorf("TagDigest sent %d GETs after its HEAD was refused", h.methods[http.MethodGet])
			}
		})
	}
	if d, ok := retryAfter("Wed, 21 Oct 2015 07:28:30 GMT", time.Date(2015, 10, 21, 7, 28, 0, 0, time.UTC)); !ok || d != 30*time.Second {
		t.Errorf("Retry-After as a date: %s %t", d, ok)
	}
	if _, ok := retryAfter("soon", time.Now()); ok {
		t.Error("an unreadable Retry-After was read")
	}
}

// A credential helper (credsStore) is asked for Docker Hub under the
// address the Docker CLI uses, https://index.docker.io/v1/, and for other
// registries under their host.
func TestCredentialHelperAddresses(t *testing.T) {
	dir := t.TempDir()
	asked := filepath.Join(dir, "asked")
	helper := "#!/bin/sh\nread server\necho \"$server\" >> " + asked + "\n" +
		"case \"$server\" in https://index.docker.io/v1/|ghcr.io) echo '{\"Username\":\"alice\",\"Secret\":\"s\"}' ;; *) echo 'credentials not found in native keychain'; exit 1 ;; esac\n"
	if err := os.WriteFile(filepath.Join(dir, "docker-credential-fake"), []byte(helper), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", dir+string(os.PathListSeparator)+os.Getenv("PATH"))
	if err := os.WriteFile(filepath.Join(dir, "config.json"), []byte(`{"credsStore":"fake"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	dc, err := LoadDockerConfig(filepath.Join(dir, "config.json"), false)
	if err != nil {
		t.Fatal(err)
	}
	hub, _ := imageref.ParseRepository("docker.io/nginx")
	for _, host := range []string{hub.CredentialHost(), "ghcr.io"} {
		if c, ok, err := dc.Lookup(host); err != nil || !ok || c.Username != "alice" {
			t.Errorf("%s: %+v %t %v", host, c, ok, err)
		}
	}
	if _, ok, err := dc.Lookup("registry.example.com"); ok || err != nil {
		t.Errorf("unknown registry: found %t, %v", ok, err)
	}
	b, _ := os.ReadFile(asked)
	if got := strings.Fields(string(b)); !reflect.DeepEqual(got, []string{"https://index.docker.io/v1/", "ghcr.io", "registry.example.com"}) {
		t.Errorf("the helper was asked for %q", got)
	}
}
