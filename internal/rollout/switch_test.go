package rollout

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"reflect"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	cerrdefs "github.com/containerd/errdefs"

	"github.com/releasekit/terraform-provider-release/internal/clock"
	"github.com/releasekit/terraform-provider-release/internal/docker"
	"github.com/releasekit/terraform-provider-release/internal/naming"
	"github.com/releasekit/terraform-provider-release/internal/probe"
	"github.com/releasekit/terraform-provider-release/internal/router"
)

// ---- fake clock ----

type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Sleep(ctx context.Context, d time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
	return nil
}

// ---- fake Docker host ----

// Behaviours of a container, chosen per spec by fakeHost.behaviour.
const (
	healthy   = ""          // passes every check
	unhealthy = "unhealthy" // fails every check; unhealthy after 3
	exits     = "exits"     // exits right after it starts
	hangs     = "hangs"     // never finishes a check
)

type fakeContainer struct {
	c         docker.Container
	spec      docker.ContainerSpec
	startedAt time.Time
	// passed is set when a probe passed since the container last started:
	// what the fake router's check would pass.
	passed bool
}

type fakeHost struct {
	t     *testing.T
	clock clock.Clock
	// mu guards everything below: the deployer calls in parallel.
	mu sync.Mutex

	containers map[string]*fakeContainer
	networks   map[string]map[string]string
	connected  map[string]map[string]bool // network -> container IDs
	nextID     int
	nextIP     int

	pulls   map[string]int
	creates []docker.ContainerSpec
	removed []string
	// events records what happened, in order, for both the host and the router.
	events *[]string

	// behaviour decides how a container behaves from its spec; nil means healthy.
	behaviour func(spec docker.ContainerSpec) string
	logs      string
	// readyAfter is how long a healthy container fails its checks after
	// it started (connection refused), as an app that is still starting.
	readyAfter time.Duration
	// execs records every probe exec: container name and fake time.
	execs []fakeExec
}

type fakeExec struct {
	name string
	at   time.Time
	cmd  []string
}

func newFakeHost(t *testing.T, clock clock.Clock, events *[]string) *fakeHost {
	return &fakeHost{
		t: t, clock: clock, events: events,
		containers: map[string]*fakeContainer{},
		networks:   map[string]map[string]string{},
		connected:  map[string]map[string]bool{},
		pulls:      map[string]int{},
		logs:       "listening on :8080\npanic: cannot connect to the database\n",
	}
}

func (h *fakeHost) event(format string, args ...any) {
	*h.events = append(*h.events, fmt.Sprintf(format, args...))
}

func (h *fakeHost) behaviourOf(fc *fakeContainer) string {
	if h.behaviour == nil {
		return healthy
	}
	return h.behaviour(fc.spec)
}

// view is the container as Inspect shows it now: health follows the clock.
func (h *fakeHost) view(fc *fakeContainer) docker.Container {
	c := fc.c
	c.Labels = map[string]string{}
	for k, v := range fc.c.Labels {
		c.Labels[k] = v
	}
	c.IPs = map[string]string{}
	for k, v := range fc.c.IPs {
		c.IPs[k] = v
	}
	if c.State != "running" {
		c.Health = ""
		return c
	}
	if fc.spec.Health == nil || len(fc.spec.Health.Test) == 0 || fc.spec.Health.Test[0] == "NONE" {
		// No Docker health check: no health status, only the state.
		if h.behaviourOf(fc) == exits {
			c.State, c.IPs = "exited", map[string]string{}
		}
		return c
	}
	interval := fc.spec.Health.Interval
	if interval <= 0 {
		interval = time.Second
	}
	checks := int(h.clock.Now().Sub(fc.startedAt) / interval)
	if checks > 5 {
		checks = 5
	}
	c.Health = "starting"
	switch h.behaviourOf(fc) {
	case healthy:
		for i := 0; i < checks; i++ {
			c.HealthLog = append(c.HealthLog, docker.HealthResult{ExitCode: 0, Output: "200 OK"})
		}
		if checks >= 1 {
			c.Health = "healthy"
		}
	case unhealthy:
		for i := 0; i < checks; i++ {
			c.HealthLog = append(c.HealthLog, docker.HealthResult{ExitCode: 1, Output: "GET /healthz: 500 Internal Server Error"})
		}
		if checks >= 3 {
			c.Health = "unhealthy"
		}
	case exits:
		c.State, c.Health, c.IPs = "exited", "", map[string]string{}
	case hangs:
	}
	return c
}

func (h *fakeHost) List(_ context.Context, labels map[string]string) ([]docker.Container, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []docker.Container
	for _, fc := range h.containers {
		match := true
		for k, v := range labels {
			if got, ok := fc.c.Labels[k]; !ok || (v != "" && got != v) {
				match = false
			}
		}
		if match {
			c := h.view(fc)
			c.HealthLog = nil // inspect only
			out = append(out, c)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

func (h *fakeHost) find(id string) (*fakeContainer, error) {
	if fc, ok := h.containers[id]; ok {
		return fc, nil
	}
	for _, fc := range h.containers {
		if fc.c.Name == id {
			return fc, nil
		}
	}
	return nil, fmt.Errorf("no such container: %s", id)
}

func (h *fakeHost) Inspect(_ context.Context, id string) (docker.Container, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	fc, err := h.find(id)
	if err != nil {
		return docker.Container{}, err
	}
	return h.view(fc), nil
}

func (h *fakeHost) assignIP(fc *fakeContainer) {
	h.nextIP++
	fc.c.IPs = map[string]string{fc.spec.Network: fmt.Sprintf("172.30.%d.%d", h.nextIP/250, h.nextIP%250+2)}
}

func (h *fakeHost) Create(_ context.Context, spec docker.ContainerSpec) (string, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, fc := range h.containers {
		if fc.c.Name == spec.Name {
			return "", fmt.Errorf("Conflict. The container name %q is already in use: %w", spec.Name, cerrdefs.ErrConflict)
		}
	}
	if _, ok := h.networks[spec.Network]; !ok && spec.Network != "" {
		return "", fmt.Errorf("network %s not found", spec.Network)
	}
	h.nextID++
	id := fmt.Sprintf("c%03d", h.nextID)
	labels := map[string]string{}
	for k, v := range spec.Labels {
		labels[k] = v
	}
	fc := &fakeContainer{spec: spec, c: docker.Container{ID: id, Name: spec.Name, Image: spec.Image, Labels: labels, State: "created", Created: h.clock.Now(), Env: spec.Env, Cmd: spec.Cmd}}
	h.assignIP(fc)
	h.containers[id] = fc
	if !naming.KindServed.Is(spec.Labels) { // a record, not a container that runs
		h.creates = append(h.creates, spec)
	}
	h.event("create %s", spec.Name)
	return id, nil
}

func (h *fakeHost) Start(_ context.Context, id string) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	fc, err := h.find(id)
	if err != nil {
		return err
	}
	if fc.c.State == "running" {
		return nil
	}
	if len(fc.c.IPs) == 0 {
		h.assignIP(fc)
	}
	fc.c.State = "running"
	fc.startedAt = h.clock.Now()
	fc.passed = false
	h.event("start %s", fc.c.Name)
	return nil
}

func (h *fakeHost) Stop(_ context.Context, id string, timeout time.Duration) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	fc, err := h.find(id)
	if err != nil {
		return err
	}
	fc.c.State = "exited"
	fc.c.IPs = map[string]string{}
	h.event("stop %s", fc.c.Name)
	return nil
}

func (h *fakeHost) Remove(_ context.Context, id string) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	fc, err := h.find(id)
	if err != nil {
		return nil // like the Engine: a missing container is no error
	}
	delete(h.containers, fc.c.ID)
	h.removed = append(h.removed, fc.c.Name)
	h.event("remove %s", fc.c.Name)
	return nil
}

// Exec runs the probe: its answer follows the container's behaviour. A
// check that hangs takes the probe's timeout (its last argument) of fake time.
func (h *fakeHost) Exec(ctx context.Context, id string, cmd []string) (int, string, error) {
	h.mu.Lock()
	fc, err := h.find(id)
	if err != nil {
		h.mu.Unlock()
		return 0, "", err
	}
	now := h.clock.Now()
	h.execs = append(h.execs, fakeExec{name: fc.c.Name, at: now, cmd: cmd})
	running := h.view(fc).State == "running"
	behaviour, ready := h.behaviourOf(fc), !now.Before(fc.startedAt.Add(h.readyAfter))
	h.mu.Unlock()
	if !running {
		return 0, "", cerrdefs.ErrConflict.WithMessage("container " + id + " is not running")
	}
	switch behaviour {
	case unhealthy:
		return 1, "GET /healthz: 500 Internal Server Error", nil
	case hangs:
		timeout, _ := time.ParseDuration(cmd[len(cmd)-1])
		if err := h.clock.Sleep(ctx, timeout); err != nil {
			return 0, "", err
		}
		return 1, "release-probe: GET /healthz: timeout after " + timeout.String(), nil
	}
	if !ready {
		return 1, "release-probe: dial tcp 127.0.0.1:8080: connect: connection refused", nil
	}
	h.mu.Lock()
	fc.passed = true
	h.mu.Unlock()
	return 0, "200 OK", nil
}

func (h *fakeHost) Logs(_ context.Context, id string, tail int) (string, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if _, err := h.find(id); err != nil {
		return "", err
	}
	return h.logs, nil
}

func (h *fakeHost) EnsureImage(_ context.Context, ref, _ string) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.pulls[ref]++
	h.event("pull %s", ref)
	return nil
}

func (h *fakeHost) EnsureNetwork(_ context.Context, name string, labels map[string]string) (bool, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if _, ok := h.networks[name]; ok {
		return false, nil
	}
	h.networks[name] = labels
	return true, nil
}

func (h *fakeHost) ConnectNetwork(_ context.Context, network, id string) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if _, ok := h.networks[network]; !ok {
		return fmt.Errorf("network %s not found", network)
	}
	if h.connected[network] == nil {
		h.connected[network] = map[string]bool{}
	}
	h.connected[network][id] = true
	return nil
}

func (h *fakeHost) DisconnectNetwork(_ context.Context, network, id string) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	delete(h.connected[network], id)
	return nil
}

func (h *fakeHost) RemoveNetwork(_ context.Context, name string) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, fc := range h.containers {
		if _, ok := fc.c.IPs[name]; ok {
			return fmt.Errorf("network %s has active endpoints", name)
		}
	}
	delete(h.networks, name)
	delete(h.connected, name)
	return nil
}

func (h *fakeHost) Architecture(context.Context) (string, error) { return "x86_64", nil }

// byLabels returns the containers of an environment's service, by name.
func (h *fakeHost) byLabels(env string, rev int) []docker.Container {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []docker.Container
	for _, fc := range h.containers {
		if naming.KindApp.Is(fc.c.Labels) && fc.c.Labels[naming.LabelEnvironment] == env && (rev == 0 || fc.c.Labels[naming.LabelRevision] == fmt.Sprint(rev)) {
			out = append(out, h.view(fc))
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// ---- fake router ----

type fakeRoutes struct {
	t      *testing.T
	host   *fakeHost
	files  map[string]map[string][]byte // router ID -> files
	events *[]string
	applys int
	// history holds every route file written, in order.
	history [][]byte
	// notReady are servers the router's own check fails; waits for them time out.
	notReady map[string]string
	// live, when set for a router, is what its worker runs instead of its files.
	live  map[string]map[string]router.ServerState
	waits [][]string
	// unconfirmedAt makes that load (counted in applys) go out unconfirmed:
	// written and signalled, the reload never confirmed.
	unconfirmedAt int
}

func (r *fakeRoutes) WaitReady(_ context.Context, routerID string, _ int, backend string, servers []string, _ time.Duration) error {
	r.host.mu.Lock()
	defer r.host.mu.Unlock()
	r.waits = append(r.waits, servers)
	*r.events = append(*r.events, "wait ready "+strings.Join(servers, ","))
	down := map[string]router.ServerState{}
	for _, s := range servers {
		if code, bad := r.notReady[s]; bad {
			down[s] = router.ServerState{Status: "DOWN", CheckStatus: code}
		}
	}
	if len(down) > 0 {
		return &router.NotReadyError{Servers: down}
	}
	return nil
}

func (r *fakeRoutes) LiveServers(_ context.Context, routerID string, _ int, backend string) (map[string]router.ServerState, error) {
	r.host.mu.Lock()
	defer r.host.mu.Unlock()
	if live, ok := r.live[routerID]; ok {
		return live, nil
	}
	out := map[string]router.ServerState{}
	for name, content := range r.files[routerID] {
		if !strings.HasPrefix(name, "route_") || !strings.Contains(string(content), "backend "+backend+"\n") {
			continue
		}
		for _, s := range router.ParseRouteServers(content) {
			out[s.Name] = router.ServerState{Status: "UP", CheckStatus: "L7OK", Weight: s.Weight}
		}
	}
	return out, nil
}

func (r *fakeRoutes) Files(_ context.Context, routerID string) (map[string][]byte, error) {
	out := map[string][]byte{}
	for k, v := range r.files[routerID] {
		out[k] = append([]byte(nil), v...)
	}
	return out, nil
}

func (r *fakeRoutes) Apply(_ context.Context, routerID string, files map[string][]byte) error {
	r.host.mu.Lock()
	defer r.host.mu.Unlock()
	r.applys++
	delete(r.live, routerID) // a reload loads what the files hold
	if r.files[routerID] == nil {
		r.files[routerID] = map[string][]byte{}
	}
	for name, content := range files {
		// Traffic may move only to healthy containers.
		for _, s := range router.ParseRouteServers(content) {
			if s.Drain {
				continue // in maintenance: no request goes there
			}
			ip, _, _ := strings.Cut(s.Address, ":")
			found := false
			for _, fc := range r.host.containers {
				for _, cip := range fc.c.IPs {
					if cip == ip {
						found = true
						if c := r.host.view(fc); !c.Running() || (c.Health != "healthy" && !fc.passed) {
							r.t.Errorf("route %s sends traffic to %s (%s), which is %s/%q", name, s.Address, c.Name, c.State, c.Health)
						}
					}
				}
			}
			if !found {
				r.t.Errorf("route %s sends traffic to %s, which no container has", name, s.Address)
			}
		}
		r.files[routerID][name] = append([]byte(nil), content...)
		r.history = append(r.history, append([]byte(nil), content...))
		*r.events = append(*r.events, "route "+name)
	}
	if r.applys == r.unconfirmedAt {
		return &router.ReloadUnconfirmedError{Err: errors.New("the router did not confirm the reload within 30s")}
	}
	return nil
}

// ---- harness ----

type harness struct {
	t      *testing.T
	ctx    context.Context
	clock  *fakeClock
	host   *fakeHost
	routes *fakeRoutes
	d      *Deployer
	events []string
}

func newHarness(t *testing.T) *harness {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	h := &harness{t: t, ctx: ctx, clock: &fakeClock{now: time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)}}
	h.host = newFakeHost(t, h.clock, &h.events)
	h.routes = &fakeRoutes{t: t, host: h.host, events: &h.events, files: map[string]map[string][]byte{
		"router-1": {router.BaseFile: []byte("# base\n")},
	}}
	h.d = &Deployer{Host: h.host, Routes: h.routes, Clock: h.clock}
	return h
}

func webSpec(env, digest string) Spec {
	listen := 8080
	if env == "staging" {
		listen = 8081
	}
	return Spec{
		Environment: env,
		Service:     "web",
		Image:       repo + "@" + digest,
		Digest:      digest,
		Replicas:    2,
		Port:        8080,
		Env:         map[string]string{"MODE": "production"},
		Health: Health{
			Path:             "/healthz",
			Interval:         2 * time.Second,
			Timeout:          time.Second,
			HealthyThreshold: 2,
			StartTimeout:     time.Minute,
		},
		Router:       RouterRef{Name: "edge", ContainerID: "router-1", ListenPort: listen},
		HistoryLimit: 5,
		StopTimeout:  10 * time.Second,
	}
}

func (h *harness) deploy(spec Spec) Result {
	h.t.Helper()
	res, err := h.d.Deploy(h.ctx, spec)
	if err != nil {
		h.t.Fatalf("Deploy(%s): %v", spec.Digest[:12], err)
	}
	return res
}

func (h *harness) route(env string) []byte {
	return h.routes.files["router-1"][router.RouteFileName(env, "web")]
}

// routedNames is the server names in an environment's route.
func (h *harness) routedNames(env string) []string {
	var out []string
	for _, s := range router.ParseRouteServers(h.route(env)) {
		out = append(out, s.Name)
	}
	return out
}

func states(cs []docker.Container) []string {
	var out []string
	for _, c := range cs {
		out = append(out, c.Name+"="+c.State)
	}
	return out
}

func indexOf(events []string, prefix string) int {
	for i, e := range events {
		if strings.HasPrefix(e, prefix) {
			return i
		}
	}
	return -1
}

func lastIndexOf(events []string, prefix string) int {
	for i := len(events) - 1; i >= 0; i-- {
		if strings.HasPrefix(events[i], prefix) {
			return i
		}
	}
	return -1
}

// ---- tests ----

func TestDeployFirstRevision(t *testing.T) {
	h := newHarness(t)
	spec := webSpec("production", digest1)
	res := h.deploy(spec)

	st := res.Status
	if !st.Found || st.Revision != 1 || st.Running != 2 || st.Digest != digest1 || st.Image != spec.Image {
		t.Errorf("Status = found %v, revision %d, %d running, %s; want revision 1 of digest1 with 2 running", st.Found, st.Revision, st.Running, st.Digest)
	}
	if st.ConfigHash != spec.ConfigHash() {
		t.Errorf("ConfigHash = %q, want %q", st.ConfigHash, spec.ConfigHash())
	}
	// Created at once, before any health check: deployed at the start time.
	if want := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC); !st.DeployedAt.Equal(want) {
		t.Errorf("DeployedAt = %v, want %v", st.DeployedAt, want)
	}
	if len(st.Drift) != 0 || len(st.History) != 0 || len(st.Retained) != 0 || (res.Decision.Kind == Rollback) {
		t.Errorf("a first deploy has drift %q, history %v, retained %v, reused %v", st.Drift, st.History, st.Retained, (res.Decision.Kind == Rollback))
	}
	// Ready at once: the gate's first check at the start, its second 20ms later.
	if res.HealthyAfter != gateFirstPoll {
		t.Errorf("HealthyAfter = %s, want %s: %d checks, the first at the start, the next after %s", res.HealthyAfter, gateFirstPoll, spec.Health.HealthyThreshold, gateFirstPoll)
	}

	if len(h.host.creates) != 2 {
		t.Fatalf("%d containers created, want 2 replicas", len(h.host.creates))
	}
	if h.host.pulls[spec.Image] != 1 {
		t.Errorf("image pulled %d times, want 1", h.host.pulls[spec.Image])
	}
	probeBin, err := probe.Binary("amd64")
	if err != nil {
		t.Fatal(err)
	}
	sort.Slice(h.host.creates, func(i, j int) bool { return h.host.creates[i].Name < h.host.creates[j].Name })
	for i, cs := range h.host.creates {
		replica := i + 1
		if want := fmt.Sprintf("production-web-r1-%d", replica); cs.Name != want {
			t.Errorf("container name %q, want %q", cs.Name, want)
		}
		wantLabels := map[string]string{
			naming.LabelManaged:     "true",
			naming.LabelKind:        "app",
			naming.LabelEnvironment: "production",
			naming.LabelService:     "web",
			naming.LabelImage:       spec.Image,
			naming.LabelDigest:      digest1,
			naming.LabelRevision:    "1",
			naming.LabelReplica:     fmt.Sprint(replica),
			naming.LabelTrack:       string(naming.TrackStable),
			naming.LabelPort:        "8080",
			naming.LabelDeployedAt:  fmt.Sprint(cs.Labels[naming.LabelDeployedAt]),
			naming.LabelConfigHash:  spec.ConfigHash(),
			naming.LabelRouter:      "edge",
			naming.LabelHistory:     "",
		}
		if !reflect.DeepEqual(cs.Labels, wantLabels) {
			t.Errorf("labels of %s =\n%v\nwant\n%v", cs.Name, cs.Labels, wantLabels)
		}
		if cs.Image != spec.Image || cs.Network != "release-production-web" {
			t.Errorf("%s: image %q network %q", cs.Name, cs.Image, cs.Network)
		}
		for _, e := range []string{"MODE=production", "RELEASE_ENVIRONMENT=production", "RELEASE_SERVICE=web", "RELEASE_REVISION=1"} {
			found := false
			for _, got := range cs.Env {
				found = found || got == e
			}
			if !found {
				t.Errorf("%s: env %v lacks %s", cs.Name, cs.Env, e)
			}
		}
		// No Docker health check, not even the image's: nothing runs in the container at rest.
		if cs.Health == nil || !reflect.DeepEqual(cs.Health.Test, []string{"NONE"}) {
			t.Errorf("%s: health check %+v, want NONE", cs.Name, cs.Health)
		}
		if len(cs.Files) != 1 || cs.Files[0].Path != probe.Path || !bytes.Equal(cs.Files[0].Content, probeBin) || cs.Files[0].Mode&0o111 == 0 {
			t.Errorf("%s: the health probe is not placed as an executable %s", cs.Name, probe.Path)
		}
		if cs.StopTimeout != 10 {
			t.Errorf("%s: stop timeout %d, want 10", cs.Name, cs.StopTimeout)
		}
	}

	// Routed to both replicas at their addresses on the environment's network.
	cs := h.host.byLabels("production", 1)
	var want []router.Server
	for _, c := range cs {
		if !c.Running() || c.Health != "" {
			t.Errorf("%s is %s/%s, want running with no Docker health status", c.Name, c.State, c.Health)
		}
		want = append(want, router.Server{Name: "r1-" + c.Labels[naming.LabelReplica], Address: c.IPs["release-production-web"] + ":8080", Weight: 100})
	}
	if got := router.ParseRouteServers(h.route("production")); !reflect.DeepEqual(got, want) {
		t.Errorf("route servers = %+v, want %+v", got, want)
	}
	// A new route: its listener first, with no server (a reload), then its
	// servers (through the runtime API, where the router checks them at once).
	if len(h.routes.history) != 2 || len(router.ParseRouteServers(h.routes.history[0])) != 0 || !bytes.Equal(h.routes.history[1], h.route("production")) {
		t.Errorf("the first release wrote %d routes, want the listener with no server, then the route", len(h.routes.history))
	}
	if !strings.Contains(string(h.route("production")), "bind :8080") || !strings.Contains(string(h.route("production")), "option httpchk GET /healthz") {
		t.Errorf("route:\n%s", h.route("production"))
	}
	if !h.host.connected["release-production-web"]["router-1"] {
		t.Errorf("the router was not connected to the environment's network")
	}
	// Traffic moved only after both were started (and, checked by the fake router, healthy).
	if r, s := indexOf(h.events, "route "), lastIndexOf(h.events, "start "); r < s {
		t.Errorf("routed before every container started: %v", h.events)
	}
}

func TestDeploySameReleaseChangesNothing(t *testing.T) {
	h := newHarness(t)
	spec := webSpec("production", digest1)
	h.deploy(spec)
	route := h.route("production")
	n, applies := len(h.events), h.routes.applys

	res := h.deploy(spec)
	if res.Status.Revision != 1 || (res.Decision.Kind == Rollback) || len(res.Status.Drift) != 0 {
		t.Errorf("second apply: revision %d, reused %v, drift %q", res.Status.Revision, (res.Decision.Kind == Rollback), res.Status.Drift)
	}
	if extra := h.events[n:]; len(extra) != 0 {
		t.Errorf("an apply without changes did %v", extra)
	}
	if !bytes.Equal(route, h.route("production")) || h.routes.applys != applies {
		t.Errorf("the route was rewritten (%d applies)", h.routes.applys)
	}
}

func TestDeploySwitchToNewDigest(t *testing.T) {
	h := newHarness(t)
	h.deploy(webSpec("production", digest1))
	h.clock.Sleep(h.ctx, time.Hour)
	n := len(h.events)

	res := h.deploy(webSpec("production", digest2))
	st := res.Status
	if st.Revision != 2 || st.Digest != digest2 || st.Running != 2 || (res.Decision.Kind == Rollback) {
		t.Errorf("Status = revision %d (%s), %d running, reused %v; want revision 2 of digest2", st.Revision, st.Digest, st.Running, (res.Decision.Kind == Rollback))
	}
	if got, want := h.routedNames("production"), []string{"r2-1", "r2-2"}; !reflect.DeepEqual(got, want) {
		t.Errorf("routed to %v, want %v", got, want)
	}
	// Revision 1 is stopped and kept for a rollback.
	if got, want := states(h.host.byLabels("production", 1)), []string{"production-web-r1-1=exited", "production-web-r1-2=exited"}; !reflect.DeepEqual(got, want) {
		t.Errorf("revision 1 = %v, want %v", got, want)
	}
	if len(h.host.removed) != 0 {
		t.Errorf("removed %v, want nothing removed", h.host.removed)
	}
	if want := []int{1}; !reflect.DeepEqual(st.Retained, want) {
		t.Errorf("Retained = %v, want %v", st.Retained, want)
	}
	if got := revisions(st.History); !reflect.DeepEqual(got, []int{1}) || st.History[0].Digest != digest1 {
		t.Errorf("History = %+v, want revision 1 of digest1", st.History)
	}
	if len(st.Drift) != 0 {
		t.Errorf("Drift = %q", st.Drift)
	}
	// The new containers carry the revision they replaced.
	for _, c := range h.host.byLabels("production", 2) {
		h := decodeHistory(c.Labels[naming.LabelHistory])
		if len(h) != 1 || h[0].Revision != 1 || h[0].Digest != digest1 {
			t.Errorf("%s history label = %q", c.Name, c.Labels[naming.LabelHistory])
		}
	}
	// No downtime: the route moved before the old revision stopped, and after the new one started.
	ev := h.events[n:]
	r, firstStop, lastStart := indexOf(ev, "route "), indexOf(ev, "stop production-web-r1-"), lastIndexOf(ev, "start production-web-r2-")
	if r < 0 || firstStop < 0 || lastStart < 0 || !(lastStart < r && r < firstStop) {
		t.Errorf("order of the switch: %v", ev)
	}
}

func TestDeployRollbackReusesRetainedRevision(t *testing.T) {
	h := newHarness(t)
	h.deploy(webSpec("production", digest1))
	h.deploy(webSpec("production", digest2))
	creates, pulls := len(h.host.creates), h.host.pulls[repo+"@"+digest1]
	n := len(h.events)

	res := h.deploy(webSpec("production", digest1))
	st := res.Status
	if !(res.Decision.Kind == Rollback) {
		t.Errorf("Reused = false, want the retained revision 1 restarted")
	}
	if len(h.host.creates) != creates {
		t.Errorf("a rollback created %d containers", len(h.host.creates)-creates)
	}
	if h.host.pulls[repo+"@"+digest1] != pulls {
		t.Errorf("a rollback pulled the image again")
	}
	if st.Revision != 1 || st.Digest != digest1 || st.Running != 2 {
		t.Errorf("Status = revision %d (%s) with %d running, want revision 1", st.Revision, st.Digest, st.Running)
	}
	if got, want := h.routedNames("production"), []string{"r1-1", "r1-2"}; !reflect.DeepEqual(got, want) {
		t.Errorf("routed to %v, want %v", got, want)
	}
	// The route points at the restarted containers' current addresses.
	for _, s := range router.ParseRouteServers(h.route("production")) {
		c, err := h.host.Inspect(h.ctx, "production-web-"+s.Name)
		if err != nil {
			t.Fatal(err)
		}
		if want := c.IPs["release-production-web"] + ":8080"; s.Address != want {
			t.Errorf("server %s routed to %s, but the container is at %s", s.Name, s.Address, want)
		}
	}
	if got, want := states(h.host.byLabels("production", 2)), []string{"production-web-r2-1=exited", "production-web-r2-2=exited"}; !reflect.DeepEqual(got, want) {
		t.Errorf("revision 2 = %v, want %v", got, want)
	}
	if got, want := states(h.host.byLabels("production", 1)), []string{"production-web-r1-1=running", "production-web-r1-2=running"}; !reflect.DeepEqual(got, want) {
		t.Errorf("revision 1 = %v, want %v", got, want)
	}
	if want := []int{2}; !reflect.DeepEqual(st.Retained, want) {
		t.Errorf("Retained = %v, want %v", st.Retained, want)
	}
	if got := revisions(st.History); !reflect.DeepEqual(got, []int{2}) {
		t.Errorf("History = %v, want [2]", got)
	}
	if len(st.Drift) != 0 {
		t.Errorf("Drift = %q", st.Drift)
	}
	ev := h.events[n:]
	if r, s := indexOf(ev, "route "), indexOf(ev, "stop production-web-r2-"); r < 0 || s < r {
		t.Errorf("order of the rollback: %v", ev)
	}

	// Forward again to digest2: revision 2 is reused in its turn.
	res = h.deploy(webSpec("production", digest2))
	if !(res.Decision.Kind == Rollback) || res.Status.Revision != 2 || len(h.host.creates) != creates {
		t.Errorf("forward again: reused %v, revision %d, %d new containers", (res.Decision.Kind == Rollback), res.Status.Revision, len(h.host.creates)-creates)
	}
}

func TestDeployRollbackWithOtherSettingsIsANewRevision(t *testing.T) {
	h := newHarness(t)
	h.deploy(webSpec("production", digest1))
	h.deploy(webSpec("production", digest2))
	spec := webSpec("production", digest1)
	spec.Env["MODE"] = "debug"
	res := h.deploy(spec)
	if (res.Decision.Kind == Rollback) || res.Status.Revision != 3 {
		t.Errorf("changed settings: reused %v, revision %d; want a new revision 3", (res.Decision.Kind == Rollback), res.Status.Revision)
	}
	if got, want := h.routedNames("production"), []string{"r3-1", "r3-2"}; !reflect.DeepEqual(got, want) {
		t.Errorf("routed to %v, want %v", got, want)
	}
	if want := []int{2, 1}; !reflect.DeepEqual(res.Status.Retained, want) {
		t.Errorf("Retained = %v, want %v", res.Status.Retained, want)
	}
}

func TestDeployHistoryLimitPrunesOldest(t *testing.T) {
	h := newHarness(t)
	spec := func(d string) Spec { s := webSpec("production", d); s.HistoryLimit = 1; return s }
	h.deploy(spec(digest1))
	h.deploy(spec(digest2))
	if len(h.host.removed) != 0 {
		t.Fatalf("removed %v with one revision of history", h.host.removed)
	}
	res := h.deploy(spec(digest3))
	if got := states(h.host.byLabels("production", 1)); len(got) != 0 {
		t.Errorf("revision 1 beyond the history limit still exists: %v", got)
	}
	sort.Strings(h.host.removed)
	if want := []string{"production-web-r1-1", "production-web-r1-2"}; !reflect.DeepEqual(h.host.removed, want) {
		t.Errorf("removed %v, want %v", h.host.removed, want)
	}
	if got, want := states(h.host.byLabels("production", 2)), []string{"production-web-r2-1=exited", "production-web-r2-2=exited"}; !reflect.DeepEqual(got, want) {
		t.Errorf("revision 2 = %v, want %v (kept)", got, want)
	}
	if want := []int{2}; !reflect.DeepEqual(res.Status.Retained, want) {
		t.Errorf("Retained = %v, want %v", res.Status.Retained, want)
	}
	// The pruned revision stays in the history, from the labels.
	if got, want := revisions(res.Status.History), []int{2, 1}; !reflect.DeepEqual(got, want) {
		t.Errorf("History = %v, want %v", got, want)
	}
	// Revision numbers are never reused, even after pruning.
	res = h.deploy(spec(digest4))
	if res.Status.Revision != 4 {
		t.Errorf("next revision = %d, want 4", res.Status.Revision)
	}
	if got, want := revisions(res.Status.History), []int{3, 2, 1}; !reflect.DeepEqual(got, want) {
		t.Errorf("History = %v, want %v", got, want)
	}
	// A rollback to a pruned revision is a new revision with a pull.
	pulls := h.host.pulls[repo+"@"+digest1]
	res = h.deploy(spec(digest1))
	if (res.Decision.Kind == Rollback) || res.Status.Revision != 5 || h.host.pulls[repo+"@"+digest1] != pulls+1 {
		t.Errorf("rollback to a pruned revision: reused %v, revision %d, pulls %d", (res.Decision.Kind == Rollback), res.Status.Revision, h.host.pulls[repo+"@"+digest1]-pulls)
	}
}

func TestDeployUnhealthyRevisionLeavesTrafficAlone(t *testing.T) {
	for name, b := range map[string]struct {
		behaviour, reason string
	}{
		"health check fails": {unhealthy, "not healthy after 1m0s; last check: GET /healthz: 500 Internal Server Error"},
		"exits":              {exits, "it exited"},
		"never healthy":      {hangs, "not healthy after 1m0s; last check: release-probe: GET /healthz: timeout after 1s"},
	} {
		t.Run(name, func(t *testing.T) {
			h := newHarness(t)
			h.deploy(webSpec("production", digest1))
			h.host.behaviour = func(s docker.ContainerSpec) string {
				if s.Labels[naming.LabelDigest] == digest2 {
					return b.behaviour
				}
				return healthy
			}
			route := append([]byte(nil), h.route("production")...)
			applyCount := h.routes.applys

			started := h.clock.Now()
			_, err := h.d.Deploy(h.ctx, webSpec("production", digest2))
			// A container that exits aborts at once; one whose check fails
			// or never answers may still be starting: it has until the start timeout.
			waited := h.clock.Now().Sub(started)
			if b.behaviour != exits && (waited < time.Minute || waited > time.Minute+5*time.Second) {
				t.Errorf("gave up after %s, want the start timeout of 1m", waited)
			}
			if b.behaviour == exits && waited >= time.Minute {
				t.Errorf("gave up after %s, want as soon as the container failed", waited)
			}
			var ue *UnhealthyError
			if !errors.As(err, &ue) {
				t.Fatalf("Deploy = %v (%T), want *UnhealthyError", err, err)
			}
			if !strings.HasPrefix(ue.Container, "production-web-r2-") {
				t.Errorf("UnhealthyError names container %q, want a revision 2 container", ue.Container)
			}
			if ue.Reason != b.reason {
				t.Errorf("Reason = %q, want %q", ue.Reason, b.reason)
			}
			if ue.Logs != strings.TrimSpace(h.host.logs) {
				t.Errorf("Logs = %q, want the container's output", ue.Logs)
			}
			if !strings.Contains(err.Error(), ue.Container) || !strings.Contains(err.Error(), b.reason) {
				t.Errorf("error message %q lacks the container or reason", err)
			}
			if got := h.host.byLabels("production", 2); len(got) != 0 {
				t.Errorf("revision 2 containers left behind: %v", states(got))
			}
			if !bytes.Equal(route, h.route("production")) || h.routes.applys != applyCount {
				t.Errorf("the route changed:\n%s\n---\n%s", route, h.route("production"))
			}
			if got, want := states(h.host.byLabels("production", 1)), []string{"production-web-r1-1=running", "production-web-r1-2=running"}; !reflect.DeepEqual(got, want) {
				t.Errorf("revision 1 = %v, want %v", got, want)
			}
			// What the host shows afterwards: revision 1 serving, nothing drifted.
			managed, _ := ListManaged(h.ctx, h.host)
			files, _ := h.routes.Files(h.ctx, "router-1")
			st := Observe("production", "web", managed, "router-1", files)
			if st.Revision != 1 || len(st.Drift) != 0 {
				t.Errorf("after the failed deploy: revision %d, drift %q", st.Revision, st.Drift)
			}
			// The next good deploy is revision 2 again, as if the failure never happened.
			h.host.behaviour = nil
			res := h.deploy(webSpec("production", digest2))
			if res.Status.Revision != 2 {
				t.Errorf("next revision = %d, want 2", res.Status.Revision)
			}
		})
	}
}

func TestDeployUnhealthyRollbackKeepsRetainedRevision(t *testing.T) {
	h := newHarness(t)
	h.deploy(webSpec("production", digest1))
	h.deploy(webSpec("production", digest2))
	route := append([]byte(nil), h.route("production")...)
	// Revision 1 no longer starts healthy (its database is gone, say).
	h.host.behaviour = func(s docker.ContainerSpec) string {
		if s.Labels[naming.LabelDigest] == digest1 {
			return unhealthy
		}
		return healthy
	}
	_, err := h.d.Deploy(h.ctx, webSpec("production", digest1))
	var ue *UnhealthyError
	if !errors.As(err, &ue) {
		t.Fatalf("Deploy = %v, want *UnhealthyError", err)
	}
	if !bytes.Equal(route, h.route("production")) {
		t.Errorf("the route changed")
	}
	// The retained containers are stopped again, not removed: still there for another try.
	if got, want := states(h.host.byLabels("production", 1)), []string{"production-web-r1-1=exited", "production-web-r1-2=exited"}; !reflect.DeepEqual(got, want) {
		t.Errorf("revision 1 = %v, want %v", got, want)
	}
	if got, want := states(h.host.byLabels("production", 2)), []string{"production-web-r2-1=running", "production-web-r2-2=running"}; !reflect.DeepEqual(got, want) {
		t.Errorf("revision 2 = %v, want %v", got, want)
	}
	if len(h.host.removed) != 0 {
		t.Errorf("removed %v", h.host.removed)
	}
}

func TestDestroyRemovesOnlyItsEnvironment(t *testing.T) {
	h := newHarness(t)
	h.deploy(webSpec("production", digest1))
	h.deploy(webSpec("production", digest2)) // production has a retained revision too
	h.deploy(webSpec("staging", digest2))
	h.deploy(webSpec("staging", digest3))
	prodRoute := append([]byte(nil), h.route("production")...)
	prod := states(h.host.byLabels("production", 0))
	if len(prod) != 4 || len(h.host.byLabels("staging", 0)) != 4 {
		t.Fatalf("setup: production %v, staging %v", prod, states(h.host.byLabels("staging", 0)))
	}

	if err := h.d.Destroy(h.ctx, "staging", "web", "router-1", 5*time.Second); err != nil {
		t.Fatal(err)
	}
	if got := h.host.byLabels("staging", 0); len(got) != 0 {
		t.Errorf("staging containers left: %v", states(got))
	}
	if r, ok := h.routes.files["router-1"][router.RouteFileName("staging", "web")]; !ok || len(r) != 0 {
		t.Errorf("staging route = %q (present %v), want an empty file", r, ok)
	}
	if !bytes.Equal(prodRoute, h.route("production")) {
		t.Errorf("production's route changed")
	}
	if got := states(h.host.byLabels("production", 0)); !reflect.DeepEqual(got, prod) {
		t.Errorf("production containers = %v, want %v", got, prod)
	}
	if _, ok := h.host.networks["release-staging-web"]; ok {
		t.Errorf("staging's network is still there")
	}
	if _, ok := h.host.networks["release-production-web"]; !ok || !h.host.connected["release-production-web"]["router-1"] {
		t.Errorf("production's network or its router connection is gone")
	}
	if i := indexOf(h.events, "remove production-web"); i >= 0 {
		t.Errorf("a production container was removed: %s", h.events[i])
	}
	applys := h.routes.applys
	managed, _ := ListManaged(h.ctx, h.host)
	files, _ := h.routes.Files(h.ctx, "router-1")
	if st := Observe("production", "web", managed, "router-1", files); st.Revision != 2 || st.Running != 2 || len(st.Drift) != 0 {
		t.Errorf("production after staging's destroy: revision %d, %d running, drift %q", st.Revision, st.Running, st.Drift)
	}
	if st := Observe("staging", "web", managed, "router-1", files); st.Found {
		t.Errorf("staging still found: %+v", st)
	}

	// A second destroy finds nothing to do and does not touch the router.
	if err := h.d.Destroy(h.ctx, "staging", "web", "router-1", 5*time.Second); err != nil {
		t.Fatal(err)
	}
	if h.routes.applys != applys {
		t.Errorf("a second destroy reloaded the router")
	}
}

func TestDestroyRouteBeforeContainers(t *testing.T) {
	h := newHarness(t)
	h.deploy(webSpec("staging", digest1))
	n := len(h.events)
	if err := h.d.Destroy(h.ctx, "staging", "web", "router-1", time.Second); err != nil {
		t.Fatal(err)
	}
	ev := h.events[n:]
	r, rm := indexOf(ev, "route route_staging_web.cfg"), indexOf(ev, "remove staging-web-")
	if r < 0 || rm < 0 || r > rm {
		t.Errorf("destroy order: %v; want the route emptied before containers go", ev)
	}
}

func TestDeployAfterRollbackNumbersAfterTheNewest(t *testing.T) {
	h := newHarness(t)
	h.deploy(webSpec("production", digest1))
	h.deploy(webSpec("production", digest2))
	h.deploy(webSpec("production", digest1)) // rollback: revision 1 serves, 2 is retained
	res := h.deploy(webSpec("production", digest3))
	st := res.Status
	if st.Revision != 3 || st.Digest != digest3 || (res.Decision.Kind == Rollback) {
		t.Errorf("Status = revision %d (%s), reused %v; want a new revision 3", st.Revision, st.Digest, (res.Decision.Kind == Rollback))
	}
	if want := []int{2, 1}; !reflect.DeepEqual(st.Retained, want) {
		t.Errorf("Retained = %v, want %v", st.Retained, want)
	}
	if got, want := revisions(st.History), []int{2, 1}; !reflect.DeepEqual(got, want) {
		t.Errorf("History = %v, want %v", got, want)
	}
	// Revision 3 records both earlier revisions in its own label.
	for _, c := range h.host.byLabels("production", 3) {
		if got := revisions(decodeHistory(c.Labels[naming.LabelHistory])); !reflect.DeepEqual(got, []int{2, 1}) {
			t.Errorf("%s history label = %v, want [2 1]", c.Name, got)
		}
	}
}

// Fault 1: the router's own check fails for the new containers (an app
// whose health path is slower than the router's check allows, or that
// listens on 127.0.0.1 only): traffic stays on v1, which keeps running, and
// the new containers are removed. Nothing is retired before the router
// itself reports the new containers UP.
func TestDeployRouterCheckFailsTrafficStays(t *testing.T) {
	h := newHarness(t)
	h.deploy(webSpec("production", digest1))
	before := string(h.route("production"))
	h.routes.notReady = map[string]string{"r2-1": "L7TOUT"}
	_, err := h.d.Deploy(h.ctx, webSpec("production", digest2))
	var checkErr *RouterCheckError
	if !errors.As(err, &checkErr) || !strings.Contains(err.Error(), "r2-1 is DOWN") {
		t.Fatalf("Deploy = %v, want a RouterCheckError naming r2-1", err)
	}
	if got := string(h.route("production")); got != before {
		t.Errorf("the route is not v1's again:\n%s", got)
	}
	for _, c := range h.host.byLabels("production", 1) {
		if !c.Running() {
			t.Errorf("%s is %s: v1 must keep serving", c.Name, c.State)
		}
	}
	if cs := h.host.byLabels("production", 2); len(cs) != 0 {
		t.Errorf("revision 2 left behind: %v", states(cs))
	}
	// The route the router checked held v2 with no traffic beside v1.
	check := router.ParseRouteServers(h.routes.history[len(h.routes.history)-2])
	for _, s := range check {
		if strings.HasPrefix(s.Name, "r2-") && s.Weight != 0 {
			t.Errorf("during the router's check %s had weight %d, want 0", s.Name, s.Weight)
		}
	}
}

// Fault 5: a route written but never loaded (an apply killed between the
// two) is drift, and the next apply reloads instead of trusting the file.
func TestDeployRouteFileNotLoadedIsRepairedByAReload(t *testing.T) {
	h := newHarness(t)
	h.deploy(webSpec("production", digest1))
	// The file is v1's route as the provider writes it; the worker runs
	// another (here: revision 1 with other weights).
	live := map[string]router.ServerState{}
	for _, s := range router.ParseRouteServers(h.route("production")) {
		live[s.Name] = router.ServerState{Status: "UP", CheckStatus: "L7OK", Weight: 7}
	}
	h.routes.live = map[string]map[string]router.ServerState{"router-1": live}
	st := h.observe("production")
	if !st.LiveMismatch || !hasDrift(st, "the router runs another route than its file holds") {
		t.Fatalf("LiveMismatch %v, drift %q: want the unloaded route seen", st.LiveMismatch, st.Drift)
	}
	applys := h.routes.applys
	res := h.deploy(webSpec("production", digest1))
	if res.Decision.Kind != Repair || h.routes.applys == applys {
		t.Errorf("decision %q with %d route loads; want a repair that reloads", res.Decision, h.routes.applys-applys)
	}
	if st := h.observe("production"); st.LiveMismatch {
		t.Errorf("after the repair the router still runs another route")
	}
}

// Once the reload signal is sent, nothing the new route points at is
// removed, and nothing is retired: the router may be serving it.
func TestDeployUnconfirmedReloadKeepsBothRevisions(t *testing.T) {
	h := newHarness(t)
	h.deploy(webSpec("production", digest1))
	h.routes.unconfirmedAt = h.routes.applys + 2 // the check route loads; the switch goes out unconfirmed
	_, err := h.d.Deploy(h.ctx, webSpec("production", digest2))
	var unconfirmed *router.ReloadUnconfirmedError
	if !errors.As(err, &unconfirmed) {
		t.Fatalf("Deploy = %v, want the unconfirmed reload reported", err)
	}
	for _, rev := range []int{1, 2} {
		cs := h.host.byLabels("production", rev)
		if len(cs) != 2 || !cs[0].Running() || !cs[1].Running() {
			t.Errorf("revision %d = %v, want both containers running", rev, states(cs))
		}
	}
	// The next apply sees what runs and converges.
	res := h.deploy(webSpec("production", digest2))
	if res.Status.Revision != 2 || len(res.Status.Drift) != 0 {
		t.Errorf("next apply: revision %d, drift %q", res.Status.Revision, res.Status.Drift)
	}
}

// What the router runs decides when it differs from the file, but a server
// in maintenance gets no traffic whatever weight HAProxy's exporter reports
// (it keeps the weight the server had when it entered maintenance): a
// canary left in maintenance is no canary in flight.
func TestObserveIgnoresLiveServersInMaintenance(t *testing.T) {
	h := newHarness(t)
	h.deploy(webSpec("production", digest1))
	live := map[string]router.ServerState{"c9-1": {Status: "MAINT", Weight: 256}}
	for _, s := range router.ParseRouteServers(h.route("production")) {
		live[s.Name] = router.ServerState{Status: "UP", CheckStatus: "L7OK", Weight: 7} // not the file's weight
	}
	h.routes.live = map[string]map[string]router.ServerState{"router-1": live}
	st := h.observe("production")
	if !st.LiveMismatch || st.Canary != nil || st.Revision != 1 {
		t.Errorf("mismatch %v, canary %+v, revision %d: want revision 1 serving and no canary", st.LiveMismatch, st.Canary, st.Revision)
	}
}
