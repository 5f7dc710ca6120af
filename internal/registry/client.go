// Package registry resolves image references through the registry HTTP API v2:
// tags to digests, indexes to platform manifests, with basic and token auth.
package registry

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/releasekit/terraform-provider-release/internal/clock"
	"github.com/releasekit/terraform-provider-release/internal/imageref"
)

// Client talks to registries. It is safe for concurrent use.
type Client struct {
	HTTP        *http.Client
	Credentials Credentials
	UserAgent   string
	// DockerHubAPI replaces Docker Hub's API host (tests); empty is registry-1.docker.io.
	DockerHubAPI string
	// Clock times the waits between attempts after a 429 or a 5xx, and
	// reads Retry-After dates; nil is the wall clock.
	Clock clock.Clock

	mu      sync.Mutex
	schemes map[string]string // host -> "https" or "http", once learnt
	tokens  map[string]string // host + scope -> bearer token
}

// NewClient returns a client with sane timeouts.
func NewClient(creds Credentials) *Client {
	return &Client{
		HTTP: &http.Client{
			Timeout: 60 * time.Second,
			Transport: &http.Transport{
				Proxy:                 http.ProxyFromEnvironment,
				DialContext:           (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
				TLSHandshakeTimeout:   10 * time.Second,
				ResponseHeaderTimeout: 30 * time.Second,
				MaxIdleConnsPerHost:   4,
			},
		},
		Credentials: creds,
		UserAgent:   "terraform-provider-release",
	}
}

// isLoopback reports whether a registry host is on this machine. Like Docker
// Engine, the client accepts plain HTTP from such registries only.
func isLoopback(host string) bool {
	h := host
	if sh, _, err := net.SplitHostPort(host); err == nil {
		h = sh
	}
	h = strings.Trim(h, "[]")
	if h == "localhost" {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}

func (c *Client) scheme(host string) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	if s, ok := c.schemes[host]; ok {
		return s
	}
	return "https"
}

func (c *Client) setScheme(host, scheme string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.schemes == nil {
		c.schemes = map[string]string{}
	}
	c.schemes[host] = scheme
}

func (c *Client) token(key string) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.tokens[key]
}

func (c *Client) setToken(key, tok string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.tokens == nil {
		c.tokens = map[string]string{}
	}
	c.tokens[key] = tok
}

// request is one registry call for a repository.
type request struct {
	method   string
	host     string // the host that serves the API
	credHost string // the host credentials are stored under
	repo     string
	path     string // after /v2/
	accept   []string
}

// request is a call for a repository: to the host that serves its API
// (Docker Hub's is not docker.io), with the credentials stored for it.
func (c *Client) request(method string, repo imageref.Repository, path string, accept []string) request {
	host := repo.APIHost()
	if repo.Host == imageref.DockerHub && c.DockerHubAPI != "" {
		host = c.DockerHubAPI
	}
	return request{method: method, host: host, credHost: repo.CredentialHost(), repo: repo.Path, path: repo.Path + path, accept: accept}
}

// do sends a request, answering the registry's auth challenge once.
// The caller closes the body of a non-nil response.
func (c *Client) do(ctx context.Context, r request) (*http.Response, error) {
	scope := "repository:" + r.repo + ":pull"
	tokenKey := r.host + " " + scope
	auth := ""
	if tok := c.token(tokenKey); tok != "" {
		auth = "Bearer " + tok
	}
	resp, err := c.send(ctx, r, auth)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusUnauthorized {
		return resp, nil
	}
	challenge := resp.Header.Get("WWW-Authenticate")
	drain(resp)

	cred, haveCred, err := c.lookup(r.credHost)
	if err != nil {
		return nil, &Error{Kind: KindUnauthorized, Registry: r.host, Repository: r.repo, Err: err}
	}
	scheme, params := parseChallenge(challenge)
	switch strings.ToLower(scheme) {
	case "basic":
		if !haveCred {
			return nil, &Error{Kind: KindUnauthorized, Registry: r.host, Repository: r.repo,
				Message: "the registry requires a login and no credentials are configured for it"}
		}
		return c.send(ctx, r, basicAuth(cred))
	case "bearer":
		tok, err := c.fetchToken(ctx, r, params, cred, haveCred)
		if err != nil {
			return nil, err
		}
		c.setToken(tokenKey, tok)
		return c.send(ctx, r, "Bearer "+tok)
	default:
		return nil, &Error{Kind: KindUnauthorized, Registry: r.host, Repository: r.repo,
			Message: fmt.Sprintf("the registry asked for an unsupported authentication scheme %q", scheme)}
	}
}

func (c *Client) lookup(host string) (Credential, bool, error) {
	if c.Credentials == nil {
		return Credential{}, false, nil
	}
	return c.Credentials.Lookup(host)
}

// Retries: a registry that answers 429 (Docker Hub's pull quota) or a 5xx is
// asked again, up to maxAttempts in all, after its Retry-After or a backoff
// of 1s, 2s, 4s; a Retry-After longer than maxRetryAfter is not waited for.
const (
	maxAttempts   = 4
	maxRetryAfter = time.Minute
)

// send makes one HTTP request, retried after a 429 or a 5xx.
func (c *Client) send(ctx context.Context, r request, authorization string) (*http.Response, error) {
	for attempt := 1; ; attempt++ {
		resp, err := c.sendOnce(ctx, r, authorization)
		if err != nil || !retryable(resp.StatusCode) || attempt == maxAttempts {
			return resp, err
		}
		wait, ok := retryAfter(resp.Header.Get("Retry-After"), c.clock().Now())
		if !ok {
			wait = time.Second << (attempt - 1)
		}
		if wait > maxRetryAfter {
			return resp, nil // the caller reports it, with the registry's Retry-After
		}
		drain(resp)
		if err := c.clock().Sleep(ctx, wait); err != nil {
			return nil, &Error{Kind: KindUnreachable, Registry: r.host, Repository: r.repo, Message: fmt.Sprintf("waiting %s to ask again after %s", wait, resp.Status), Err: err}
		}
	}
}

func retryable(status int) bool {
	return status == http.StatusTooManyRequests || status == http.StatusBadGateway || status == http.StatusServiceUnavailable ||
		status == http.StatusGatewayTimeout || status == http.StatusInternalServerError
}

// retryAfter reads a Retry-After header: seconds, or an HTTP date.
func retryAfter(h string, now time.Time) (time.Duration, bool) {
	h = strings.TrimSpace(h)
	if h == "" {
		return 0, false
	}
	if n, err := strconv.Atoi(h); err == nil && n >= 0 {
		return time.Duration(n) * time.Second, true
	}
	if t, err := http.ParseTime(h); err == nil {
		return max(t.Sub(now), 0), true
	}
	return 0, false
}

func (c *Client) clock() clock.Clock {
	if c.Clock == nil {
		return clock.Real{}
	}
	return c.Clock
}

// rateLimitMessage says what a 429 means and when to try again.
func rateLimitMessage(resp *http.Response, message string) string {
	msg := fmt.Sprintf("the registry answered %s after %d attempts", resp.Status, maxAttempts)
	if wait, ok := retryAfter(resp.Header.Get("Retry-After"), time.Now()); ok && wait > maxRetryAfter {
		msg = fmt.Sprintf("the registry answered %s and asks to wait %s", resp.Status, wait.Round(time.Second))
	}
	if message != "" {
		msg += " (" + message + ")"
	}
	return msg + "; a registry's pull quota (Docker Hub counts manifest requests per IP address, fewer without a login) is the usual cause: " +
		"log in (registry_auth or docker login), or apply again later"
}

// sendOnce makes one HTTP request, falling back to plain HTTP for loopback registries.
func (c *Client) sendOnce(ctx context.Context, r request, authorization string) (*http.Response, error) {
	scheme := c.scheme(r.host)
	resp, err := c.sendScheme(ctx, scheme, r, authorization)
	if err != nil && scheme == "https" && isLoopback(r.host) && ctx.Err() == nil {
		resp, err2 := c.sendScheme(ctx, "http", r, authorization)
		if err2 == nil {
			c.setScheme(r.host, "http")
			return resp, nil
		}
	}
	if err != nil {
		return nil, &Error{Kind: KindUnreachable, Registry: r.host, Repository: r.repo, Err: unwrapURLError(err)}
	}
	if scheme == "https" {
		c.setScheme(r.host, "https")
	}
	return resp, nil
}

func (c *Client) sendScheme(ctx context.Context, scheme string, r request, authorization string) (*http.Response, error) {
	u := scheme + "://" + r.host + "/v2/" + r.path
	req, err := http.NewRequestWithContext(ctx, r.method, u, nil)
	if err != nil {
		return nil, err
	}
	if len(r.accept) > 0 {
		req.Header.Set("Accept", strings.Join(r.accept, ", "))
	}
	if authorization != "" {
		req.Header.Set("Authorization", authorization)
	}
	req.Header.Set("User-Agent", c.UserAgent)
	return c.HTTP.Do(req)
}

func (c *Client) fetchToken(ctx context.Context, r request, params map[string]string, cred Credential, haveCred bool) (string, error) {
	realm := params["realm"]
	if realm == "" {
		return "", &Error{Kind: KindProtocol, Registry: r.host, Repository: r.repo, Message: "the Bearer challenge has no realm"}
	}
	u, err := url.Parse(realm)
	if err != nil {
		return "", &Error{Kind: KindProtocol, Registry: r.host, Repository: r.repo, Message: "the token realm is not a URL", Err: err}
	}
	q := u.Query()
	if s := params["service"]; s != "" {
		q.Set("service", s)
	}
	scope := params["scope"]
	if scope == "" {
		scope = "repository:" + r.repo + ":pull"
	}
	q.Set("scope", scope)
	if haveCred && cred.IdentityToken != "" {
		// Refresh tokens are exchanged with a POST, as the token spec says.
		form := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {cred.IdentityToken},
			"service": {params["service"]}, "scope": {scope}, "client_id": {c.UserAgent}}
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, u.String(), strings.NewReader(form.Encode()))
		if err != nil {
			return "", err
		}
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		return c.readToken(req, r)
	}
	u.RawQuery = q.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return "", err
	}
	if haveCred {
		req.Header.Set("Authorization", basicAuth(cred))
	}
	return c.readToken(req, r)
}

func (c *Client) readToken(req *http.Request, r request) (string, error) {
	req.Header.Set("User-Agent", c.UserAgent)
	resp, err := c.HTTP.Do(req)
	if err != nil {
		return "", &Error{Kind: KindUnreachable, Registry: r.host, Repository: r.repo,
			Message: "the token service " + req.URL.Host + " did not answer", Err: unwrapURLError(err)}
	}
	defer drain(resp)
	if resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden {
		return "", &Error{Kind: KindUnauthorized, Registry: r.host, Repository: r.repo,
			Message: fmt.Sprintf("the token service refused the credentials (HTTP %d)", resp.StatusCode)}
	}
	if resp.StatusCode != http.StatusOK {
		return "", &Error{Kind: KindProtocol, Registry: r.host, Repository: r.repo,
			Message: fmt.Sprintf("the token service answered HTTP %d", resp.StatusCode)}
	}
	var body struct {
		Token       string `json:"token"`
		AccessToken string `json:"access_token"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&body); err != nil {
		return "", &Error{Kind: KindProtocol, Registry: r.host, Repository: r.repo, Message: "the token response is not JSON", Err: err}
	}
	if body.Token != "" {
		return body.Token, nil
	}
	if body.AccessToken != "" {
		return body.AccessToken, nil
	}
	return "", &Error{Kind: KindProtocol, Registry: r.host, Repository: r.repo, Message: "the token response holds no token"}
}

// parseChallenge splits a WWW-Authenticate header such as
// `Bearer realm="https://auth.example.com/token",service="registry"`.
func parseChallenge(h string) (string, map[string]string) {
	scheme, rest, _ := strings.Cut(strings.TrimSpace(h), " ")
	params := map[string]string{}
	for rest != "" {
		rest = strings.TrimLeft(rest, " ,")
		key, after, ok := strings.Cut(rest, "=")
		if !ok {
			break
		}
		key = strings.ToLower(strings.TrimSpace(key))
		var val string
		if strings.HasPrefix(after, `"`) {
			after = after[1:]
			var b strings.Builder
			i := 0
			for ; i < len(after); i++ {
				if after[i] == '\\' && i+1 < len(after) {
					i++
					b.WriteByte(after[i])
					continue
				}
				if after[i] == '"' {
					break
				}
				b.WriteByte(after[i])
			}
			val = b.String()
			if i < len(after) {
				i++
			}
			rest = after[i:]
		} else {
			val, rest, _ = strings.Cut(after, ",")
			val = strings.TrimSpace(val)
		}
		params[key] = val
	}
	return scheme, params
}

func basicAuth(c Credential) string {
	req := http.Request{Header: http.Header{}}
	req.SetBasicAuth(c.Username, c.Password)
	return req.Header.Get("Authorization")
}

func drain(resp *http.Response) {
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	_ = resp.Body.Close()
}

func unwrapURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// registryErrors is the error body of the distribution spec.
type registryErrors struct {
	Errors []struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"errors"`
}

func readErrorCodes(resp *http.Response) (codes []string, message string) {
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	var re registryErrors
	if json.Unmarshal(body, &re) == nil {
		var msgs []string
		for _, e := range re.Errors {
			codes = append(codes, e.Code)
			if e.Message != "" {
				msgs = append(msgs, e.Message)
			}
		}
		message = strings.Join(msgs, "; ")
	}
	if message == "" {
		message = fmt.Sprintf("HTTP %d", resp.StatusCode)
	}
	return codes, message
}
