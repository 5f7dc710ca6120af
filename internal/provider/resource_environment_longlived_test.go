package provider

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/terraform"

	"github.com/releasekit/terraform-provider-release/internal/loadgen"
	"github.com/releasekit/terraform-provider-release/internal/router"
)

// eventStream is one server-sent-events client through the router: it
// records every event and how the stream ended.
type eventStream struct {
	name     string
	mu       sync.Mutex
	events   int
	versions map[string]int
	last     time.Time
	maxGap   time.Duration
	shutdown bool // the application said it shuts down: its container was stopped
	closedAt time.Time
	err      error
	done     chan struct{}
}

// openEventStream connects to /events with an optional cookie (a sticky
// server) and follows the stream in the background.
func openEventStream(t *testing.T, name, url, cookie string) *eventStream {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if cookie != "" {
		req.Header.Set("Cookie", cookie)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream" {
		resp.Body.Close()
		t.Fatalf("GET %s: HTTP %d %s; the test application has no /events (rebuild it: scripts/stack.sh up)", url, resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	s := &eventStream{name: name, versions: map[string]int{}, last: time.Now(), done: make(chan struct{})}
	go func() {
		defer close(s.done)
		defer resp.Body.Close()
		r := bufio.NewReader(resp.Body)
		for {
			line, err := r.ReadString('\n')
			now := time.Now()
			s.mu.Lock()
			if err != nil {
				s.closedAt, s.err = now, err
				s.mu.Unlock()
				return
			}
			switch {
			case strings.HasPrefix(line, "event: shutdown"):
				s.shutdown = true
			case strings.HasPrefix(line, "data: version="):
				if gap := now.Sub(s.last); gap > s.maxGap {
					s.maxGap = gap
				}
				s.last = now
				s.events++
				v, _, _ := strings.Cut(strings.TrimPrefix(line, "data: version="), " ")
				s.versions[v]++
			}
			s.mu.Unlock()
		}
	}()
	return s
}

// check says how the stream went: events without a gap longer than
// maxGap, from version only, ended by its application's shutdown, not
// before notBefore.
func (s *eventStream) check(version string, maxGap time.Duration, notBefore time.Time) error {
	select {
	case <-s.done:
	case <-time.After(10 * time.Second):
		return fmt.Errorf("%s: the stream is still open after the apply", s.name)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	summary := fmt.Sprintf("%s: %d events %v, longest gap %s, closed at %s (%v), shutdown event %t",
		s.name, s.events, s.versions, s.maxGap.Round(time.Millisecond), s.closedAt.Format("15:04:05.000"), s.err, s.shutdown)
	switch {
	case !s.shutdown:
		return fmt.Errorf("%s: the stream was cut without its application's shutdown event", summary)
	case s.versions[version] != s.events:
		return fmt.Errorf("%s: events from another version than %s", summary, version)
	case s.maxGap > maxGap:
		return fmt.Errorf("%s: a gap longer than %s", summary, maxGap)
	case s.closedAt.Before(notBefore):
		return fmt.Errorf("%s: closed before %s", summary, notBefore.Format("15:04:05.000"))
	}
	return nil
}

// routerSample is the router seen at one moment of a canary.
type routerSample struct {
	at      time.Time
	workers int // haproxy processes besides the master; -1 when they could not be read
	reloads int // since the watch began
	canary  int // responses of the canary's servers (c*), -1 when it has none
	// loadBefore and loadAfter are the load generators' answers from the
	// canary's version just before and just after the router was read.
	loadBefore, loadAfter int
	stableDrained         bool // every stable server (r*) is in maintenance
}

// routerWatch samples a router during an apply: workers, reloads, the
// canary's counters next to the load generators' counts.
type routerWatch struct {
	mu      sync.Mutex
	samples []routerSample
	stop    chan struct{}
	done    chan struct{}
}

func (f *canaryFixture) watchRouter(t *testing.T, version string) *routerWatch {
	ctx := context.Background()
	rc, err := f.engine.Inspect(ctx, router.ContainerName(f.router))
	if err != nil {
		t.Fatal(err)
	}
	since, err := f.engine.DaemonTime(ctx)
	if err != nil {
		t.Fatal(err)
	}
	ctl := &router.Controller{Docker: f.engine}
	t.Cleanup(ctl.Close)
	backend := router.BackendName(f.env, "web")
	w := &routerWatch{stop: make(chan struct{}), done: make(chan struct{})}
	// Answers from the canary's version, 2xx or not, of every load run.
	answered := func() int {
		n := 0
		for _, run := range []*loadgen.Run{f.load, f.loadNew, f.users} {
			if run != nil {
				snap := run.Snapshot()
				n += snap.ByVersion[version] + snap.AppErrors[version]
			}
		}
		return n
	}
	go func() {
		defer close(w.done)
		for {
			select {
			case <-w.stop:
				return
			case <-time.After(300 * time.Millisecond):
			}
			s := routerSample{at: time.Now(), canary: -1, workers: -1}
			if procs, err := f.engine.Processes(ctx, rc.ID); err == nil {
				s.workers = countOf(procs, "haproxy") - 1
			}
			if logs, err := f.engine.LogsSince(ctx, rc.ID, since); err == nil {
				s.reloads = strings.Count(logs, "Reloading HAProxy")
			}
			s.loadBefore = answered()
			text, err := ctl.ServerMetrics(ctx, rc.ID, 8404)
			s.loadAfter = answered()
			if err != nil {
				continue
			}
			counts, _ := router.ParseServerMetrics(strings.NewReader(text), backend)
			states, _ := router.ParseServerStates(strings.NewReader(text), backend)
			// The canary's servers until the promotion: then they are
			// deleted, or kept in maintenance while connections remain.
			for name := range counts {
				if strings.HasPrefix(name, "c") && states[name].Status != "MAINT" {
					s.canary = max(s.canary, 0)
				}
			}
			for name, c := range counts {
				if strings.HasPrefix(name, "c") && s.canary >= 0 {
					s.canary += int(c.Requests)
				}
			}
			stable, drained := 0, 0
			for name, st := range states {
				if strings.HasPrefix(name, "r") {
					stable++
					if st.Status == "MAINT" {
						drained++
					}
				}
			}
			s.stableDrained = stable > 0 && drained == stable
			w.mu.Lock()
			w.samples = append(w.samples, s)
			w.mu.Unlock()
		}
	}()
	return w
}

func (w *routerWatch) finish() []routerSample {
	close(w.stop)
	<-w.done
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.samples
}

func countOf(lines []string, s string) int {
	n := 0
	for _, l := range lines {
		if strings.Contains(l, s) {
			n++
		}
	}
	return n
}

// A server-sent-events client connected before a canary stays connected
// and receives every event through each step and the promotion, and is
// closed only when its revision retires (its application's own shutdown
// event); a second one, connected during the steps and pinned to a stable
// server, is drained for stop_timeout before that. The steps, the promotion
// and the drain, and the servers added and deleted, go through the runtime
// API: the router reloads once, as the canary joins the route with no
// traffic (its request log), and never after; and the
// canary's request counts, which keep counting, equal the load generators'
// answers from the canary's version.
func TestAccEnvironmentCanary_longLivedConnectionsAndNoReloads(t *testing.T) {
	f := newCanaryFixture(t)
	const stopTimeout = 5 * time.Second // envFixture's stop_timeout
	config := func(digest string) string {
		return strings.Replace(f.config(digest, ""), "ports = [{", "hard_stop_after = \"10m\"\n  timeout_tunnel = \"30m\"\n  ports = [{", 1)
	}
	var (
		before     *eventStream
		pinned     = make(chan *eventStream, 1)
		watch      *routerWatch
		applyStart time.Time
	)
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProviders,
		CheckDestroy:             f.checkDestroyed,
		Steps: []resource.TestStep{
			{
				Config: config(f.v1),
				Check: resource.ComposeTestCheckFunc(f.checkServes("1.0.0"), func(*terraform.State) error {
					files, err := f.engine.ReadDir(context.Background(), router.ContainerName(f.router), router.ConfigDir)
					if err != nil {
						return err
					}
					base := string(files[router.BaseFile])
					for _, want := range []string{"hard-stop-after 600s", "timeout tunnel 1800s", "stats socket " + router.RuntimeSocket} {
						if !strings.Contains(base, want) {
							return fmt.Errorf("the base configuration lacks %q:\n%s", want, base)
						}
					}
					return nil
				}),
			},
			{
				PreConfig: func() {
					f.startLoad()
					f.startUsers()
					before = openEventStream(t, "stream opened before the canary", f.url()+"events", "")
					watch = f.watchRouter(t, "2.0.0")
					applyStart = time.Now()
					// The second stream, once the first step gave the canary traffic, pinned to stable r1-1.
					go func() {
						for deadline := time.Now().Add(2 * time.Minute); time.Now().Before(deadline); time.Sleep(300 * time.Millisecond) {
							watch.mu.Lock()
							routed := len(watch.samples) > 0 && watch.samples[len(watch.samples)-1].canary > 0
							watch.mu.Unlock()
							if routed {
								pinned <- openEventStream(t, "stream opened during the steps, pinned to r1-1", f.url()+"events", f.pinCookie("r1-1"))
								return
							}
						}
					}()
				},
				Config: config(f.v2),
				Check: resource.ComposeTestCheckFunc(
					func(*terraform.State) error {
						return f.stopCanaryLoad("canary of v2 with event streams", "", "1.0.0", "2.0.0")
					},
					f.checkServes("2.0.0"),
					f.checkOnly("2"),
					func(*terraform.State) error {
						samples := watch.finish()
						var second *eventStream
						select {
						case second = <-pinned:
						default:
						}
						return checkNoReloadCanary(t, samples, applyStart, before, second, stopTimeout)
					},
				),
			},
		},
	})
}

// checkNoReloadCanary reads the samples of the router taken during the canary.
func checkNoReloadCanary(t *testing.T, samples []routerSample, applyStart time.Time, before, pinned *eventStream, stopTimeout time.Duration) error {
	if len(samples) < 20 {
		return fmt.Errorf("only %d samples of the router", len(samples))
	}
	first := -1
	for i, s := range samples {
		if s.canary >= 0 {
			first = i
			break
		}
	}
	if first < 0 {
		return fmt.Errorf("the router never had the canary's servers")
	}
	// The window: the canary's servers in the router. A sample taken while
	// a reload was under way sees part of it (the log line or the new
	// worker lags the exporter): the window's first second and its last two
	// samples are left out of the reload and worker counts.
	end := first
	for end+1 < len(samples) && samples[end+1].canary >= 0 {
		end++
	}
	settled := first
	for settled < end && samples[settled].at.Before(samples[first].at.Add(1500*time.Millisecond)) {
		settled++
	}
	var (
		lines                  []string
		drainedAt              time.Time
		maxWorkers, minWorkers = 0, 1 << 30
		reloads                = map[int]bool{}
		prev                   = -1
	)
	for i := first; i <= end; i++ {
		s := samples[i]
		if s.stableDrained && drainedAt.IsZero() {
			drainedAt = s.at
		}
		if i >= settled && i <= end-2 {
			maxWorkers, minWorkers = max(maxWorkers, s.workers), min(minWorkers, s.workers)
			reloads[s.reloads] = true
		}
		if s.canary < prev {
			return fmt.Errorf("the canary's counters went back from %d to %d at %s: its counts were reset", prev, s.canary, s.at.Format("15:04:05.000"))
		}
		prev = s.canary
		// The router counts a response before the client has it; a
		// response under way is in neither count: at most one per worker.
		const inFlight = 16
		if s.canary < s.loadBefore-inFlight || s.canary > s.loadAfter+inFlight {
			return fmt.Errorf("at %s the canary's servers counted %d responses, the load generators %d to %d", s.at.Format("15:04:05.000"), s.canary, s.loadBefore, s.loadAfter)
		}
		if i == first || i == end || i%10 == 0 || s.at.Equal(drainedAt) {
			lines = append(lines, fmt.Sprintf("%s workers=%d reloads=%d canary=%d load=%d..%d drained=%t", s.at.Format("15:04:05.000"), s.workers, s.reloads, s.canary, s.loadBefore, s.loadAfter, s.stableDrained))
		}
	}
	last := samples[len(samples)-1]
	t.Logf("router while the canary's servers were in it (%d samples over %s):\n  %s", end-first+1, samples[end].at.Sub(samples[first].at).Round(time.Millisecond), strings.Join(lines, "\n  "))
	t.Logf("reloads in the whole apply: %d; reload counts while the canary served %v; haproxy workers then: %d to %d", last.reloads, reloads, minWorkers, maxWorkers)
	// The canary's route logs each request to the provider's count of them
	// (exact across anyone's reloads): HAProxy loads that with one reload,
	// as the canary and baseline join the route with no traffic. Then they
	// are weighted, promoted, and the old ones drained and deleted, and the
	// request log dropped, all through the runtime API: no other reload.
	if last.reloads != 1 || len(reloads) != 1 || !reloads[1] {
		return fmt.Errorf("reloads: %v while the canary's servers served, %d in all; want the one as the canary joined the route", reloads, last.reloads)
	}
	for _, s := range samples {
		if s.canary > 0 && s.reloads != 1 {
			return fmt.Errorf("at %s the canary had served %d requests and the router had reloaded %d times: the reload came after the canary had traffic", s.at.Format("15:04:05.000"), s.canary, s.reloads)
		}
	}
	if drainedAt.IsZero() {
		return fmt.Errorf("the router never showed the stable servers drained: the promotion was not a change of weights")
	}
	// The worker from before that reload keeps the stream opened before the
	// canary (its connection) until its revision retires: two at most.
	if maxWorkers > 2 || minWorkers < 1 {
		return fmt.Errorf("%d to %d HAProxy workers while the canary's servers served, want one or two", minWorkers, maxWorkers)
	}
	for _, s := range samples {
		if s.workers > 2 {
			return fmt.Errorf("%d HAProxy workers at %s, during the apply of the canary; want two at most throughout", s.workers, s.at.Format("15:04:05.000"))
		}
	}
	if err := before.check("1.0.0", 2*time.Second, applyStart); err != nil {
		return err
	}
	if pinned == nil {
		return fmt.Errorf("the second stream was never opened")
	}
	// Drained, the pinned stream's session keeps its server for stop_timeout before the container stops.
	if err := pinned.check("1.0.0", 2*time.Second, drainedAt.Add(stopTimeout-time.Second)); err != nil {
		return err
	}
	for _, s := range []*eventStream{before, pinned} {
		t.Logf("%s: %d events, longest gap %s, closed %s after the apply began, %s after the stable servers were drained, by its application's shutdown",
			s.name, s.events, s.maxGap.Round(time.Millisecond), s.closedAt.Sub(applyStart).Round(time.Millisecond), s.closedAt.Sub(drainedAt).Round(time.Millisecond))
	}
	return nil
}
