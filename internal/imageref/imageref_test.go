package imageref

import (
	"strings"
	"testing"
)

func TestParseRepository(t *testing.T) {
	ok := map[string]Repository{
		"registry.example.com/shop/web": {Host: "registry.example.com", Path: "shop/web"},
		"127.0.0.1:5000/shop/web":       {Host: "127.0.0.1:5000", Path: "shop/web"},
		"localhost/app":                 {Host: "localhost", Path: "app"},
		"localhost:5000/a/b/c":          {Host: "localhost:5000", Path: "a/b/c"},
		"[::1]:5000/app":                {Host: "[::1]:5000", Path: "app"},
	}
	for in, want := range ok {
		got, err := ParseRepository(in)
		if err != nil {
			t.Errorf("ParseRepository(%q): %v", in, err)
			continue
		}
		if got != want {
			t.Errorf("ParseRepository(%q) = %+v, want %+v", in, got, want)
		}
		if got.String() != in {
			t.Errorf("String() = %q, want %q", got.String(), in)
		}
	}
	bad := map[string]string{
		"":                                    "empty",
		"shop/web":                            "registry host",
		"web":                                 "registry host",
		"registry.example.com/Shop/web":       "not a valid repository",
		"registry.example.com/web:1.0":        "contains a tag",
		"registry.example.com/web@sha256:abc": "contains a digest",
		"registry.example.com/web//x":         "not a valid repository",
	}
	for in, want := range bad {
		_, err := ParseRepository(in)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("ParseRepository(%q) error = %v, want one mentioning %q", in, err, want)
		}
	}
}

func TestValidateTagAndDigest(t *testing.T) {
	for _, tag := range []string{"1.0.0", "latest", "v2_rc-1", strings.Repeat("a", 128)} {
		if err := ValidateTag(tag); err != nil {
			t.Errorf("ValidateTag(%q): %v", tag, err)
		}
	}
	for _, tag := range []string{"", "-x", ".x", "a/b", "a:b", strings.Repeat("a", 129)} {
		if err := ValidateTag(tag); err == nil {
			t.Errorf("ValidateTag(%q) accepted it", tag)
		}
	}
	good := "sha256:" + strings.Repeat("ab", 32)
	if err := ValidateDigest(good); err != nil {
		t.Errorf("ValidateDigest(%q): %v", good, err)
	}
	for _, d := range []string{"", "sha256:abc", "sha512:" + strings.Repeat("ab", 32), "sha256:" + strings.Repeat("AB", 32), strings.Repeat("ab", 32)} {
		if err := ValidateDigest(d); err == nil {
			t.Errorf("ValidateDigest(%q) accepted it", d)
		}
	}
}

func TestParsePlatform(t *testing.T) {
	p, err := ParsePlatform("linux/arm64/v8")
	if err != nil || p != (Platform{"linux", "arm64", "v8"}) || p.String() != "linux/arm64/v8" {
		t.Fatalf("ParsePlatform = %+v, %v", p, err)
	}
	for _, s := range []string{"linux", "Linux/amd64", "linux/amd64/v8/x", "linux/"} {
		if _, err := ParsePlatform(s); err == nil {
			t.Errorf("ParsePlatform(%q) accepted it", s)
		}
	}
}

func TestParsePinned(t *testing.T) {
	d := "sha256:" + strings.Repeat("0f", 32)
	r, err := ParsePinned("127.0.0.1:5000/shop/web@" + d)
	if err != nil {
		t.Fatal(err)
	}
	if r.Repository.Host != "127.0.0.1:5000" || r.Repository.Path != "shop/web" || r.Digest != d || r.Tag != "" {
		t.Errorf("got %+v", r)
	}
	r, err = ParsePinned("127.0.0.1:5000/shop/web:2.0.0@" + d)
	if err != nil || r.Tag != "2.0.0" || r.String() != "127.0.0.1:5000/shop/web@"+d {
		t.Errorf("with tag: %+v, %v", r, err)
	}
	_, err = ParsePinned("127.0.0.1:5000/shop/web:2.0.0")
	if err == nil || !strings.Contains(err.Error(), "release_image.<name>.ref") {
		t.Errorf("a tag must be refused with advice, got %v", err)
	}
	if _, err := ParsePinned("shop/web@" + d); err == nil {
		t.Error("a repository without a registry host was accepted")
	}
}

// Docker Hub's names as the Docker CLI normalises them (reference.ParseNormalizedNamed).
func TestDockerHubNames(t *testing.T) {
	for in, want := range map[string]Repository{
		"docker.io/nginx":                 {Host: "docker.io", Path: "library/nginx"},
		"docker.io/library/nginx":         {Host: "docker.io", Path: "library/nginx"},
		"index.docker.io/nginx":           {Host: "docker.io", Path: "library/nginx"},
		"index.docker.io/grafana/grafana": {Host: "docker.io", Path: "grafana/grafana"},
		"docker.io/bitnami/redis/sub":     {Host: "docker.io", Path: "bitnami/redis/sub"},
		"ghcr.io/nginx":                   {Host: "ghcr.io", Path: "nginx"},
		"127.0.0.1:5000/nginx":            {Host: "127.0.0.1:5000", Path: "nginx"},
	} {
		got, err := ParseRepository(in)
		if err != nil || got != want {
			t.Errorf("ParseRepository(%q) = %+v, %v; want %+v", in, got, err, want)
		}
	}
	hub, _ := ParseRepository("docker.io/nginx")
	if hub.APIHost() != "registry-1.docker.io" || hub.CredentialHost() != "index.docker.io" || hub.String() != "docker.io/library/nginx" {
		t.Errorf("Docker Hub: API %s, credentials %s, name %s", hub.APIHost(), hub.CredentialHost(), hub)
	}
	other, _ := ParseRepository("ghcr.io/shop/web")
	if other.APIHost() != "ghcr.io" || other.CredentialHost() != "ghcr.io" {
		t.Errorf("ghcr.io: API %s, credentials %s", other.APIHost(), other.CredentialHost())
	}
	// Still no implicit registry: a bare name is refused.
	if _, err := ParseRepository("nginx"); err == nil {
		t.Error("a repository without a registry host was accepted")
	}
	// A pinned reference on Docker Hub keeps the normalised name.
	ref, err := ParsePinned("docker.io/nginx:1.27@sha256:" + strings.Repeat("a", 64))
	if err != nil || ref.String() != "docker.io/library/nginx@sha256:"+strings.Repeat("a", 64) {
		t.Errorf("ParsePinned = %s, %v", ref, err)
	}
}
