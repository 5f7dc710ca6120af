package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeClock is a time source the test moves by hand.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func testServer(t *testing.T, vars map[string]string) (*server, *fakeClock) {
	t.Helper()
	cfg, err := loadConfig(env(vars))
	if err != nil {
		t.Fatal(err)
	}
	s := newServer(cfg)
	s.hostname = "testhost"
	clock := &fakeClock{t: s.start}
	s.now = clock.now
	return s, clock
}

func get(t *testing.T, h http.Handler, path string) *httptest.ResponseRecorder {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
	return rec
}

// parseMetrics reads "name{labels} value" lines into a map keyed by
// "name{labels}".
func parseMetrics(t *testing.T, body string) map[string]float64 {
	t.Helper()
	out := map[string]float64{}
	sc := bufio.NewScanner(strings.NewReader(body))
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			t.Fatalf("bad metrics line %q", line)
		}
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Fatalf("bad value in %q: %v", line, err)
		}
		out[line[:i]] = v
	}
	return out
}

func TestRootReportsVersion(t *testing.T) {
	s, _ := testServer(t, map[string]string{"APP_VERSION": "1.0.0"})
	rec := get(t, s.handler(), "/")
	if rec.Code != http.StatusOK {
		t.Fatalf("status %d", rec.Code)
	}
	if got, want := rec.Body.String(), "version=1.0.0 host=testhost\n"; got != want {
		t.Fatalf("body %q, want %q", got, want)
	}
	if got := rec.Header().Get("X-App-Version"); got != "1.0.0" {
		t.Fatalf("X-App-Version %q", got)
	}
}

func TestVersionHeaderOnEveryResponse(t *testing.T) {
	s, _ := testServer(t, map[string]string{"APP_VERSION": "3.1.4", "HEALTH": "fail"})
	for _, path := range []string{"/", "/healthz", "/metrics", "/nope"} {
		rec := get(t, s.handler(), path)
		if got := rec.Header().Get("X-App-Version"); got != "3.1.4" {
			t.Errorf("%s: X-App-Version %q", path, got)
		}
	}
	if rec := get(t, s.handler(), "/nope"); rec.Code != http.StatusNotFound {
		t.Errorf("/nope: status %d, want 404", rec.Code)
	}
}

func TestErrorRate(t *testing.T) {
	s, _ := testServer(t, map[string]string{"ERROR_RATE": "1"})
	if rec := get(t, s.handler(), "/"); rec.Code != http.StatusInternalServerError {
		t.Fatalf("ERROR_RATE=1: status %d", rec.Code)
	}

	// With a controlled random source: 0.3 < 0.5 fails, 0.7 does not.
	s, _ = testServer(t, map[string]string{"ERROR_RATE": "0.5"})
	draws := []float64{0.3, 0.7}
	s.random = func() float64 { v := draws[0]; draws = draws[1:]; return v }
	if rec := get(t, s.handler(), "/"); rec.Code != 500 {
		t.Fatalf("first: status %d", rec.Code)
	}
	if rec := get(t, s.handler(), "/"); rec.Code != 200 {
		t.Fatalf("second: status %d", rec.Code)
	}
	m := parseMetrics(t, get(t, s.handler(), "/metrics").Body.String())
	if m[`app_requests_total{code="200"}`] != 1 || m[`app_requests_total{code="500"}`] != 1 {
		t.Fatalf("requests metrics: %v", m)
	}
}

func TestErrorRateStatistics(t *testing.T) {
	s, _ := testServer(t, map[string]string{"ERROR_RATE": "0.2"})
	h := s.handler()
	fails := 0
	const n = 5000
	for range n {
		if get(t, h, "/").Code == 500 {
			fails++
		}
	}
	if rate := float64(fails) / n; rate < 0.15 || rate > 0.25 {
		t.Fatalf("observed error rate %.3f for ERROR_RATE=0.2", rate)
	}
}

func TestErrorTypes(t *testing.T) {
	s, _ := testServer(t, map[string]string{"ERROR_TYPES": "timeout=0.5,auth=0.1,never=0"})
	// Types are drawn in name order (auth, never is skipped, timeout).
	draws := []float64{
		0.05, 0.4, // request 1: auth yes, timeout yes
		0.5, 0.6, // request 2: auth no, timeout no
		0.9, 0.1, // request 3: auth no, timeout yes
	}
	s.random = func() float64 { v := draws[0]; draws = draws[1:]; return v }
	h := s.handler()
	rec := get(t, h, "/")
	if rec.Code != 200 {
		t.Fatalf("error types must not change the status: %d", rec.Code)
	}
	if got := rec.Header().Get("X-App-Errors"); got != "auth,timeout" {
		t.Fatalf("X-App-Errors %q", got)
	}
	get(t, h, "/")
	get(t, h, "/")

	body := get(t, h, "/metrics").Body.String()
	m := parseMetrics(t, body)
	want := map[string]float64{
		`app_errors_total{type="auth"}`:    1,
		`app_errors_total{type="timeout"}`: 2,
		`app_errors_total{type="never"}`:   0, // exposed from the start
		`app_requests_total{code="200"}`:   3,
	}
	for k, v := range want {
		got, ok := m[k]
		if !ok || got != v {
			t.Errorf("%s = %v (present %t), want %v\n%s", k, got, ok, v, body)
		}
	}
}

func TestHealth(t *testing.T) {
	s, _ := testServer(t, nil)
	if rec := get(t, s.handler(), "/healthz"); rec.Code != 200 || rec.Body.String() != "ok\n" {
		t.Fatalf("healthy: %d %q", rec.Code, rec.Body.String())
	}
	s, _ = testServer(t, map[string]string{"HEALTH": "fail"})
	if rec := get(t, s.handler(), "/healthz"); rec.Code != 503 {
		t.Fatalf("HEALTH=fail: %d", rec.Code)
	}
}

func TestHealthDelay(t *testing.T) {
	s, clock := testServer(t, map[string]string{"HEALTH_DELAY": "5s"})
	h := s.handler()
	if rec := get(t, h, "/healthz"); rec.Code != 503 {
		t.Fatalf("at start: %d", rec.Code)
	}
	clock.advance(4 * time.Second)
	if rec := get(t, h, "/healthz"); rec.Code != 503 {
		t.Fatalf("after 4s: %d", rec.Code)
	}
	clock.advance(time.Second)
	if rec := get(t, h, "/healthz"); rec.Code != 200 {
		t.Fatalf("after 5s: %d", rec.Code)
	}
	// The app itself serves during the delay: only health is held back.
	if rec := get(t, h, "/"); rec.Code != 200 {
		t.Fatalf("/ during delay: %d", rec.Code)
	}
}

func TestHealthLatency(t *testing.T) {
	s, _ := testServer(t, map[string]string{"HEALTH_LATENCY": "60ms"})
	begin := time.Now()
	if rec := get(t, s.handler(), "/healthz"); rec.Code != 200 {
		t.Fatalf("/healthz: %d", rec.Code)
	}
	if d := time.Since(begin); d < 60*time.Millisecond {
		t.Fatalf("/healthz answered after %s, want at least 60ms", d)
	}
	// Only health is slow.
	begin = time.Now()
	get(t, s.handler(), "/")
	if d := time.Since(begin); d >= 60*time.Millisecond {
		t.Fatalf("/ answered after %s, want no added latency", d)
	}
}

func TestLatency(t *testing.T) {
	s, _ := testServer(t, map[string]string{"LATENCY": "60ms"})
	s.now = time.Now
	begin := time.Now()
	get(t, s.handler(), "/")
	if d := time.Since(begin); d < 60*time.Millisecond {
		t.Fatalf("answered after %s, want at least 60ms", d)
	}
	m := parseMetrics(t, get(t, s.handler(), "/metrics").Body.String())
	if m[`app_request_duration_seconds_bucket{le="0.05"}`] != 0 ||
		m[`app_request_duration_seconds_bucket{le="0.1"}`] != 1 ||
		m[`app_request_duration_seconds_count`] != 1 ||
		m[`app_request_duration_seconds_sum`] < 0.06 {
		t.Fatalf("duration histogram: %v", m)
	}
}

func TestLatencyStopsWhenClientGoes(t *testing.T) {
	s, _ := testServer(t, map[string]string{"LATENCY": "1h"})
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	req := httptest.NewRequest(http.MethodGet, "/", nil).WithContext(ctx)
	done := make(chan struct{})
	go func() {
		s.handler().ServeHTTP(httptest.NewRecorder(), req)
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("handler kept sleeping after the client went away")
	}
}

func TestMetricsFormat(t *testing.T) {
	s, _ := testServer(t, map[string]string{"APP_VERSION": `1.0.0"x\`})
	rec := get(t, s.handler(), "/metrics")
	if ct := rec.Header().Get("Content-Type"); !strings.HasPrefix(ct, "text/plain; version=0.0.4") {
		t.Fatalf("Content-Type %q", ct)
	}
	body := rec.Body.String()
	for _, want := range []string{
		"# TYPE app_info gauge\n",
		`app_info{version="1.0.0\"x\\"} 1` + "\n",
		"# TYPE app_requests_total counter\n",
		`app_requests_total{code="200"} 0` + "\n",
		`app_requests_total{code="500"} 0` + "\n",
		"# TYPE app_errors_total counter\n",
		"# TYPE app_request_duration_seconds histogram\n",
		`app_request_duration_seconds_bucket{le="+Inf"} 0` + "\n",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("metrics lack %q:\n%s", want, body)
		}
	}
	parseMetrics(t, body) // every sample line parses
}

// TestGracefulShutdown runs the real server: a request in flight when the
// shutdown starts still gets its answer, and new connections are refused.
func TestGracefulShutdown(t *testing.T) {
	cfg, err := loadConfig(env(map[string]string{"LATENCY": "300ms", "APP_VERSION": "9"}))
	if err != nil {
		t.Fatal(err)
	}
	ln := newLocalListener(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- run(ctx, cfg, ln, testLogger(t)) }()

	url := "http://" + ln.Addr().String() + "/"
	type result struct {
		body string
		err  error
	}
	res := make(chan result, 1)
	go func() {
		resp, err := http.Get(url)
		if err != nil {
			res <- result{err: err}
			return
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		res <- result{string(b), err}
	}()
	time.Sleep(100 * time.Millisecond) // the request is now sleeping in the handler
	cancel()

	r := <-res
	if r.err != nil || !strings.HasPrefix(r.body, "version=9 ") {
		t.Fatalf("in-flight request: %q %v", r.body, r.err)
	}
	if err := <-done; err != nil {
		t.Fatalf("run: %v", err)
	}
	if _, err := http.Get(url); err == nil {
		t.Fatal("server still accepts connections after shutdown")
	}
}

func TestEventsStreamUntilShutdown(t *testing.T) {
	s := newServer(config{Version: "9.9.9"})
	s.eventEvery = 5 * time.Millisecond
	ts := httptest.NewServer(s.handler())
	defer ts.Close()
	resp, err := http.Get(ts.URL + "/events")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Errorf("Content-Type %q", ct)
	}
	r := bufio.NewReader(resp.Body)
	for seq := 1; seq <= 3; seq++ {
		line, err := r.ReadString('\n')
		if err != nil {
			t.Fatal(err)
		}
		if want := fmt.Sprintf("seq=%d\n", seq); !strings.HasPrefix(line, "data: version=9.9.9 ") || !strings.HasSuffix(line, want) {
			t.Fatalf("event %d: %q", seq, line)
		}
		if blank, _ := r.ReadString('\n'); blank != "\n" {
			t.Fatalf("event %d not ended by a blank line: %q", seq, blank)
		}
	}
	close(s.stopping)
	rest, _ := io.ReadAll(r)
	if !strings.Contains(string(rest), "event: shutdown\ndata: version=9.9.9 ") {
		t.Errorf("the stream ended without the shutdown event: %q", rest)
	}
}
