package router

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/releasekit/terraform-provider-release/internal/docker"
	"github.com/releasekit/terraform-provider-release/internal/loadgen"
)

// countedApp is two fake applications in the router itself that name
// their version: the canary answers 5xx to about one request in eight, and
// holds each request 50ms, so that workers a reload stops are still
// answering when the next reload comes.
const countedApp = `frontend counted_canary
    bind 127.0.0.1:18090
    tcp-request inspect-delay 50ms
    tcp-request content accept if WAIT_END
    http-request return status 204 if { path /healthz }
    http-request return status 500 hdr X-App-Version canary if { rand(8) eq 0 }
    http-request return status 200 hdr X-App-Version canary

frontend counted_stable
    bind 127.0.0.1:18091
    http-request return status 204 if { path /healthz }
    http-request return status 200 hdr X-App-Version stable
`

const countedAppFile = "01-counted-app.cfg"

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// Under keep-alive load, with reloads one after another (each while the
// workers of the ones before still finish their connections), the tally of
// the route's request log counts exactly the requests and 5xx the load
// generator got from each server: old workers log to the same socket.
func TestTallyCountsEveryRequestAcrossReloadsRealHAProxy(t *testing.T) {
	port := freePort(t)
	engine, id := realRouter(t, docker.Port{Internal: 8080, External: port, HostIP: "127.0.0.1"})
	ctx := context.Background()
	c := &Controller{Docker: engine}
	defer c.Close()
	tally, err := c.OpenTally(ctx, id, []float64{0.001, 0.01, 0.1})
	if err != nil {
		t.Fatal(err)
	}
	defer tally.Close()
	route := Route{Environment: "prod", Service: "web", ListenPort: 8080, HealthPath: "/healthz", CheckInterval: time.Second,
		RequestLog: tally.Addr(),
		Servers:    []Server{{Name: "c2-1", Address: "127.0.0.1:18090", Weight: 128}, {Name: "r1-1", Address: "127.0.0.1:18091", Weight: 128}}}
	if err := c.Apply(ctx, id, map[string][]byte{countedAppFile: []byte(countedApp), route.FileName(): mustRenderRoute(t, route)}); err != nil {
		t.Fatal(err)
	}
	backend := BackendName("prod", "web")
	if err := c.WaitReady(ctx, id, 9101, backend, []string{"c2-1", "r1-1"}, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	var counters Accumulator
	lastWorker := ""
	// scrape reads the counters once the reload's new worker answers:
	// signals are not waited for, so the first reads may still reach the
	// worker before.
	scrape := func() {
		for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
			s, err := c.ScrapeWorker(ctx, id, 9101, backend)
			if err != nil {
				t.Fatal(err)
			}
			if s.Worker == "" {
				t.Fatal("the scrape does not name its worker")
			}
			if s.Worker != lastWorker || time.Now().After(deadline) {
				lastWorker = s.Worker
				counters.AddScrape(s)
				return
			}
		}
	}
	scrape()
	run := loadgen.Start(loadgen.Config{URL: fmt.Sprintf("http://127.0.0.1:%d/", port), Rate: 300, Workers: 6, KeepAlive: true, MaxDuration: time.Minute})
	const reloads = 10
	// HAProxy's master and workers, old ones included, watched all along:
	// an old worker lives tens of milliseconds, less than a look between
	// two steps on a busy machine.
	watch, stopWatching := context.WithCancel(ctx)
	mostSeen := make(chan int, 1)
	go func() {
		most := 0
		for watch.Err() == nil {
			if procs, err := engine.Processes(watch, id); err == nil {
				most = max(most, countHAProxy(procs))
			}
		}
		mostSeen <- most
	}()
	extra := 0 // reloads beyond one per round
	for i := 0; i < reloads; i++ {
		time.Sleep(250 * time.Millisecond)
		if i%2 == 0 {
			// A setting of the route changes: the apply reloads, and waits
			// for the old workers.
			route.CheckInterval = time.Duration(i+2) * time.Second
			if err := c.Apply(ctx, id, map[string][]byte{route.FileName(): mustRenderRoute(t, route)}); err != nil {
				t.Fatal(err)
			}
		} else {
			// Two reloads one after the other, waiting for nothing: the worker the
			// first starts is stopped while it serves, beside the one before.
			for range 2 {
				if err := engine.Signal(ctx, id, "SIGUSR2"); err != nil {
					t.Fatal(err)
				}
			}
			extra++
		}
		scrape()
	}
	time.Sleep(250 * time.Millisecond)
	stats := run.Finish()
	stopWatching()
	mostProcesses := <-mostSeen
	// The last old workers log what they answered before they exit.
	var got map[string]ServerTallyCounts
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		tl, err := tally.Read(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if tl.Dropped != 0 {
			t.Fatalf("the tally's socket dropped %d lines", tl.Dropped)
		}
		got = map[string]ServerTallyCounts{}
		for name, s := range tl.Servers[backend] {
			got[name] = ServerTallyCounts{s.Requests, s.Errors}
		}
		if got["c2-1"].Requests+got["r1-1"].Requests >= int64(stats.Requests-stats.Errors) || time.Now().After(deadline) {
			break
		}
	}
	want := map[string]ServerTallyCounts{
		"c2-1": {int64(stats.ByVersion["canary"] + stats.AppErrors["canary"]), int64(stats.AppErrors["canary"])},
		"r1-1": {int64(stats.ByVersion["stable"] + stats.AppErrors["stable"]), int64(stats.AppErrors["stable"])},
	}
	t.Logf("load generator %s, app 5xx %v; tally %v over %d reloads (%d seen by the counters' scrapes, which counted %.0f canary requests); up to %d HAProxy processes at once",
		stats, stats.AppErrors, got, reloads+extra, counters.Reloads, counters.Totals()["c2-1"].Requests, mostProcesses)
	if mostProcesses < 3 {
		t.Errorf("at most %d HAProxy processes after a reload: no old worker was still finishing its connections", mostProcesses)
	}
	if stats.Errors > 0 || stats.Requests < 1000 || want["c2-1"].Errors == 0 {
		t.Fatalf("the load is not what the test needs: %s (failures %v)", stats, stats.Failures)
	}
	for name, w := range want {
		if got[name] != w {
			t.Errorf("%s: tally %+v, load generator %+v", name, got[name], w)
		}
	}
	if counters.Reloads != reloads {
		t.Errorf("the counters' scrapes saw %d new workers, want %d (one per reload)", counters.Reloads, reloads)
	}
	// What the counters miss: old workers' answers after the scrape that followed each reload.
	if total := counters.Totals()["c2-1"].Requests; total > float64(want["c2-1"].Requests) {
		t.Errorf("the counters counted %.0f canary requests, more than the %d answered", total, want["c2-1"].Requests)
	}
}

// ServerTallyCounts are the counts a test compares.
type ServerTallyCounts struct{ Requests, Errors int64 }

// A new worker that answers more requests than the old one had counted,
// before the next scrape: a reader that infers a reload from a counter going
// down takes the old total off the fresh counts; one that reads the
// worker's name counts every request.
func TestCountersUpwardStepAcrossReloadRealHAProxy(t *testing.T) {
	port := freePort(t)
	engine, id := realRouter(t, docker.Port{Internal: 8080, External: port, HostIP: "127.0.0.1"})
	ctx := context.Background()
	c := &Controller{Docker: engine}
	defer c.Close()
	route := Route{Environment: "prod", Service: "web", ListenPort: 8080, HealthPath: "/healthz", CheckInterval: time.Second,
		Servers: []Server{{Name: "c2-1", Address: "127.0.0.1:18091", Weight: 100}}}
	if err := c.Apply(ctx, id, map[string][]byte{countedAppFile: []byte(countedApp), route.FileName(): mustRenderRoute(t, route)}); err != nil {
		t.Fatal(err)
	}
	backend := BackendName("prod", "web")
	send := func(n int) {
		for i := 0; i < n; i++ {
			resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/", port))
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("HTTP %d", resp.StatusCode)
			}
		}
		http.DefaultClient.CloseIdleConnections() // nothing left on a worker a reload stops
	}
	if err := c.WaitReady(ctx, id, 9101, backend, []string{"c2-1"}, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	var named, inferred Accumulator
	scrape := func() string {
		s, err := c.ScrapeWorker(ctx, id, 9101, backend)
		if err != nil {
			t.Fatal(err)
		}
		named.AddScrape(s)
		inferred.Add(s.Servers)
		return s.Worker
	}
	scrape()
	send(40)
	first := scrape()
	route.CheckInterval = 2 * time.Second
	if err := c.Apply(ctx, id, map[string][]byte{route.FileName(): mustRenderRoute(t, route)}); err != nil {
		t.Fatal(err)
	}
	send(70)
	second := scrape()
	if first == "" || second == "" || first == second {
		t.Fatalf("workers %q and %q: the reload is not told by the scrape", first, second)
	}
	n, i := named.Totals()["c2-1"].Requests, inferred.Totals()["c2-1"].Requests
	t.Logf("110 requests over one reload (workers %s, %s): named workers count %.0f, inferred reloads %.0f", first, second, n, i)
	if n != 110 || named.Reloads != 1 {
		t.Errorf("with the worker named: %.0f requests and %d reloads, want 110 and 1", n, named.Reloads)
	}
	if i != 70 {
		t.Errorf("the inference counted %.0f; this test expects the old loss (70) to show the case is met", i)
	}
}
