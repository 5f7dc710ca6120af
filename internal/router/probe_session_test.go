package router

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/releasekit/terraform-provider-release/internal/docker"
	"github.com/releasekit/terraform-provider-release/internal/probe"
)

func TestReadOnlyInvocations(t *testing.T) {
	for _, c := range []struct {
		args []string
		want bool
	}{
		{[]string{"-body", "9101", "/metrics", "5s"}, true},
		{probe.ReadArgs(ConfigDir), true},
		{probe.RemoteArgs("10.0.0.3:8080", "/healthz", time.Second), true},
		{[]string{"-cli", RuntimeSocket, "show servers state be_x; show servers state be_x_sticky"}, true},
		{[]string{"-cli", RuntimeSocket, "set server be_x/s1 weight 0; show servers state be_x"}, false},
		{[]string{"-place", "/x", "eA==", "-cli", RuntimeSocket, "show info"}, false},
		{[]string{"-rename", "/a", "/b"}, false},
		{nil, false},
	} {
		if got := readOnly(c.args); got != c.want {
			t.Errorf("readOnly(%q) = %t, want %t", c.args, got, c.want)
		}
	}
}

// serveProcesses counts the router's probes that serve a session.
func serveProcesses(t *testing.T, engine *docker.Engine, id string) int {
	t.Helper()
	procs, err := engine.Processes(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, p := range procs {
		if strings.Contains(p, probe.Path+" "+probe.ServeArgs[0]) {
			n++
		}
	}
	return n
}

func waitServeProcesses(t *testing.T, engine *docker.Engine, id string, want int) int {
	t.Helper()
	var n int
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if n = serveProcesses(t, engine, id); n == want {
			break
		}
	}
	return n
}

// The Controller reads and changes a real router through one probe
// session, opens another after the router restarted (the old one ended
// with it), and a session it hangs up leaves no process behind, as when
// the provider is killed.
func TestProbeSessionRealHAProxy(t *testing.T) {
	engine, id := realRouter(t)
	ctx := context.Background()
	c := &Controller{Docker: engine}
	backend := BackendName("prod", "web")
	route := Route{Environment: "prod", Service: "web", ListenPort: 8080, HealthPath: "/healthz", CheckInterval: time.Second,
		Servers: []Server{{Name: "s1-1", Address: "127.0.0.1:18080", Weight: 100}}}
	if err := c.Apply(ctx, id, map[string][]byte{fakeAppFile: []byte(fakeApp), route.FileName(): mustRenderRoute(t, route)}); err != nil {
		t.Fatal(err)
	}
	readAndChange := func(weight int) {
		t.Helper()
		files, err := c.Files(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		previous := files[route.FileName()]
		if len(previous) == 0 || len(files[BaseFile]) == 0 {
			t.Fatalf("the files read lack the route or the base: %d files", len(files))
		}
		route.Servers[0].Weight = weight
		cfg := mustRenderRoute(t, route)
		if err := c.ApplyKnown(ctx, id, map[string][]byte{route.FileName(): cfg}, map[string][]byte{route.FileName(): previous}); err != nil {
			t.Fatal(err)
		}
		out, err := c.Runtime(ctx, id, "show servers state "+backend)
		if err != nil {
			t.Fatal(err)
		}
		if live, err := ParseServersState(out, backend); err != nil || live["s1-1"].Weight != weight {
			t.Fatalf("after the change the router runs %+v (%v), want s1-1 at weight %d", live, err, weight)
		}
		if err := c.WaitReady(ctx, id, 9101, backend, []string{"s1-1"}, 10*time.Second); err != nil {
			t.Fatal(err)
		}
	}
	readAndChange(50)
	if n := serveProcesses(t, engine, id); n != 1 {
		t.Errorf("%d probe sessions run in the router after reads and changes one after another, want 1", n)
	}

	// A restart ends the session; the next read notices and opens another.
	if err := engine.Stop(ctx, id, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	if err := engine.Start(ctx, id); err != nil {
		t.Fatal(err)
	}
	// Wait for the runtime API without the Controller, so that its first
	// invocation after the restart is a change, which it cannot send twice.
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if code, _, err := engine.Exec(ctx, id, []string{probe.Path, "-cli", RuntimeSocket, "show info"}); err == nil && code == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the router's runtime API did not answer within 10s of its restart")
		}
	}
	if _, err := c.Runtime(ctx, id, "set server "+backend+"/s1-1 weight 60"); err != nil {
		t.Fatalf("the first change after the restart: %v", err)
	}
	readAndChange(70)
	if n := waitServeProcesses(t, engine, id, 1); n != 1 {
		t.Errorf("%d probe sessions run after the restart, want 1", n)
	}

	// Another provider process with the same build uses the probe in place:
	// nothing is copied.
	other := &Controller{Docker: &engineCopies{Engine: engine}}
	if _, err := other.Files(ctx, id); err != nil {
		t.Fatal(err)
	}
	if n := other.Docker.(*engineCopies).copies; n != 0 {
		t.Errorf("a second Controller copied the probe %d times into a router that has its build, want 0", n)
	}
	other.dropSessions(id)

	// Prepare leaves the probe checked and a session open for the first read.
	prepared := &Controller{Docker: engine}
	prepared.Prepare(ctx, engine, id)
	if n := len(prepared.pool(id).idle); n != 1 || !prepared.probed[id] {
		t.Errorf("after Prepare: %d idle sessions, probe checked %t; want 1 and true", n, prepared.probed[id])
	}
	prepared.dropSessions(id)

	// Hanging up ends the probe (its input ends): nothing is left running.
	c.Close()
	if n := waitServeProcesses(t, engine, id, 0); n != 0 {
		t.Errorf("%d probe sessions still run 5s after the Controller hung up, want 0", n)
	}
}

// A router whose probe cannot serve (one an earlier provider placed) is
// read through Docker's archive API and changed by an exec each time.
func TestProbeWithoutServeFallsBackRealHAProxy(t *testing.T) {
	engine, id := realRouter(t)
	ctx := context.Background()
	stub := buildStubProbe(t)
	c := &Controller{Docker: engine}
	if err := engine.CopyFiles(ctx, id, filepath.Dir(probe.Path), []docker.File{{Path: filepath.Base(probe.Path), Mode: 0o755, Content: stub}}); err != nil {
		t.Fatal(err)
	}
	c.probed = map[string]bool{id: true} // as if this Controller had placed it
	files, err := c.Files(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if len(files[BaseFile]) == 0 {
		t.Errorf("the base file was not read: %d files", len(files))
	}
	if n := len(c.pool(id).idle); n != 0 {
		t.Errorf("%d sessions kept with a probe that cannot serve, want 0", n)
	}
	// The stub answers an exec of its own: the fallback ran it.
	code, out, err := c.execProbe(ctx, id, "-cli", RuntimeSocket, "show info")
	if err != nil || code != 0 || out != "stub\n" {
		t.Errorf("an invocation through the stub: exit %d, %q, %v; want the stub's answer", code, out, err)
	}
	// A Controller that finds another build there places its own, then serves through it.
	fresh := &Controller{Docker: &engineCopies{Engine: engine}}
	if _, err := fresh.Files(ctx, id); err != nil {
		t.Fatal(err)
	}
	if n := fresh.Docker.(*engineCopies).copies; n != 1 {
		t.Errorf("the probe was copied %d times over another build, want 1", n)
	}
	if n := serveProcesses(t, engine, id); n != 1 {
		t.Errorf("%d probe sessions after the probe was replaced, want 1", n)
	}
	fresh.dropSessions(id)
}

// engineCopies is the real engine, counting the files copied into containers.
type engineCopies struct {
	*docker.Engine
	copies int
}

func (e *engineCopies) CopyFiles(ctx context.Context, id, dir string, files []docker.File) error {
	e.copies++
	return e.Engine.CopyFiles(ctx, id, dir, files)
}

// buildStubProbe builds a static probe that serves nothing: it answers
// "stub" to anything but -serve, which it refuses as an old probe would.
func buildStubProbe(t *testing.T) []byte {
	t.Helper()
	dir := t.TempDir()
	src := `package main

import (
	"fmt"
	"os"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "-serve" {
		fmt.Fprintln(os.Stderr, "usage: release-probe <port> <path> [timeout]")
		os.Exit(2)
	}
	fmt.Println("stub")
}
`
	if err := os.WriteFile(filepath.Join(dir, "main.go"), []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "go.mod"), []byte("module stub\n\ngo 1.21\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("go", "build", "-o", "stub", ".")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOFLAGS=")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building the stub probe: %v\n%s", err, out)
	}
	b, err := os.ReadFile(filepath.Join(dir, "stub"))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// Two provider processes of different builds on one router: one places its
// probe while the other's session runs the old one. The copy succeeds (the
// file is replaced, not written into) and the running session still answers.
func TestProbeReplacedWhileServingRealHAProxy(t *testing.T) {
	engine, id := realRouter(t)
	ctx := context.Background()
	serving := &Controller{Docker: engine}
	t.Cleanup(serving.Close)
	if _, err := serving.Files(ctx, id); err != nil {
		t.Fatal(err)
	}
	if n := serveProcesses(t, engine, id); n != 1 {
		t.Fatalf("%d sessions serve, want 1", n)
	}
	if err := engine.CopyFiles(ctx, id, filepath.Dir(probe.Path), []docker.File{{Path: filepath.Base(probe.Path), Mode: 0o755, Content: buildStubProbe(t)}}); err != nil {
		t.Fatalf("placing another probe while one serves: %v", err)
	}
	files, err := serving.Files(ctx, id)
	if err != nil || len(files[BaseFile]) == 0 {
		t.Fatalf("the running session's read after the probe was replaced: %d files, %v", len(files), err)
	}
	if n := len(serving.pool(id).idle); n != 1 {
		t.Errorf("%d idle sessions after the read, want the running one (1)", n)
	}
}
