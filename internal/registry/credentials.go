package registry

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/releasekit/terraform-provider-release/internal/imageref"
)

// Credential is a username and password (or identity token) for one registry.
type Credential struct {
	Username string
	Password string
	// IdentityToken is an OAuth2 refresh token, as `docker login` stores for some registries.
	IdentityToken string
}

// Credentials finds the credential for a registry host.
type Credentials interface {
	Lookup(host string) (Credential, bool, error)
}

// StaticCredentials maps registry hosts to credentials given in configuration.
type StaticCredentials map[string]Credential

func (s StaticCredentials) Lookup(host string) (Credential, bool, error) {
	c, ok := s[NormalizeHost(host)]
	return c, ok, nil
}

// Chain tries each Credentials in turn.
type Chain []Credentials

func (c Chain) Lookup(host string) (Credential, bool, error) {
	for _, src := range c {
		if src == nil {
			continue
		}
		cred, ok, err := src.Lookup(host)
		if err != nil || ok {
			return cred, ok, err
		}
	}
	return Credential{}, false, nil
}

// NormalizeHost strips a scheme and trailing path, as users and `docker login`
// write registry addresses in several shapes. Docker Hub's names (docker.io,
// its API host, https://index.docker.io/v1/) are all index.docker.io, where
// `docker login` stores its credentials.
func NormalizeHost(s string) string {
	s = strings.TrimPrefix(strings.TrimPrefix(s, "https://"), "http://")
	if i := strings.Index(s, "/"); i >= 0 {
		s = s[:i]
	}
	s = strings.ToLower(s)
	if s == imageref.DockerHub || s == imageref.DockerHubAPI {
		s = imageref.DockerHubCredentialHost
	}
	return s
}

// dockerHubServer is the server address the Docker CLI gives credential
// helpers for Docker Hub.
const dockerHubServer = "https://index.docker.io/v1/"

// DockerConfig reads credentials the way the Docker CLI does from a config.json:
// inline "auths", then per-registry "credHelpers", then the "credsStore".
type DockerConfig struct {
	Path string
	file dockerConfigFile
}

type dockerConfigFile struct {
	Auths map[string]struct {
		Auth          string `json:"auth"`
		Username      string `json:"username"`
		Password      string `json:"password"`
		IdentityToken string `json:"identitytoken"`
	} `json:"auths"`
	CredsStore  string            `json:"credsStore"`
	CredHelpers map[string]string `json:"credHelpers"`
}

// DefaultDockerConfigPath is $DOCKER_CONFIG/config.json, else ~/.docker/config.json.
func DefaultDockerConfigPath() string {
	if dir := os.Getenv("DOCKER_CONFIG"); dir != "" {
		return filepath.Join(dir, "config.json")
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return ""
	}
	return filepath.Join(home, ".docker", "config.json")
}

// LoadDockerConfig reads a config.json. A missing file is no error when
// optional is true, since most machines that use a plain registry have none.
func LoadDockerConfig(path string, optional bool) (*DockerConfig, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		if optional && os.IsNotExist(err) {
			return &DockerConfig{Path: path}, nil
		}
		return nil, fmt.Errorf("reading Docker config %s: %w", path, err)
	}
	var f dockerConfigFile
	if err := json.Unmarshal(data, &f); err != nil {
		return nil, fmt.Errorf("parsing Docker config %s: %w", path, err)
	}
	return &DockerConfig{Path: path, file: f}, nil
}

func (d *DockerConfig) Lookup(host string) (Credential, bool, error) {
	host = NormalizeHost(host)
	for addr, a := range d.file.Auths {
		if NormalizeHost(addr) != host {
			continue
		}
		c := Credential{Username: a.Username, Password: a.Password, IdentityToken: a.IdentityToken}
		if a.Auth != "" {
			raw, err := base64.StdEncoding.DecodeString(a.Auth)
			if err != nil {
				return Credential{}, false, fmt.Errorf("Docker config %s: the auth entry for %s is not base64: %w", d.Path, addr, err)
			}
			user, pass, _ := strings.Cut(string(raw), ":")
			c.Username, c.Password = user, pass
		}
		if c.Username != "" || c.IdentityToken != "" {
			return c, true, nil
		}
	}
	server := host
	if host == imageref.DockerHubCredentialHost {
		server = dockerHubServer
	}
	helper := d.file.CredHelpers[host]
	if helper == "" {
		helper = d.file.CredHelpers[server]
	}
	if helper == "" {
		helper = d.file.CredsStore
	}
	if helper == "" {
		return Credential{}, false, nil
	}
	return runCredentialHelper(helper, server)
}

// runCredentialHelper asks docker-credential-<helper> for a host's secret,
// using the helper protocol the Docker CLI uses.
func runCredentialHelper(helper, host string) (Credential, bool, error) {
	cmd := exec.Command("docker-credential-"+helper, "get")
	cmd.Stdin = strings.NewReader(host)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		out := strings.TrimSpace(stdout.String() + stderr.String())
		if strings.Contains(out, "credentials not found") {
			return Credential{}, false, nil
		}
		return Credential{}, false, fmt.Errorf("credential helper docker-credential-%s failed for %s: %v: %s", helper, host, err, out)
	}
	var resp struct{ Username, Secret string }
	if err := json.Unmarshal(stdout.Bytes(), &resp); err != nil {
		return Credential{}, false, fmt.Errorf("credential helper docker-credential-%s returned invalid JSON: %w", helper, err)
	}
	if resp.Username == "<token>" {
		return Credential{IdentityToken: resp.Secret}, true, nil
	}
	return Credential{Username: resp.Username, Password: resp.Secret}, true, nil
}
