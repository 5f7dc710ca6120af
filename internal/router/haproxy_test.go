package router

import (
	"context"
	"errors"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/releasekit/terraform-provider-release/internal/docker"
)

// These tests run the real HAProxy image (RELEASE_TEST_HAPROXY_IMAGE) in a
// router container of their own on the Docker host DOCKER_HOST names.

// fakeAppFile makes the router its own backend: frontends on loopback that
// answer like an application, so the tests need no other image.
const fakeAppFile = "01-fake-app.cfg"

const fakeApp = `frontend fake_app_ok
    bind 127.0.0.1:18080
    http-request return status 204 if { path /healthz }
    http-request return status 404

frontend fake_app_failing
    bind 127.0.0.1:18082
    http-request return status 503

frontend fake_app_ok_elsewhere
    bind 127.0.0.1:18084
    http-request return status 204 if { path /healthz }
    http-request return status 404
`

// realRouter starts a router container and removes it when the test ends.
func realRouter(t *testing.T, ports ...docker.Port) (*docker.Engine, string) {
	t.Helper()
	image := os.Getenv("RELEASE_TEST_HAPROXY_IMAGE")
	if image == "" {
		t.Skip("RELEASE_TEST_HAPROXY_IMAGE is not set: no HAProxy image to run")
	}
	engine := docker.NewEngine(docker.NewConnector(docker.ConfigFromEnv()))
	name := "test-" + strconv.FormatInt(time.Now().UnixNano()%1e9, 36)
	network := "release-" + name
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	id, err := Create(ctx, engine, Spec{Name: name, Image: image, Network: network, MetricsPort: 9101, Ports: ports}, "")
	t.Cleanup(func() {
		if err := Destroy(context.Background(), engine, name, network); err != nil && !docker.IsNotFound(err) {
			t.Errorf("removing the test router: %v", err)
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	return engine, id
}

func mustRenderRoute(t *testing.T, r Route) []byte {
	t.Helper()
	cfg, err := RenderRoute(r)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func TestWaitReadyRealHAProxy(t *testing.T) {
	engine, id := realRouter(t)
	ctx := context.Background()
	c := &Controller{Docker: engine}
	route := Route{Environment: "prod", Service: "web", ListenPort: 8080, HealthPath: "/healthz", CheckInterval: time.Second,
		Servers: []Server{
			{Name: "r1-1", Address: "127.0.0.1:18080", Weight: 100}, // answers 204: any 2xx passes
			{Name: "r1-2", Address: "127.0.0.1:18081", Weight: 100}, // a closed port
		}}
	applied := time.Now()
	if err := c.Apply(ctx, id, map[string][]byte{fakeAppFile: []byte(fakeApp), route.FileName(): mustRenderRoute(t, route)}); err != nil {
		t.Fatal(err)
	}
	t.Logf("Apply took %s", time.Since(applied).Round(time.Millisecond))
	began := time.Now()
	if err := c.WaitReady(ctx, id, 9101, BackendName("prod", "web"), []string{"r1-1"}, 10*time.Second); err != nil {
		t.Fatalf("WaitReady(r1-1) = %v, want nil", err)
	}
	t.Logf("r1-1 ready %s after the reload was confirmed (inter 1s)", time.Since(began).Round(time.Millisecond))

	err := c.WaitReady(ctx, id, 9101, BackendName("prod", "web"), []string{"r1-1", "r1-2"}, 5*time.Second)
	var nr *NotReadyError
	if !errors.As(err, &nr) {
		t.Fatalf("WaitReady(r1-1, r1-2) = %v, want *NotReadyError", err)
	}
	if _, ok := nr.Servers["r1-1"]; ok || len(nr.Servers) != 1 {
		t.Errorf("not ready: %+v, want r1-2 only", nr.Servers)
	}
	if want := "r1-2 is DOWN (Layer 4 connection problem, such as a refused connection, L4CON)"; !strings.Contains(err.Error(), want) {
		t.Errorf("error %q does not say %q", err, want)
	}
	t.Log(err)

	live, err := c.LiveServers(ctx, id, 9101, BackendName("prod", "web"))
	if err != nil {
		t.Fatal(err)
	}
	if !LiveMatches(mustRenderRoute(t, route), live) {
		t.Errorf("the route just loaded does not match the live servers %+v", live)
	}

	// A server added by a later reload, the probe already in place.
	route.Servers = append(route.Servers, Server{Name: "r2-1", Address: "127.0.0.1:18080", Weight: 100})
	applied = time.Now()
	if err := c.Apply(ctx, id, map[string][]byte{route.FileName(): mustRenderRoute(t, route)}); err != nil {
		t.Fatal(err)
	}
	t.Logf("a second Apply took %s", time.Since(applied).Round(time.Millisecond))
	began = time.Now()
	if err := c.WaitReady(ctx, id, 9101, BackendName("prod", "web"), []string{"r2-1"}, 10*time.Second); err != nil {
		t.Fatalf("WaitReady(r2-1) = %v, want nil", err)
	}
	t.Logf("r2-1, added by the reload, ready %s after it was confirmed (inter 1s)", time.Since(began).Round(time.Millisecond))
}

func TestApplyRealHAProxy(t *testing.T) {
	engine, id := realRouter(t)
	ctx := context.Background()
	c := &Controller{Docker: engine}
	route := Route{Environment: "prod", Service: "web", ListenPort: 8080, HealthPath: "/healthz", CheckInterval: time.Second,
		Servers: []Server{{Name: "r1-1", Address: "127.0.0.1:18080", Weight: 100}}}
	cfg := mustRenderRoute(t, route)
	if err := c.Apply(ctx, id, map[string][]byte{fakeAppFile: []byte(fakeApp), route.FileName(): cfg}); err != nil {
		t.Fatal(err)
	}
	noStaged := func(t *testing.T) map[string][]byte {
		t.Helper()
		files, err := engine.ReadDir(ctx, id, ConfigDir)
		if err != nil {
			t.Fatal(err)
		}
		for name := range files {
			if strings.HasPrefix(name, stagePrefix) {
				t.Errorf("staged file %s left in the router", name)
			}
		}
		return files
	}
	if files := noStaged(t); string(files[route.FileName()]) != string(cfg) {
		t.Errorf("the route in the router is %q, want the rendered one", files[route.FileName()])
	}
	if err := c.WaitReady(ctx, id, 9101, BackendName("prod", "web"), []string{"r1-1"}, 10*time.Second); err != nil {
		t.Fatal(err)
	}

	// A configuration HAProxy refuses: named by the route's own file, and the live file untouched.
	err := c.Apply(ctx, id, map[string][]byte{route.FileName(): append(append([]byte(nil), cfg...), "    bogus-keyword\n"...)})
	var re *ReloadError
	if !errors.As(err, &re) {
		t.Fatalf("Apply of a bogus route = %v, want *ReloadError", err)
	}
	if want := ConfigDir + "/" + route.FileName(); !strings.Contains(re.Output, want) || strings.Contains(re.Output, stagePrefix) {
		t.Errorf("HAProxy's complaint %q does not name %s", re.Output, want)
	}
	t.Log(err)
	if files := noStaged(t); string(files[route.FileName()]) != string(cfg) {
		t.Errorf("a refused apply changed the live route to %q", files[route.FileName()])
	}

	// A file staged by an apply killed before its check is not loaded by a reload.
	if err := engine.CopyFiles(ctx, id, ConfigDir, []docker.File{{Path: stagePrefix + "route_killed_web.cfg", Content: []byte("not haproxy configuration\n")}}); err != nil {
		t.Fatal(err)
	}
	if err := c.Reload(ctx, id); err != nil {
		t.Fatalf("Reload with a staged file left = %v, want it ignored", err)
	}
	live, err := c.LiveServers(ctx, id, 9101, BackendName("prod", "web"))
	if err != nil {
		t.Fatal(err)
	}
	if !LiveMatches(cfg, live) {
		t.Errorf("live servers %+v do not match the route", live)
	}
	files, err := c.Files(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := files[stagePrefix+"route_killed_web.cfg"]; ok {
		t.Error("Files lists a staged file")
	}
}
