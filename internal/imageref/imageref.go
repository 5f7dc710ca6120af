// Package imageref parses and validates the parts of an image reference
// (repository, tag, digest, platform) that users write in configuration.
//
// Every repository must name its registry host explicitly: a release is
// promoted by digest between environments, and an implicit default registry
// would make the same configuration mean different artifacts on different
// machines. Docker Hub is named as users and the Docker CLI name it
// (docker.io), and normalised as the CLI does.
package imageref

import (
	"fmt"
	"regexp"
	"strings"

	"github.com/distribution/reference"
)

// Reference is a repository pinned to a digest, the only form an environment accepts.
type Reference struct {
	Repository Repository
	Tag        string // informational, may be empty
	Digest     string // sha256:<64 hex>
}

// String renders repository[:tag]@digest; the tag is dropped because a
// pinned reference is identified by its digest alone.
func (r Reference) String() string {
	return r.Repository.String() + "@" + r.Digest
}

// Repository is a registry host plus the repository path within it.
type Repository struct {
	Host string // registry host[:port]
	Path string // e.g. shop/web
}

func (r Repository) String() string { return r.Host + "/" + r.Path }

// Docker Hub's names: users write docker.io (or index.docker.io), its
// registry API is served by another host, and `docker login` stores its
// credentials under https://index.docker.io/v1/.
const (
	DockerHub               = "docker.io"
	DockerHubAPI            = "registry-1.docker.io"
	DockerHubCredentialHost = "index.docker.io"
)

// APIHost is the host that serves the repository's registry API.
func (r Repository) APIHost() string {
	if r.Host == DockerHub {
		return DockerHubAPI
	}
	return r.Host
}

// CredentialHost is the host `docker login` stores the repository's
// credentials under.
func (r Repository) CredentialHost() string {
	if r.Host == DockerHub {
		return DockerHubCredentialHost
	}
	return r.Host
}

var (
	tagPattern      = regexp.MustCompile(`^[\w][\w.-]{0,127}$`)
	digestPattern   = regexp.MustCompile(`^sha256:[a-f0-9]{64}$`)
	platformPattern = regexp.MustCompile(`^[a-z0-9_]+/[a-z0-9_]+(/[a-z0-9_.]+)?$`)
)

// ParseRepository validates a repository such as registry.example.com:5000/shop/web.
func ParseRepository(s string) (Repository, error) {
	if s == "" {
		return Repository{}, fmt.Errorf("the repository is empty; write it as <registry host>/<path>, such as registry.example.com/shop/web")
	}
	if strings.ContainsAny(s, "@") {
		return Repository{}, fmt.Errorf("%q contains a digest; set the repository without it and put the digest in its own attribute", s)
	}
	host, path, found := strings.Cut(s, "/")
	if !found || !looksLikeHost(host) {
		return Repository{}, fmt.Errorf("%q does not start with a registry host; write it as <registry host>/<path>, such as registry.example.com/shop/web or 127.0.0.1:5000/shop/web", s)
	}
	if strings.Contains(path, ":") {
		return Repository{}, fmt.Errorf("%q contains a tag; set the repository without it and put the tag in its own attribute", s)
	}
	named, err := reference.Parse(s)
	if err != nil {
		return Repository{}, fmt.Errorf("%q is not a valid repository: %w (path components are lowercase letters, digits and the separators . _ __ -)", s, err)
	}
	if _, ok := named.(reference.Named); !ok {
		return Repository{}, fmt.Errorf("%q is not a valid repository", s)
	}
	if host == DockerHub || host == DockerHubCredentialHost {
		// As the Docker CLI normalises it: official images live under library/.
		host = DockerHub
		if !strings.Contains(path, "/") {
			path = "library/" + path
		}
	}
	return Repository{Host: host, Path: path}, nil
}

// looksLikeHost applies Docker's rule for telling a registry host from the
// first path component: it has a dot or a port, or is localhost.
func looksLikeHost(s string) bool {
	if s == "localhost" || strings.HasPrefix(s, "localhost:") {
		return true
	}
	return strings.ContainsAny(s, ".:") || strings.HasPrefix(s, "[")
}

// ValidateTag checks a tag against the registry's grammar.
func ValidateTag(s string) error {
	if !tagPattern.MatchString(s) {
		return fmt.Errorf("%q is not a valid tag: a tag is 1 to 128 characters of letters, digits, _ . and -, and does not start with . or -", s)
	}
	return nil
}

// ValidateDigest checks a digest is sha256:<64 lowercase hex>.
func ValidateDigest(s string) error {
	if !digestPattern.MatchString(s) {
		return fmt.Errorf("%q is not a valid digest: write it as sha256: followed by 64 lowercase hexadecimal characters", s)
	}
	return nil
}

// Platform is an OS/architecture[/variant] triple such as linux/arm64/v8.
type Platform struct {
	OS, Architecture, Variant string
}

func (p Platform) String() string {
	if p.Variant != "" {
		return p.OS + "/" + p.Architecture + "/" + p.Variant
	}
	return p.OS + "/" + p.Architecture
}

// ParsePlatform parses os/arch[/variant].
func ParsePlatform(s string) (Platform, error) {
	if !platformPattern.MatchString(s) {
		return Platform{}, fmt.Errorf("%q is not a valid platform: write it as os/architecture[/variant], such as linux/amd64 or linux/arm64/v8", s)
	}
	parts := strings.Split(s, "/")
	p := Platform{OS: parts[0], Architecture: parts[1]}
	if len(parts) == 3 {
		p.Variant = parts[2]
	}
	return p, nil
}

// ParsePinned parses repository@sha256:… (optionally repository:tag@sha256:…).
// Anything else is rejected with a message that says how to pin it.
func ParsePinned(s string) (Reference, error) {
	name, digest, found := strings.Cut(s, "@")
	if !found {
		return Reference{}, fmt.Errorf("%q is not pinned to a digest; use a reference of the form <repository>@sha256:<digest>, such as release_image.<name>.ref", s)
	}
	if err := ValidateDigest(digest); err != nil {
		return Reference{}, err
	}
	var tag string
	if i := strings.LastIndex(name, ":"); i > strings.LastIndex(name, "/") {
		name, tag = name[:i], name[i+1:]
		if err := ValidateTag(tag); err != nil {
			return Reference{}, err
		}
	}
	repo, err := ParseRepository(name)
	if err != nil {
		return Reference{}, err
	}
	return Reference{Repository: repo, Tag: tag, Digest: digest}, nil
}
