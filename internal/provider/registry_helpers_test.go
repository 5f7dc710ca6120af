package provider

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Helpers that change the test registry through its HTTP API, as a CI
// pipeline's `docker push` would: move tags and publish indexes.

const acceptManifests = "application/vnd.oci.image.index.v1+json, application/vnd.docker.distribution.manifest.list.v2+json, " +
	"application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json"

// testRegistryManifest fetches a manifest by tag or digest from a plain-HTTP test registry.
func testRegistryManifest(t *testing.T, repository, ref string) (mediaType string, body []byte) {
	t.Helper()
	host, path, _ := strings.Cut(repository, "/")
	req, _ := http.NewRequest(http.MethodGet, "http://"+host+"/v2/"+path+"/manifests/"+ref, nil)
	req.Header.Set("Accept", acceptManifests)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("fetching %s:%s: %v", repository, ref, err)
	}
	defer resp.Body.Close()
	body, _ = io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("fetching %s:%s: HTTP %d: %s", repository, ref, resp.StatusCode, body)
	}
	return resp.Header.Get("Content-Type"), body
}

// testRegistryPutManifest publishes a manifest under a tag and returns its digest.
func testRegistryPutManifest(t *testing.T, repository, tag, mediaType string, body []byte) string {
	t.Helper()
	host, path, _ := strings.Cut(repository, "/")
	req, _ := http.NewRequest(http.MethodPut, "http://"+host+"/v2/"+path+"/manifests/"+tag, bytes.NewReader(body))
	req.Header.Set("Content-Type", mediaType)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("pushing %s:%s: %v", repository, tag, err)
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("pushing %s:%s: HTTP %d: %s", repository, tag, resp.StatusCode, msg)
	}
	sum := sha256.Sum256(body)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// testRegistryTag points tag at the manifest that from (a tag or digest) names, like `docker tag` + `docker push`.
func testRegistryTag(t *testing.T, repository, from, tag string) string {
	t.Helper()
	mediaType, body := testRegistryManifest(t, repository, from)
	return testRegistryPutManifest(t, repository, tag, mediaType, body)
}

// writeDockerConfig writes a config.json as `docker login` would.
func writeDockerConfig(t *testing.T, dir, host, user, pass string) {
	t.Helper()
	auth := base64.StdEncoding.EncodeToString([]byte(user + ":" + pass))
	cfg := `{"auths":{"` + host + `":{"auth":"` + auth + `"}}}`
	if err := os.WriteFile(filepath.Join(dir, "config.json"), []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
}
