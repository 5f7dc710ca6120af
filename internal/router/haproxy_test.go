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
`

// realRouter starts a router container and removes it when the test ends.
func realRouter(t *testing.T) (*docker.Engine, string) {
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
	id, err := Create(ctx, engine, Spec{Name: name, Image: image, Network: network, MetricsPort: 9101}, "")
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
}
