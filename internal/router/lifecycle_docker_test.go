package router

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/releasekit/terraform-provider-release/internal/docker"
	"github.com/releasekit/terraform-provider-release/internal/naming"
)

// On the real Docker Engine: a stopped router's route file can be emptied
// and its environment network left, after which the network can go and the
// router still starts; a stopped router whose network was removed under it
// is seen by Observe and repaired by Repair.
func TestDockerStoppedRouterDetachAndRepair(t *testing.T) {
	image := os.Getenv("RELEASE_TEST_HAPROXY_IMAGE")
	if image == "" {
		t.Skip("RELEASE_TEST_HAPROXY_IMAGE is not set: start the test stack (scripts/stack.sh up)")
	}
	ctx := context.Background()
	e := docker.NewEngine(docker.NewConnector(docker.ConfigFromEnv()))
	b := make([]byte, 3)
	_, _ = rand.Read(b)
	name := "rt" + hex.EncodeToString(b)
	spec := Spec{Name: name, Image: image, Network: "release-router-" + name, MetricsPort: 9101,
		Ports: []docker.Port{{Internal: 80, External: 0, HostIP: "127.0.0.1"}}}
	envA, envB := "release-"+name+"-a-web", "release-"+name+"-b-web"
	t.Cleanup(func() {
		_ = e.Remove(context.Background(), ContainerName(name))
		_ = e.RemoveVolume(context.Background(), VolumeName(name))
		for _, n := range []string{spec.Network, envA, envB} {
			_ = e.RemoveNetwork(context.Background(), n)
		}
	})
	id, err := Create(ctx, e, spec, "")
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{envA, envB} {
		if _, err := e.EnsureNetwork(ctx, n, map[string]string{naming.LabelManaged: "true"}); err != nil {
			t.Fatal(err)
		}
		if err := e.ConnectNetwork(ctx, n, id); err != nil {
			t.Fatal(err)
		}
	}
	route := "route_a_web.cfg"
	if err := e.CopyFiles(ctx, id, ConfigDir, []docker.File{{Path: route, Content: []byte("frontend fe_a_web\n    bind :80\n")}}); err != nil {
		t.Fatal(err)
	}
	if err := e.Stop(ctx, id, 5*time.Second); err != nil {
		t.Fatal(err)
	}

	// Environment a goes while the router is stopped.
	if err := DetachStopped(ctx, e, id, envA, route); err != nil {
		t.Fatalf("DetachStopped on the real engine: %v", err)
	}
	if err := e.RemoveNetwork(ctx, envA); err != nil {
		t.Fatal(err)
	}
	files, err := e.ReadDir(ctx, id, ConfigDir)
	if err != nil || len(files[route]) != 0 {
		t.Fatalf("route %q (%v), want it emptied in the stopped router", files[route], err)
	}
	if err := e.Start(ctx, id); err != nil {
		t.Fatalf("the detached router does not start: %v", err)
	}
	if err := e.Stop(ctx, id, 5*time.Second); err != nil {
		t.Fatal(err)
	}

	// Environment b's network is removed under the stopped router without a detach (the fault).
	if err := e.RemoveNetwork(ctx, envB); err != nil {
		t.Fatal(err)
	}
	if err := e.Start(ctx, id); err == nil || !strings.Contains(err.Error(), "not found") {
		t.Fatalf("start with a removed network = %v, want Docker's network not found", err)
	}
	o, err := Observe(ctx, e, name)
	if err != nil {
		t.Fatal(err)
	}
	if len(o.MissingNetworks) != 1 || o.MissingNetworks[0] != envB {
		t.Fatalf("Observe: missing %q, drift %q; want %s", o.MissingNetworks, o.Drift, envB)
	}
	if err := Repair(ctx, e, &Controller{Docker: e}, o); err != nil {
		t.Fatalf("Repair: %v", err)
	}
	if o, err = Observe(ctx, e, name); err != nil || !o.Running || len(o.Drift) > 0 {
		t.Fatalf("after Repair: running %v, drift %q, %v", o.Running, o.Drift, err)
	}
}
