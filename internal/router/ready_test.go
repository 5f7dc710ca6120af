package router

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/releasekit/terraform-provider-release/internal/clock/clocktest"
	"github.com/releasekit/terraform-provider-release/internal/docker"
	"github.com/releasekit/terraform-provider-release/internal/probe"
)

// exporterText writes servers' states as HAProxy 2.6's exporter does: one
// series per possible state, the current one at 1, and none of the check
// states at 1 before the first check.
func exporterText(backend string, states map[string]ServerState) string {
	names := make([]string, 0, len(states))
	for n := range states {
		names = append(names, n)
	}
	sort.Strings(names)
	var b strings.Builder
	b.WriteString("# TYPE haproxy_server_status gauge\n")
	for _, n := range names {
		for _, st := range []string{"DOWN", "UP", "MAINT", "DRAIN", "NOLB"} {
			fmt.Fprintf(&b, "haproxy_server_status{proxy=%q,server=%q,state=%q} %d\n", backend, n, st, b2i(states[n].Status == st))
		}
	}
	b.WriteString("# TYPE haproxy_server_weight gauge\n")
	for _, n := range names {
		fmt.Fprintf(&b, "haproxy_server_weight{proxy=%q,server=%q} %d\n", backend, n, states[n].Weight)
	}
	b.WriteString("# TYPE haproxy_server_check_status gauge\n")
	for _, n := range names {
		for _, st := range []string{"HANA", "SOCKERR", "L4OK", "L4TOUT", "L4CON", "L6OK", "L6TOUT", "L6RSP", "L7TOUT", "L7RSP", "L7OK", "L7OKC", "L7STS"} {
			fmt.Fprintf(&b, "haproxy_server_check_status{proxy=%q,server=%q,state=%q} %d\n", backend, n, st, b2i(states[n].CheckStatus == st))
		}
	}
	return b.String()
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// statesRouter is a router whose exporter shows the n-th scrape's states
// (the last one repeats), or fails while scrapeErr is set.
type statesRouter struct {
	Container
	scrapes   []map[string]ServerState
	calls     int
	scrapeErr error
	installed int
	onScrape  func()
}

func (r *statesRouter) Architecture(context.Context) (string, error) { return "x86_64", nil }

func (r *statesRouter) CopyFiles(context.Context, string, string, []docker.File) error {
	r.installed++
	return nil
}

func (r *statesRouter) Exec(_ context.Context, _ string, cmd []string) (int, string, error) {
	if cmd[0] != probe.Path || cmd[1] != "-body" {
		return 1, "unexpected command", nil
	}
	if r.onScrape != nil {
		r.onScrape()
	}
	if r.scrapeErr != nil {
		return 0, "", r.scrapeErr
	}
	i := min(r.calls, len(r.scrapes)-1)
	r.calls++
	return 0, exporterText("be_prod_web", r.scrapes[i]), nil
}

func readyController(r *statesRouter) (*Controller, *clocktest.Fake) {
	clk := clocktest.New(epoch)
	return &Controller{Docker: r, ReadyPoll: 250 * time.Millisecond, Clock: clk}, clk
}

var (
	unchecked = ServerState{Status: "UP", Weight: 100}
	passed    = ServerState{Status: "UP", CheckStatus: "L7OK", Weight: 100}
	timedOut  = ServerState{Status: "DOWN", CheckStatus: "L7TOUT", Weight: 100}
)

func TestWaitReadyWaitsForTheRoutersOwnCheck(t *testing.T) {
	r := &statesRouter{scrapes: []map[string]ServerState{
		{"r1-1": passed, "r2-1": unchecked, "r2-2": unchecked}, // added by the reload: UP, never checked
		{"r1-1": passed, "r2-1": passed, "r2-2": unchecked},
		{"r1-1": passed, "r2-1": passed, "r2-2": passed},
	}}
	c, clk := readyController(r)
	began := time.Now()
	if err := c.WaitReady(context.Background(), "router-1", 9101, "be_prod_web", []string{"r2-1", "r2-2"}, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	if r.calls != 3 {
		t.Errorf("returned after %d scrapes, want 3: a server UP but never checked is not ready", r.calls)
	}
	if waited := clk.Now().Sub(epoch); waited != 500*time.Millisecond {
		t.Errorf("waited %s on the fake clock, want two polls of 250ms", waited)
	}
	if r.installed != 1 {
		t.Errorf("probe placed %d times, want once", r.installed)
	}
	if d := time.Since(began); d > 2*time.Second {
		t.Errorf("took %s of real time", d)
	}
}

// Polls start at ReadyPoll and back off by half up to 250ms.
func TestWaitReadyBacksOff(t *testing.T) {
	r := &statesRouter{scrapes: []map[string]ServerState{
		{"r2-1": unchecked}, {"r2-1": unchecked}, {"r2-1": unchecked}, {"r2-1": unchecked}, {"r2-1": passed},
	}}
	c, clk := readyController(r)
	c.ReadyPoll = 10 * time.Millisecond
	if err := c.WaitReady(context.Background(), "router-1", 9101, "be_prod_web", []string{"r2-1"}, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	if waited, want := clk.Now().Sub(epoch), 81250*time.Microsecond; waited != want {
		t.Errorf("waited %s on the fake clock over %d scrapes, want %s (10, 15, 22.5, 33.75ms)", waited, r.calls, want)
	}
	for poll, want := range map[time.Duration]time.Duration{10 * time.Millisecond: 15 * time.Millisecond, 200 * time.Millisecond: 250 * time.Millisecond,
		250 * time.Millisecond: 250 * time.Millisecond, time.Second: time.Second} {
		if got := nextPoll(poll); got != want {
			t.Errorf("nextPoll(%s) = %s, want %s", poll, got, want)
		}
	}
}

func TestWaitReadyTimeoutNamesEachServer(t *testing.T) {
	r := &statesRouter{scrapes: []map[string]ServerState{
		{"r2-1": passed, "r2-2": timedOut, "r2-3": unchecked},
	}}
	c, clk := readyController(r)
	err := c.WaitReady(context.Background(), "router-1", 9101, "be_prod_web", []string{"r2-1", "r2-2", "r2-3", "r2-4"}, 30*time.Second)
	var nr *NotReadyError
	if !errors.As(err, &nr) {
		t.Fatalf("WaitReady = %v (%T), want *NotReadyError", err, err)
	}
	if _, ok := nr.Servers["r2-1"]; ok || len(nr.Servers) != 3 || nr.Servers["r2-2"] != timedOut {
		t.Errorf("NotReadyError.Servers = %+v, want r2-2, r2-3 and r2-4 only", nr.Servers)
	}
	for _, want := range []string{
		"r2-2 is DOWN (Layer 7 timeout, L7TOUT)",
		"r2-3 is UP (not checked yet)",
		"r2-4 is not in the router's running configuration",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
	if strings.Contains(err.Error(), "r2-1") {
		t.Errorf("error names the ready server: %q", err)
	}
	if waited := clk.Now().Sub(epoch); waited != 30*time.Second {
		t.Errorf("gave up after %s, want the 30s timeout", waited)
	}
	if want := int(30*time.Second/(250*time.Millisecond)) + 1; r.calls != want {
		t.Errorf("scraped %d times, want %d (every poll, and once at the deadline)", r.calls, want)
	}
}

func TestWaitReadyScrapeFailureIsNotANotReadyError(t *testing.T) {
	r := &statesRouter{scrapeErr: errors.New("container is not running")}
	c, _ := readyController(r)
	err := c.WaitReady(context.Background(), "router-1", 9101, "be_prod_web", []string{"r2-1"}, 2*time.Second)
	var nr *NotReadyError
	if err == nil || errors.As(err, &nr) || !strings.Contains(err.Error(), "container is not running") {
		t.Fatalf("WaitReady = %v, want the scrape's error", err)
	}
}

func TestWaitReadyRecoversFromAFailedScrape(t *testing.T) {
	r := &statesRouter{scrapes: []map[string]ServerState{{"r2-1": passed}}, scrapeErr: errors.New("connection refused")}
	c, _ := readyController(r)
	n := 0
	r.onScrape = func() {
		if n++; n == 3 {
			r.scrapeErr = nil
		}
	}
	if err := c.WaitReady(context.Background(), "router-1", 9101, "be_prod_web", []string{"r2-1"}, 2*time.Second); err != nil {
		t.Fatalf("WaitReady = %v, want nil once a scrape succeeds", err)
	}
}

func TestWaitReadyCancelled(t *testing.T) {
	r := &statesRouter{scrapes: []map[string]ServerState{{"r2-1": unchecked}}}
	c, clk := readyController(r)
	ctx, cancel := context.WithCancel(context.Background())
	r.onScrape = cancel
	if err := c.WaitReady(ctx, "router-1", 9101, "be_prod_web", []string{"r2-1"}, time.Minute); !errors.Is(err, context.Canceled) {
		t.Fatalf("WaitReady = %v, want the context's error", err)
	}
	if waited := clk.Now().Sub(epoch); waited != 0 {
		t.Errorf("the clock moved %s after the context ended", waited)
	}
}

func TestWaitReadyNoServers(t *testing.T) {
	r := &statesRouter{}
	c, _ := readyController(r)
	if err := c.WaitReady(context.Background(), "router-1", 9101, "be_prod_web", nil, time.Minute); err != nil || r.calls != 0 {
		t.Errorf("WaitReady(no servers) = %v after %d scrapes, want nil at once", err, r.calls)
	}
}
