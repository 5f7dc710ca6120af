package router

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/releasekit/terraform-provider-release/internal/clock"
	"github.com/releasekit/terraform-provider-release/internal/clock/clocktest"
	"github.com/releasekit/terraform-provider-release/internal/docker"
)

// startingEngine is a Docker host on which a router container starts: its
// logs and state are what the n-th look after the start returns (the last
// one repeats). Methods the tests do not reach are left to the nil Engine.
type startingEngine struct {
	Engine
	clk *clocktest.Fake

	logs   []string
	states []string
	looks  int

	created   []docker.ContainerSpec
	started   []string
	removed   []string
	sinceSeen []time.Time
}

func newStartingEngine() *startingEngine {
	return &startingEngine{clk: clocktest.New(epoch)}
}

func (e *startingEngine) Clock() clock.Clock { return e.clk }

func (e *startingEngine) EnsureImage(context.Context, string, string) error { return nil }

func (e *startingEngine) EnsureNetwork(context.Context, string, map[string]string) (bool, error) {
	return true, nil
}

func (e *startingEngine) EnsureVolume(context.Context, string, map[string]string) error { return nil }

func (e *startingEngine) Create(_ context.Context, spec docker.ContainerSpec) (string, error) {
	e.created = append(e.created, spec)
	return "router-1", nil
}

func (e *startingEngine) CopyFiles(context.Context, string, string, []docker.File) error { return nil }

func (e *startingEngine) Start(_ context.Context, id string) error {
	e.started = append(e.started, id)
	return nil
}

func (e *startingEngine) Remove(_ context.Context, id string) error {
	e.removed = append(e.removed, id)
	return nil
}

func (e *startingEngine) LogsSince(_ context.Context, _ string, since time.Time) (string, error) {
	e.sinceSeen = append(e.sinceSeen, since)
	return pick(e.logs, e.looks), nil
}

func (e *startingEngine) Inspect(_ context.Context, id string) (docker.Container, error) {
	state := pick(e.states, e.looks)
	if state == "" {
		state = "running"
	}
	e.looks++
	return docker.Container{ID: id, State: state}, nil
}

func pick(s []string, i int) string {
	if len(s) == 0 {
		return ""
	}
	return s[min(i, len(s)-1)]
}

const started = "[NOTICE]   (1) : haproxy version is 3.0.5\n[NOTICE]   (1) : New worker (8) forked\n[NOTICE]   (1) : Loading success.\n"

func TestWaitLoadedSuccess(t *testing.T) {
	e := newStartingEngine()
	e.logs = []string{"", "", started}
	if err := waitLoaded(context.Background(), e, e.clk, "router-1", epoch); err != nil {
		t.Fatal(err)
	}
	if waited := e.clk.Now().Sub(epoch); waited != 200*time.Millisecond {
		t.Errorf("waited %s, want two 100ms polls before the success", waited)
	}
}

func TestWaitLoadedTimeout(t *testing.T) {
	e := newStartingEngine()
	e.logs = []string{"[NOTICE]   (1) : haproxy version is 3.0.5\n"} // never loads, never exits
	began := time.Now()
	err := waitLoaded(context.Background(), e, e.clk, "router-1", epoch)
	if err == nil || !strings.Contains(err.Error(), "did not report a successful start within 30s") {
		t.Fatalf("waitLoaded = %v, want the 30s timeout", err)
	}
	if waited := e.clk.Now().Sub(epoch); waited != 30*time.Second {
		t.Errorf("gave up after %s of fake time, want 30s", waited)
	}
	if want := 300; e.looks != want {
		t.Errorf("looked %d times, want %d (every 100ms for 30s)", e.looks, want)
	}
	if d := time.Since(began); d > 5*time.Second {
		t.Errorf("a 30s fake timeout took %s of real time", d)
	}
}

func TestWaitLoadedExited(t *testing.T) {
	e := newStartingEngine()
	e.logs = []string{"[ALERT]    (1) : config : parsing [/usr/local/etc/haproxy/release/base.cfg:1] : unknown keyword\n"}
	e.states = []string{"running", "exited"}
	err := waitLoaded(context.Background(), e, e.clk, "router-1", epoch)
	if err == nil || !strings.Contains(err.Error(), "exited at start") || !strings.Contains(err.Error(), "unknown keyword") {
		t.Fatalf("waitLoaded = %v, want the exit with HAProxy's last lines", err)
	}
	if waited := e.clk.Now().Sub(epoch); waited != 100*time.Millisecond {
		t.Errorf("waited %s, want one poll before the exit was seen", waited)
	}
}

func TestWaitLoadedCancelled(t *testing.T) {
	e := newStartingEngine()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := waitLoaded(ctx, e, e.clk, "router-1", epoch); !errors.Is(err, context.Canceled) {
		t.Fatalf("waitLoaded = %v, want context.Canceled", err)
	}
}

func TestCreateUsesTheEngineClock(t *testing.T) {
	e := newStartingEngine()
	e.logs = []string{started}
	id, err := Create(context.Background(), e, Spec{Name: "edge", Image: "haproxy:3.0", Network: "edge-net", MetricsPort: 9101}, "")
	if err != nil || id != "router-1" {
		t.Fatalf("Create = %q, %v", id, err)
	}
	// The start is read from a second before it, for clock differences with the daemon.
	if len(e.sinceSeen) == 0 || !e.sinceSeen[0].Equal(epoch.Add(-time.Second)) {
		t.Errorf("logs read since %v, want %v", e.sinceSeen, epoch.Add(-time.Second))
	}
}

func TestCreateRemovesARouterThatNeverLoaded(t *testing.T) {
	e := newStartingEngine()
	_, err := Create(context.Background(), e, Spec{Name: "edge", Image: "haproxy:3.0", Network: "edge-net", MetricsPort: 9101}, "")
	if err == nil || !strings.Contains(err.Error(), "within 30s") {
		t.Fatalf("Create = %v, want the start timeout", err)
	}
	if len(e.removed) != 1 || e.removed[0] != "router-1" {
		t.Errorf("removed %v, want the router that never loaded", e.removed)
	}
}

func TestRepairTimesOutOnAStoppedRouter(t *testing.T) {
	e := newStartingEngine()
	c := &Controller{Docker: e, Clock: e.clk}
	err := Repair(context.Background(), e, c, Observed{Found: true, ID: "router-1", Running: false})
	if err == nil || !strings.Contains(err.Error(), "within 30s") {
		t.Fatalf("Repair = %v, want the start timeout", err)
	}
	if len(e.started) != 1 {
		t.Errorf("started %v, want the stopped router started once", e.started)
	}
	if waited := e.clk.Now().Sub(epoch); waited != 30*time.Second {
		t.Errorf("gave up after %s of fake time, want 30s", waited)
	}
}

func TestEngineClockDefaultsToWallClock(t *testing.T) {
	var e struct{ Engine }
	if _, ok := engineClock(e).(clock.Real); !ok {
		t.Errorf("engineClock of an engine without a clock = %T, want clock.Real", engineClock(e))
	}
}
