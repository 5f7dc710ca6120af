// Package docker connects to a Docker Engine and runs the container operations
// a release needs. It holds no Terraform types.
package docker

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/moby/moby/client"
)

// DefaultHost is the local Engine socket, used when neither configuration nor
// DOCKER_HOST names one.
const DefaultHost = "unix:///var/run/docker.sock"

// Config says how to reach a Docker Engine.
type Config struct {
	Host string // unix://, tcp://, ssh://

	// TLS for tcp:// hosts: PEM material, or a directory with ca.pem, cert.pem and key.pem.
	CertPath string
	CAPEM    string
	CertPEM  string
	KeyPEM   string
}

// ConfigFromEnv reads the variables the Docker CLI reads: DOCKER_HOST and
// DOCKER_CERT_PATH. The daemon's certificate is always verified, so
// DOCKER_TLS_VERIFY has nothing to turn on.
func ConfigFromEnv() Config {
	c := Config{Host: os.Getenv("DOCKER_HOST"), CertPath: os.Getenv("DOCKER_CERT_PATH")}
	if c.Host == "" {
		c.Host = DefaultHost
	}
	return c
}

// Validate checks the host's form, so a typo is reported at plan time.
func (c Config) Validate() error {
	u, err := url.Parse(c.Host)
	if err != nil {
		return fmt.Errorf("%q is not a URL: %w", c.Host, err)
	}
	switch u.Scheme {
	case "unix":
		if u.Path == "" {
			return fmt.Errorf("%q names no socket path; write it as unix:///var/run/docker.sock", c.Host)
		}
	case "tcp":
		if u.Host == "" {
			return fmt.Errorf("%q names no address; write it as tcp://host:2376", c.Host)
		}
	case "ssh":
		if u.Host == "" {
			return fmt.Errorf("%q names no host; write it as ssh://user@host", c.Host)
		}
	default:
		return fmt.Errorf("%q has scheme %q; use unix://, tcp:// or ssh://", c.Host, u.Scheme)
	}
	if (c.CertPEM == "") != (c.KeyPEM == "") {
		return errors.New("a client certificate and its key go together: set both cert_material and key_material, or neither")
	}
	return nil
}

func (c Config) usesTLS() bool {
	return c.CertPath != "" || c.CAPEM != "" || c.CertPEM != ""
}

// Connector makes the Engine client on first use. A provider is configured
// for every plan, and a plan that needs no daemon must not fail because none answers.
type Connector struct {
	Config Config
	// Hooks observe each Engine API request, e.g. to count calls in benchmarks.
	RequestHook func(*http.Request)

	mu     sync.Mutex
	client *client.Client
}

// NewConnector returns a Connector that has not dialled yet.
func NewConnector(cfg Config) *Connector {
	return &Connector{Config: cfg}
}

// UnreachableError says the daemon did not answer, naming the host.
type UnreachableError struct {
	Host string
	Err  error
}

func (e *UnreachableError) Error() string {
	return fmt.Sprintf("the Docker daemon at %s did not answer: %v", e.Host, e.Err)
}

func (e *UnreachableError) Unwrap() error { return e.Err }

// Client returns a client that has answered a ping, with the API version
// negotiated so that Engine 20.10 (API 1.41) and newer work.
func (c *Connector) Client(ctx context.Context) (*client.Client, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.client != nil {
		return c.client, nil
	}
	cli, err := c.newClient()
	if err != nil {
		return nil, err
	}
	pingCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if _, err := cli.Ping(pingCtx, client.PingOptions{NegotiateAPIVersion: true}); err != nil {
		_ = cli.Close()
		return nil, &UnreachableError{Host: c.Config.Host, Err: err}
	}
	c.client = cli
	return cli, nil
}

// Close releases the client's connections.
func (c *Connector) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.client == nil {
		return nil
	}
	err := c.client.Close()
	c.client = nil
	return err
}

func (c *Connector) newClient() (*client.Client, error) {
	if err := c.Config.Validate(); err != nil {
		return nil, err
	}
	opts := []client.Opt{client.WithAPIVersionNegotiation(), client.WithUserAgent("terraform-provider-release")}
	if c.RequestHook != nil {
		hook := c.RequestHook
		opts = append(opts, client.WithHTTPRequestHook(func(r *http.Request) error { hook(r); return nil }))
	}
	u, _ := url.Parse(c.Config.Host)
	switch u.Scheme {
	case "ssh":
		// The daemon is reached through `docker system dial-stdio` on the
		// remote host, as the Docker CLI does: no port needs to be exposed.
		opts = append(opts, client.WithHost("http://docker.invalid"), client.WithDialContext(sshDialer(u)))
	default:
		opts = append(opts, client.WithHost(c.Config.Host))
		if u.Scheme == "tcp" && c.Config.usesTLS() {
			tlsConfig, err := c.Config.tlsConfig()
			if err != nil {
				return nil, err
			}
			opts = append(opts, withTLS(tlsConfig))
		}
	}
	cli, err := client.New(opts...)
	if err != nil {
		return nil, fmt.Errorf("creating the Docker client for %s: %w", c.Config.Host, err)
	}
	return cli, nil
}

func withTLS(cfg *tls.Config) client.Opt {
	return client.WithHTTPClient(&http.Client{Transport: &http.Transport{
		TLSClientConfig: cfg,
		DialContext:     (&net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
	}})
}

// tlsConfig builds TLS settings from PEM material, falling back to the files in CertPath.
func (c Config) tlsConfig() (*tls.Config, error) {
	caPEM, certPEM, keyPEM := []byte(c.CAPEM), []byte(c.CertPEM), []byte(c.KeyPEM)
	read := func(dst *[]byte, name string) error {
		if len(*dst) > 0 || c.CertPath == "" {
			return nil
		}
		data, err := os.ReadFile(filepath.Join(c.CertPath, name))
		if name == "ca.pem" && os.IsNotExist(err) {
			return nil // verified against the system's roots instead
		}
		if err != nil {
			return fmt.Errorf("reading TLS material from cert_path: %w", err)
		}
		*dst = data
		return nil
	}
	for _, f := range []struct {
		dst  *[]byte
		name string
	}{{&caPEM, "ca.pem"}, {&certPEM, "cert.pem"}, {&keyPEM, "key.pem"}} {
		if err := read(f.dst, f.name); err != nil {
			return nil, err
		}
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if len(caPEM) > 0 {
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(caPEM) {
			return nil, errors.New("the CA material holds no PEM certificate")
		}
		cfg.RootCAs = pool
	}
	if len(certPEM) > 0 {
		pair, err := tls.X509KeyPair(certPEM, keyPEM)
		if err != nil {
			return nil, fmt.Errorf("loading the client certificate: %w", err)
		}
		cfg.Certificates = []tls.Certificate{pair}
	}
	return cfg, nil
}

// HostForDisplay strips credentials from a host URL.
func HostForDisplay(host string) string {
	u, err := url.Parse(host)
	if err != nil || u.User == nil {
		return host
	}
	u.User = url.User(u.User.Username())
	return strings.TrimSuffix(u.String(), "/")
}
