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
	"github.com/releasekit/terraform-provider-release/internal/naming"
	"github.com/releasekit/terraform-provider-release/internal/rollout"
	"github.com/releasekit/terraform-provider-release/internal/router"
)

// hostSnapshot shares one listing of managed containers, and one read of
// each router's files, among the resources refreshed together, so a refresh
// costs a couple of Docker calls in all rather than several per environment.
type hostSnapshot struct {
	mu         sync.Mutex
	generation int
	takenAt    time.Time
	containers []docker.Container
	files      map[string]map[string][]byte
	filesAt    map[string]time.Time
	// metrics is each router's exporter text: what its running worker serves.
	metrics   map[string]string
	metricsAt map[string]time.Time
}

// snapshotTTL is short: it only needs to cover one refresh.
const snapshotTTL = 3 * time.Second

func (s *hostSnapshot) listing(ctx context.Context, e *docker.Engine) ([]docker.Container, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.containers != nil && time.Since(s.takenAt) < snapshotTTL {
		return s.containers, nil
	}
	cs, err := rollout.ListManaged(ctx, e)
	if err != nil {
		return nil, err
	}
	s.containers, s.takenAt = cs, time.Now()
	return cs, nil
}

func (s *hostSnapshot) routerFiles(ctx context.Context, c *router.Controller, routerID string) (map[string][]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if f, ok := s.files[routerID]; ok && time.Since(s.filesAt[routerID]) < snapshotTTL {
		return f, nil
	}
	f, err := c.Files(ctx, routerID)
	if err != nil {
		return nil, err
	}
	if s.files == nil {
		s.files, s.filesAt = map[string]map[string][]byte{}, map[string]time.Time{}
	}
	s.files[routerID], s.filesAt[routerID] = f, time.Now()
	return f, nil
}

func (s *hostSnapshot) routerMetrics(ctx context.Context, c *router.Controller, routerID string, metricsPort int) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if m, ok := s.metrics[routerID]; ok && time.Since(s.metricsAt[routerID]) < snapshotTTL {
		return m, nil
	}
	m, err := c.ServerMetrics(ctx, routerID, metricsPort)
	if err != nil {
		return "", err
	}
	if s.metrics == nil {
		s.metrics, s.metricsAt = map[string]string{}, map[string]time.Time{}
	}
	s.metrics[routerID], s.metricsAt[routerID] = m, time.Now()
	return m, nil
}

func (s *hostSnapshot) invalidate() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.containers, s.files, s.metrics = nil, nil, nil
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
	b, _ := json.Marshal(map[string]string{"username": cred.Username, "password": cred.Password, "identitytoken": cred.IdentityToken, "serveraddress": host})
	return base64.URLEncoding.EncodeToString(b)
}

// observeEnvironment reads an environment from the shared host snapshot.
func observeEnvironment(ctx context.Context, d *providerData, name, service, routerName string) (rollout.Status, error) {
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
		if files, err = d.snapshot.routerFiles(ctx, d.routes, routerID); err != nil {
			return rollout.Status{}, err
		}
		// What the running worker serves; unread (nil) if the router cannot
		// answer now: the apply reads it again and reports that.
		if text, err := d.snapshot.routerMetrics(ctx, d.routes, routerID, metricsPort); err == nil {
			live, _ = router.ParseServerStates(strings.NewReader(text), router.BackendName(name, service))
		} else {
			tflog.Warn(ctx, "cannot read what the router runs", map[string]any{"router": routerName, "error": err.Error()})
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
