package registry

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"

	"github.com/releasekit/terraform-provider-release/internal/imageref"
)

// Media types of the manifests and indexes the client understands.
const (
	MediaTypeOCIIndex       = "application/vnd.oci.image.index.v1+json"
	MediaTypeOCIManifest    = "application/vnd.oci.image.manifest.v1+json"
	MediaTypeDockerList     = "application/vnd.docker.distribution.manifest.list.v2+json"
	MediaTypeDockerManifest = "application/vnd.docker.distribution.manifest.v2+json"
	maxManifestBytes        = 4 << 20
	maxConfigBytes          = 8 << 20
)

var acceptedManifests = []string{MediaTypeOCIIndex, MediaTypeDockerList, MediaTypeOCIManifest, MediaTypeDockerManifest}

// Query names an image by tag or digest, optionally narrowed to one platform.
type Query struct {
	Repository imageref.Repository
	Tag        string // one of Tag and Digest
	Digest     string
	Platform   *imageref.Platform
}

func (q Query) reference() string {
	if q.Digest != "" {
		return q.Digest
	}
	return q.Tag
}

// Resolved is what a query pins.
type Resolved struct {
	// Digest is the pinned digest: the index's, or the platform manifest's when a platform was asked for.
	Digest    string
	MediaType string
	// Platforms lists the platforms of an index; empty for a single manifest.
	Platforms []imageref.Platform
}

type manifest struct {
	MediaType string `json:"mediaType"`
	Config    struct {
		Digest string `json:"digest"`
	} `json:"config"`
	Manifests []struct {
		MediaType string `json:"mediaType"`
		Digest    string `json:"digest"`
		Platform  *struct {
			OS           string `json:"os"`
			Architecture string `json:"architecture"`
			Variant      string `json:"variant"`
		} `json:"platform"`
	} `json:"manifests"`
}

// Resolve pins a tag or checks a digest, without downloading any layer.
func (c *Client) Resolve(ctx context.Context, q Query) (Resolved, error) {
	digest, mediaType, body, err := c.fetchManifest(ctx, q.Repository, q.reference(), q.Tag != "")
	if err != nil {
		return Resolved{}, err
	}
	var m manifest
	if err := json.Unmarshal(body, &m); err != nil {
		return Resolved{}, c.protocolError(q, "the manifest is not JSON", err)
	}
	if mediaType == "" || mediaType == "application/json" || strings.HasPrefix(mediaType, "text/plain") {
		mediaType = m.MediaType
	}
	if mediaType == "" && len(m.Manifests) > 0 {
		mediaType = MediaTypeOCIIndex
	}
	res := Resolved{Digest: digest, MediaType: mediaType}

	switch mediaType {
	case MediaTypeOCIIndex, MediaTypeDockerList:
		for _, d := range m.Manifests {
			if d.Platform != nil && d.Platform.OS != "unknown" {
				res.Platforms = append(res.Platforms, imageref.Platform{OS: d.Platform.OS, Architecture: d.Platform.Architecture, Variant: d.Platform.Variant})
			}
		}
		if q.Platform == nil {
			return res, nil
		}
		for _, d := range m.Manifests {
			if d.Platform != nil && platformMatches(*q.Platform, imageref.Platform{OS: d.Platform.OS, Architecture: d.Platform.Architecture, Variant: d.Platform.Variant}) {
				return Resolved{Digest: d.Digest, MediaType: d.MediaType, Platforms: res.Platforms}, nil
			}
		}
		return Resolved{}, &Error{Kind: KindPlatformNotFound, Registry: q.Repository.Host, Repository: q.Repository.Path, Reference: q.reference(),
			Message: fmt.Sprintf("the index has no manifest for %s; it has %s", q.Platform, platformList(res.Platforms))}
	case MediaTypeOCIManifest, MediaTypeDockerManifest:
		if q.Platform == nil {
			return res, nil
		}
		got, err := c.configPlatform(ctx, q, m.Config.Digest)
		if err != nil {
			return Resolved{}, err
		}
		if !platformMatches(*q.Platform, got) {
			return Resolved{}, &Error{Kind: KindPlatformNotFound, Registry: q.Repository.Host, Repository: q.Repository.Path, Reference: q.reference(),
				Message: fmt.Sprintf("the image is a single-platform image for %s, not %s", got, q.Platform)}
		}
		return res, nil
	default:
		return Resolved{}, c.protocolError(q, fmt.Sprintf("the manifest has media type %q, which is not an image manifest or index", mediaType), nil)
	}
}

// platformMatches compares platforms; a variant left out of the wanted
// platform matches any variant.
func platformMatches(want, got imageref.Platform) bool {
	if want.OS != got.OS || want.Architecture != got.Architecture {
		return false
	}
	return want.Variant == "" || want.Variant == got.Variant
}

func platformList(ps []imageref.Platform) string {
	if len(ps) == 0 {
		return "no platforms"
	}
	names := make([]string, 0, len(ps))
	for _, p := range ps {
		names = append(names, p.String())
	}
	slices.Sort(names)
	return strings.Join(slices.Compact(names), ", ")
}

func (c *Client) protocolError(q Query, msg string, err error) error {
	return &Error{Kind: KindProtocol, Registry: q.Repository.Host, Repository: q.Repository.Path, Reference: q.reference(), Message: msg, Err: err}
}

// fetchManifest GETs a manifest and returns its digest, computed from the bytes
// received and checked against what the registry and the caller claim.
func (c *Client) fetchManifest(ctx context.Context, repo imageref.Repository, ref string, isTag bool) (string, string, []byte, error) {
	resp, err := c.do(ctx, c.request(http.MethodGet, repo, "/manifests/"+ref, acceptedManifests))
	if err != nil {
		return "", "", nil, err
	}
	defer drain(resp)
	if resp.StatusCode != http.StatusOK {
		return "", "", nil, c.statusError(ctx, resp, repo, ref, isTag)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxManifestBytes+1))
	if err != nil {
		return "", "", nil, &Error{Kind: KindUnreachable, Registry: repo.Host, Repository: repo.Path, Reference: ref, Message: "reading the manifest failed", Err: err}
	}
	if len(body) > maxManifestBytes {
		return "", "", nil, &Error{Kind: KindProtocol, Registry: repo.Host, Repository: repo.Path, Reference: ref, Message: "the manifest is larger than 4 MiB"}
	}
	sum := sha256.Sum256(body)
	digest := "sha256:" + hex.EncodeToString(sum[:])
	if claimed := resp.Header.Get("Docker-Content-Digest"); claimed != "" && strings.HasPrefix(claimed, "sha256:") && claimed != digest {
		return "", "", nil, &Error{Kind: KindProtocol, Registry: repo.Host, Repository: repo.Path, Reference: ref,
			Message: fmt.Sprintf("the registry says the manifest is %s but its bytes hash to %s", claimed, digest)}
	}
	if !isTag && ref != digest {
		return "", "", nil, &Error{Kind: KindProtocol, Registry: repo.Host, Repository: repo.Path, Reference: ref,
			Message: fmt.Sprintf("the manifest served for %s hashes to %s", ref, digest)}
	}
	mediaType, _, _ := strings.Cut(resp.Header.Get("Content-Type"), ";")
	return digest, strings.TrimSpace(mediaType), body, nil
}

// statusError turns a failed manifest GET into an Error of the right Kind. A
// 404 is ambiguous in many registries, so the tag list tells whether the
// repository itself exists.
func (c *Client) statusError(ctx context.Context, resp *http.Response, repo imageref.Repository, ref string, isTag bool) error {
	codes, message := readErrorCodes(resp)
	e := &Error{Registry: repo.Host, Repository: repo.Path, Reference: ref, Message: message}
	switch {
	case resp.StatusCode >= 500:
		e.Kind = KindUnreachable
		e.Message = fmt.Sprintf("the registry answered %s after %d attempts", resp.Status, maxAttempts)
	case resp.StatusCode == http.StatusTooManyRequests || slices.Contains(codes, "TOOMANYREQUESTS"):
		e.Kind = KindRateLimited
		e.Message = rateLimitMessage(resp, message)
	case resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden || slices.Contains(codes, "DENIED") || slices.Contains(codes, "UNAUTHORIZED"):
		e.Kind = KindUnauthorized
	case resp.StatusCode == http.StatusNotFound:
		if slices.Contains(codes, "NAME_UNKNOWN") || !c.repositoryExists(ctx, repo) {
			e.Kind = KindRepositoryNotFound
		} else if isTag {
			e.Kind = KindTagNotFound
		} else {
			e.Kind = KindDigestNotFound
		}
	default:
		e.Kind = KindProtocol
	}
	return e
}

// TagDigest is the digest a tag points at now, for the plan-time check
// that a pinned tag has not moved: a HEAD of the manifest, read from
// Docker-Content-Digest (Docker Hub counts a manifest GET as a pull
// against a quota, not a HEAD). With a platform (the digest is then the
// platform's manifest, not the index), or a registry that sends no digest,
// it resolves the tag as Resolve does.
func (c *Client) TagDigest(ctx context.Context, q Query) (string, error) {
	if q.Platform == nil && q.Tag != "" {
		resp, err := c.do(ctx, c.request(http.MethodHead, q.Repository, "/manifests/"+q.Tag, acceptedManifests))
		if err != nil {
			return "", err
		}
		defer drain(resp)
		digest := resp.Header.Get("Docker-Content-Digest")
		switch {
		case resp.StatusCode == http.StatusOK && imageref.ValidateDigest(digest) == nil:
			return digest, nil
		case retryable(resp.StatusCode):
			// Already asked again: a GET would only add to the quota.
			return "", c.statusError(ctx, resp, q.Repository, q.Tag, true)
		}
		// No digest in the answer, or a failure a HEAD cannot explain (it
		// has no body): the GET below resolves or says what went wrong.
	}
	res, err := c.Resolve(ctx, q)
	return res.Digest, err
}

// repositoryExists asks for one tag: a missing repository answers 404.
// Any other answer (including errors) counts as existing, so that the caller
// reports the narrower failure.
func (c *Client) repositoryExists(ctx context.Context, repo imageref.Repository) bool {
	resp, err := c.do(ctx, c.request(http.MethodGet, repo, "/tags/list?n=1", nil))
	if err != nil {
		return true
	}
	defer drain(resp)
	return resp.StatusCode != http.StatusNotFound
}

func (c *Client) configPlatform(ctx context.Context, q Query, digest string) (imageref.Platform, error) {
	if digest == "" {
		return imageref.Platform{}, c.protocolError(q, "the manifest names no config blob", nil)
	}
	resp, err := c.do(ctx, c.request(http.MethodGet, q.Repository, "/blobs/"+digest, nil))
	if err != nil {
		return imageref.Platform{}, err
	}
	defer drain(resp)
	if resp.StatusCode != http.StatusOK {
		_, msg := readErrorCodes(resp)
		return imageref.Platform{}, c.protocolError(q, "fetching the image config failed: "+msg, nil)
	}
	var cfg struct {
		OS           string `json:"os"`
		Architecture string `json:"architecture"`
		Variant      string `json:"variant"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, maxConfigBytes)).Decode(&cfg); err != nil {
		return imageref.Platform{}, c.protocolError(q, "the image config is not JSON", err)
	}
	return imageref.Platform{OS: cfg.OS, Architecture: cfg.Architecture, Variant: cfg.Variant}, nil
}
