package router

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/releasekit/terraform-provider-release/internal/docker"
)

// reloadsSince counts HAProxy's reloads in the router's logs since a time.
func reloadsSince(t *testing.T, engine *docker.Engine, id string, since time.Time) int {
	t.Helper()
	logs, err := engine.LogsSince(context.Background(), id, since)
	if err != nil {
		t.Fatal(err)
	}
	return strings.Count(logs, "Reloading HAProxy")
}

// A change of weights reaches the running worker through the runtime API
// (through the probe in the FROM scratch router image): no reload, the
// counters keep counting; a new server reloads. A router whose base file has
// no runtime socket (an earlier version's) gets the same route by a reload.
func TestRuntimeWeightsRealHAProxy(t *testing.T) {
	engine, id := realRouter(t)
	ctx := context.Background()
	c := &Controller{Docker: engine}
	backend := BackendName("prod", "web")
	route := Route{Environment: "prod", Service: "web", ListenPort: 8080, HealthPath: "/healthz", CheckInterval: time.Second, Sticky: true,
		Servers: []Server{{Name: "s1-1", Address: "127.0.0.1:18080", Weight: 256}, {Name: "c2-1", Address: "127.0.0.1:18080", Weight: 0}}}
	if err := c.Apply(ctx, id, map[string][]byte{fakeAppFile: []byte(fakeApp), route.FileName(): mustRenderRoute(t, route)}); err != nil {
		t.Fatal(err)
	}
	daemonNow := func() time.Time {
		now, err := engine.DaemonTime(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return now
	}
	since := daemonNow()
	for _, step := range []struct {
		weights [2]int
		drain   bool
	}{{[2]int{200, 56}, false}, {[2]int{128, 128}, false}, {[2]int{0, 256}, true}, {[2]int{256, 0}, false}} {
		route.Servers[0].Weight, route.Servers[0].Drain = step.weights[0], step.drain
		route.Servers[1].Weight = step.weights[1]
		cfg := mustRenderRoute(t, route)
		began := time.Now()
		if err := c.Apply(ctx, id, map[string][]byte{route.FileName(): cfg}); err != nil {
			t.Fatal(err)
		}
		t.Logf("weights %v (drain %t) applied in %s", step.weights, step.drain, time.Since(began).Round(time.Millisecond))
		out, err := c.Runtime(ctx, id, "show servers state "+backend)
		if err != nil {
			t.Fatal(err)
		}
		live, err := ParseServersState(out, backend)
		if err != nil {
			t.Fatal(err)
		}
		if got := live["s1-1"]; got.Weight != step.weights[0] || got.Maint != step.drain {
			t.Errorf("s1-1 runs %+v, want weight %d, maintenance %t", got, step.weights[0], step.drain)
		}
		if got := live["c2-1"]; got.Weight != step.weights[1] || got.Maint {
			t.Errorf("c2-1 runs %+v, want weight %d", got, step.weights[1])
		}
		files, err := c.Files(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if string(files[route.FileName()]) != string(cfg) {
			t.Errorf("the route file was not written:\n%s", files[route.FileName()])
		}
	}
	if n := reloadsSince(t, engine, id, since); n != 0 {
		t.Errorf("%d reloads for changes of weights, want none", n)
	}

	// Servers added, one that passes the router's checks and one that
	// fails them, then removed with stickiness ended: no reload. A server
	// at a new address takes no request until the router's own checks
	// pass: it starts DOWN.
	// As an environment's apply does: the files read first, then each
	// change with the route it replaces, placed and applied in one exec.
	since = daemonNow()
	files, err := c.Files(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	previous := files[route.FileName()]
	apply := func() []byte {
		t.Helper()
		cfg := mustRenderRoute(t, route)
		began := time.Now()
		if err := c.ApplyKnown(ctx, id, map[string][]byte{route.FileName(): cfg}, map[string][]byte{route.FileName(): previous}); err != nil {
			t.Fatal(err)
		}
		previous = cfg
		if files, err := c.Files(ctx, id); err != nil || string(files[route.FileName()]) != string(cfg) {
			t.Fatalf("the route file was not placed (%v):\n%s", err, files[route.FileName()])
		}
		t.Logf("servers %v (sticky %t) applied in %s", ParseRouteServers(cfg), route.Sticky, time.Since(began).Round(time.Millisecond))
		return cfg
	}
	route.Servers = append(route.Servers, Server{Name: "n3-1", Address: "127.0.0.1:18084", Weight: 0}, Server{Name: "f3-1", Address: "127.0.0.1:18082", Weight: 0})
	apply()
	began := time.Now()
	if err := c.WaitReady(ctx, id, 9101, backend, []string{"n3-1"}, 5*time.Second); err != nil {
		t.Fatalf("a server added at runtime was not checked UP: %v", err)
	}
	t.Logf("the router checked the added server UP in %s", time.Since(began).Round(time.Millisecond))
	var notReady *NotReadyError
	if err := c.WaitReady(ctx, id, 9101, backend, []string{"f3-1"}, 2*time.Second); !errors.As(err, &notReady) {
		t.Errorf("a failing server added at runtime: WaitReady = %v, want NotReadyError", err)
	}
	route.Sticky = false
	route.Servers = []Server{route.Servers[0], route.Servers[2]}
	route.Servers[0].Drain, route.Servers[0].Weight = false, 100
	route.Servers[1].Weight = 100
	cfg := apply()
	out, err := c.Runtime(ctx, id, "show servers state "+backend+"; show servers state "+StickyBackend(backend))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := verifyRuntime(out, backend, cfg); err != nil {
		t.Errorf("the worker does not run the route: %v", err)
	}
	live, err := c.LiveServers(ctx, id, 9101, backend)
	if err != nil {
		t.Fatal(err)
	}
	if !LiveMatches(cfg, live) {
		t.Errorf("the exporter shows %+v for the route\n%s", live, cfg)
	}
	if n := reloadsSince(t, engine, id, since); n != 0 {
		t.Errorf("%d reloads for servers added and removed and stickiness, want none", n)
	}

	// A setting of the route changes: a reload.
	route.CheckInterval = 2 * time.Second
	since = daemonNow()
	apply()
	if n := reloadsSince(t, engine, id, since); n != 1 {
		t.Errorf("%d reloads for a new check interval, want 1", n)
	}

	// An earlier version's base file, without the socket, loaded: weights by reload.
	files, err = c.Files(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	old := strings.Replace(string(files[BaseFile]), "    stats socket "+RuntimeSocket+" mode 600 level admin\n", "", 1)
	if err := c.Apply(ctx, id, map[string][]byte{BaseFile: []byte(old)}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Runtime(ctx, id, "show servers state "+backend); err == nil {
		t.Fatal("the runtime API answers without a socket in the configuration")
	}
	route.Servers[0].Weight = 100
	since = daemonNow()
	if err := c.Apply(ctx, id, map[string][]byte{route.FileName(): mustRenderRoute(t, route)}); err != nil {
		t.Fatal(err)
	}
	if n := reloadsSince(t, engine, id, since); n != 1 {
		t.Errorf("%d reloads for a weight change without the runtime API, want 1", n)
	}
	live, err = c.LiveServers(ctx, id, 9101, backend)
	if err != nil {
		t.Fatal(err)
	}
	if live["s1-1"].Weight != 100 {
		t.Errorf("s1-1 runs weight %d after the reload, want 100", live["s1-1"].Weight)
	}
}

// A server drained or removed at runtime from a route the router loaded
// from its file: HAProxy's exporter keeps reporting the weight the server
// had when it entered maintenance (only `show servers state` has the new
// one), and a drained or leftover server is in no way served. The route
// still matches what the router runs. (CI: after a router restart, the
// canary's servers came from the file; removed with connections open they
// stayed in maintenance, reported at their old weight, and the next plan
// saw a canary that no longer had traffic.)
func TestDrainedServerMatchesItsRouteRealHAProxy(t *testing.T) {
	engine, id := realRouter(t)
	ctx := context.Background()
	c := &Controller{Docker: engine}
	backend := BackendName("prod", "web")
	route := Route{Environment: "prod", Service: "web", ListenPort: 8080, HealthPath: "/healthz", CheckInterval: time.Second,
		Servers: []Server{{Name: "r1-1", Address: "127.0.0.1:18080", Weight: 100}, {Name: "c2-1", Address: "127.0.0.1:18084", Weight: 100}}}
	previous := mustRenderRoute(t, route)
	if err := c.Apply(ctx, id, map[string][]byte{fakeAppFile: []byte(fakeApp), route.FileName(): previous}); err != nil {
		t.Fatal(err)
	}
	if err := c.WaitReady(ctx, id, 9101, backend, []string{"r1-1", "c2-1"}, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Files(ctx, id); err != nil { // as an apply does: the base file read first
		t.Fatal(err)
	}
	route.Servers[0].Weight, route.Servers[0].Drain = 0, true
	drained := mustRenderRoute(t, route)
	if err := c.ApplyKnown(ctx, id, map[string][]byte{route.FileName(): drained}, map[string][]byte{route.FileName(): previous}); err != nil {
		t.Fatal(err)
	}
	live, err := c.LiveServers(ctx, id, 9101, backend)
	if err != nil {
		t.Fatal(err)
	}
	if live["r1-1"].Status != "MAINT" || !LiveMatches(drained, live) {
		t.Errorf("after the drain the exporter shows %+v, which does not match the route\n%s", live, drained)
	}
	if n := reloadsSince(t, engine, id, time.Now().Add(-time.Minute)); n > 1 {
		t.Errorf("%d reloads: the drain was not applied at runtime", n)
	}
}
