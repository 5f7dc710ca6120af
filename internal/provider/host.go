package provider

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-log/tflog"
	"github.com/releasekit/terraform-provider-release/internal/docker"
	"github.com/releasekit/terraform-provider-release/internal/imageref"
	"github.com/releasekit/terraform-provider-release/internal/naming"
	"github.com/releasekit/terraform-provider-release/internal/registry"
	"github.com/releasekit/terraform-provider-release/internal/rollout"
	"github.com/releasekit/terraform-provider-release/internal/router"
)

// hostSnapshot shares what a refresh reads from the host among the
// resources read together by one provider process: one listing of the
// managed containers, and per router one read of its files and one of the
// server states its running worker serves. A refresh of any number of
// environments then costs one listing plus two reads per router, and the
// exporter text of a router is parsed once, not once per environment.
//
// Terraform configures the provider once per command (a plan, or the
// apply after it), so a snapshot lives no longer than that command; within
// it an entry is reused for snapshotTTL at most, and every change this
// process makes on the host (invalidate) drops it. Only reads that inform
// the plan use it: an apply observes the host afresh before it acts
// (rollout's Deploy lists the containers again and refuses when the
// decision differs from the plan's), so a stale snapshot can change what a
// plan shows, never what an apply does.
//
// Memory is bounded: one listing and two entries per router, replaced
// when they expire and dropped by invalidate.
type hostSnapshot struct {
	mu sync.Mutex
	// generation counts invalidations: a read started before one is never
	// kept after it.
	generation uint64
	entries    map[string]*snapshotEntry
	// now is the clock; nil is time.Now.
	now func() time.Time
}

// snapshotTTL bounds the reuse of a read: long enough to cover the refresh
// of thousands of environments on a slow host, short enough that a
// provider kept running between commands (debug mode) reads again.
const snapshotTTL = 30 * time.Second

// snapshotEntry is one read, shared by every caller that asks for it while
// it runs (they wait for it) and, once it succeeded, until it expires.
type snapshotEntry struct {
	generation uint64
	done       chan struct{} // closed when value and err are set
	takenAt    time.Time
	value      any
	err        error
}

// routerStates is what a router's running worker serves, by backend and
// server: its exporter, read and parsed once per refresh.
type routerStates map[string]map[string]router.ServerState

func (s *hostSnapshot) clock() time.Time {
	if s.now != nil {
		return s.now()
	}
	return time.Now()
}

// get returns the shared result of fetch for key: a fresh enough one that
// is kept, the one being fetched (waiting for it), or a new fetch. Failed
// reads are not kept: the next caller tries again.
func (s *hostSnapshot) get(ctx context.Context, key string, fetch func(context.Context) (any, error)) (any, error) {
	s.mu.Lock()
	now := s.clock()
	for k, e := range s.entries {
		if isDone(e) && now.Sub(e.takenAt) >= snapshotTTL {
			delete(s.entries, k) // expired: the map holds no more than the live reads
		}
	}
	if e, ok := s.entries[key]; ok {
		s.mu.Unlock()
		select {
		case <-e.done:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		return e.value, e.err
	}
	e := &snapshotEntry{generation: s.generation, done: make(chan struct{})}
	if s.entries == nil {
		s.entries = map[string]*snapshotEntry{}
	}
	s.entries[key] = e
	s.mu.Unlock()

	v, err := fetch(ctx)

	s.mu.Lock()
	e.value, e.err, e.takenAt = v, err, s.clock()
	if (err != nil || e.generation != s.generation) && s.entries[key] == e {
		delete(s.entries, key)
	}
	close(e.done)
	s.mu.Unlock()
	return v, err
}

func isDone(e *snapshotEntry) bool {
	select {
	case <-e.done:
		return true
	default:
		return false
	}
}

func (s *hostSnapshot) listing(ctx context.Context, e *docker.Engine) ([]docker.Container, error) {
	v, err := s.get(ctx, "listing", func(ctx context.Context) (any, error) { return rollout.ListManaged(ctx, e) })
	if err != nil {
		return nil, err
	}
	return v.([]docker.Container), nil
}

func (s *hostSnapshot) routerFiles(ctx context.Context, c *router.Controller, routerID string) (map[string][]byte, error) {
	v, err := s.get(ctx, "files/"+routerID, func(ctx context.Context) (any, error) { return c.Files(ctx, routerID) })
	if err != nil {
		return nil, err
	}
	return v.(map[string][]byte), nil
}

// routerStates reads what the router's running worker serves, every
// backend at once.
func (s *hostSnapshot) routerStates(ctx context.Context, c *router.Controller, routerID string, metricsPort int) (routerStates, error) {
	v, err := s.get(ctx, "states/"+routerID, func(ctx context.Context) (any, error) {
		text, err := c.ServerMetrics(ctx, routerID, metricsPort)
		if err != nil {
			return nil, err
		}
		states, err := router.ParseServerStatesByBackend(strings.NewReader(text))
		return routerStates(states), err
	})
	if err != nil {
		return nil, err
	}
	return v.(routerStates), nil
}

// invalidate drops every read: the host changed (this process changed it).
// Reads under way finish for their callers but are not kept.
func (s *hostSnapshot) invalidate() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.generation++
	s.entries = nil
}

func (d *providerData) invalidate() { d.snapshot.invalidate() }

// pullAuth is the X-Registry-Auth header for the daemon's pull of an image,
// from the same credentials the provider uses for the registry.
func (d *providerData) pullAuth(image string) string {
	host, _, found := strings.Cut(image, "/")
	if !found || d.registry.Credentials == nil {
		return ""
	}
	cred, ok, err := d.registry.Credentials.Lookup(host)
	if err != nil || !ok {
		return ""
	}
	server := host
	if registry.NormalizeHost(host) == imageref.DockerHubCredentialHost {
		server = "https://index.docker.io/v1/" // as the Docker CLI sends it for Docker Hub
	}
	b, _ := json.Marshal(map[string]string{"username": cred.Username, "password": cred.Password, "identitytoken": cred.IdentityToken, "serveraddress": server})
	return base64.URLEncoding.EncodeToString(b)
}

// observeEnvironment reads an environment from the shared host snapshot.
func observeEnvironment(ctx context.Context, d *providerData, name, service, routerName string) (rollout.Status, error) {
	if routerName != "" {
		// The router's probe session opens while the host is listed; the
		// reads below wait for it.
		go d.routes.Prepare(ctx, d.engine, router.ContainerName(routerName))
	}
	managed, err := d.snapshot.listing(ctx, d.engine)
	if err != nil {
		return rollout.Status{}, err
	}
	if routerName == "" {
		for _, c := range managed {
			if c.Labels[naming.LabelEnvironment] == name && c.Labels[naming.LabelService] == service {
				routerName = c.Labels[naming.LabelRouter]
				break
			}
		}
	}
	routerID, metricsPort := "", 0
	var files map[string][]byte
	var live map[string]router.ServerState
	for _, c := range managed {
		if naming.KindRouter.Is(c.Labels) && c.Labels[naming.LabelRouter] == routerName && c.Running() {
			routerID = c.ID
			metricsPort, _ = strconv.Atoi(c.Labels[naming.LabelRouterMetricsPort])
		}
	}
	if routerID != "" {
		// The files and what the worker runs are read side by side.
		var states routerStates
		var statesErr error
		read := make(chan struct{})
		go func() {
			defer close(read)
			states, statesErr = d.snapshot.routerStates(ctx, d.routes, routerID, metricsPort)
		}()
		files, err = d.snapshot.routerFiles(ctx, d.routes, routerID)
		<-read
		if err != nil {
			return rollout.Status{}, err
		}
		// What the running worker serves; unread (nil) if the router cannot
		// answer now: the apply reads it again and reports that.
		if statesErr == nil {
			live = states[router.BackendName(name, service)]
			if live == nil {
				live = map[string]router.ServerState{} // read: the worker serves no such backend
			}
		} else {
			tflog.Warn(ctx, "cannot read what the router runs", map[string]any{"router": routerName, "error": statesErr.Error()})
		}
	}
	return rollout.ObserveLive(name, service, managed, routerID, files, live), nil
}

// holdRouter takes the router's lease for this apply (shared by everything
// the apply changes on it): another apply waits, then fails naming the
// holder. The caller defers the release it returns, which reports a lease
// lost while held.
func (d *providerData) holdRouter(ctx context.Context, name, image string, diags *diag.Diagnostics) (func(), bool) {
	l, release, err := d.leases.Hold(ctx, name, image)
	if err != nil {
		addRouterLeaseError(diags, d, name, err)
		return nil, false
	}
	return func() {
		if err := l.Err(); err != nil {
			addRouterLeaseError(diags, d, name, err)
		}
		_ = release(context.WithoutCancel(ctx))
	}, true
}
