package main

import (
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"strings"
	"time"
)

// server holds the handlers' state. now and random are fields so that
// tests can control time and chance.
type server struct {
	cfg      config
	hostname string
	start    time.Time
	now      func() time.Time
	random   func() float64 // uniform in [0, 1)
	metrics  *metrics
	// stopping is closed when the server shuts down: event streams end.
	stopping chan struct{}
	// eventEvery is the interval between events on /events.
	eventEvery time.Duration
}

func newServer(cfg config) *server {
	host, err := os.Hostname()
	if err != nil {
		host = "unknown"
	}
	start := time.Now()
	return &server{
		cfg:        cfg,
		hostname:   host,
		start:      start,
		now:        time.Now,
		random:     rand.Float64,
		metrics:    newMetrics(cfg.Version, start, cfg.ErrorTypes),
		stopping:   make(chan struct{}),
		eventEvery: 200 * time.Millisecond,
	}
}

// handler returns the complete HTTP handler: routes plus the version header.
func (s *server) handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", s.handleRoot)
	mux.HandleFunc("GET /healthz", s.handleHealth)
	mux.HandleFunc("GET /metrics", s.handleMetrics)
	mux.HandleFunc("GET /events", s.handleEvents)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-App-Version", s.cfg.Version)
		mux.ServeHTTP(w, r)
	})
}

// handleRoot answers "version=... host=..." after LATENCY, fails with 500
// for a fraction ERROR_RATE of requests and records the ERROR_TYPES drawn.
func (s *server) handleRoot(w http.ResponseWriter, r *http.Request) {
	begin := s.now()

	if s.cfg.Latency > 0 {
		t := time.NewTimer(s.cfg.Latency)
		select {
		case <-t.C:
		case <-r.Context().Done():
			t.Stop()
		}
	}

	var drawn []string
	for _, et := range s.cfg.ErrorTypes {
		if et.Probability > 0 && s.random() < et.Probability {
			drawn = append(drawn, et.Name)
		}
	}

	code := http.StatusOK
	if s.cfg.ErrorRate > 0 && s.random() < s.cfg.ErrorRate {
		code = http.StatusInternalServerError
	}

	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	if len(drawn) > 0 {
		w.Header().Set("X-App-Errors", strings.Join(drawn, ","))
	}
	w.WriteHeader(code)
	if code == http.StatusOK {
		fmt.Fprintf(w, "version=%s host=%s\n", s.cfg.Version, s.hostname)
	} else {
		fmt.Fprintf(w, "error version=%s host=%s\n", s.cfg.Version, s.hostname)
	}

	s.metrics.observe(code, s.now().Sub(begin), drawn)
}

// healthy reports whether /healthz should answer 200 now.
func (s *server) healthy() bool {
	if s.cfg.HealthFail {
		return false
	}
	return s.now().Sub(s.start) >= s.cfg.HealthDelay
}

func (s *server) handleHealth(w http.ResponseWriter, r *http.Request) {
	// A slow health endpoint: every answer, pass or fail, comes after HEALTH_LATENCY.
	if s.cfg.HealthLatency > 0 {
		t := time.NewTimer(s.cfg.HealthLatency)
		select {
		case <-t.C:
		case <-r.Context().Done():
			t.Stop()
			return
		}
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	if !s.healthy() {
		w.WriteHeader(http.StatusServiceUnavailable)
		fmt.Fprintln(w, "fail")
		return
	}
	fmt.Fprintln(w, "ok")
}

func (s *server) handleMetrics(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
	_ = s.metrics.write(w)
}

// handleEvents streams server-sent events, one every 200 ms, each naming
// the version, host and a sequence number, until the client goes or the
// server shuts down: then a last "event: shutdown" ends the stream, so a
// client sees that its server was stopped (not that a proxy cut it).
func (s *server) handleEvents(w http.ResponseWriter, r *http.Request) {
	flusher, ok := w.(http.Flusher)
	if !ok {
		http.Error(w, "streaming unsupported", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	w.WriteHeader(http.StatusOK)
	flusher.Flush()
	t := time.NewTicker(s.eventEvery)
	defer t.Stop()
	for seq := 1; ; seq++ {
		select {
		case <-r.Context().Done():
			return
		case <-s.stopping:
			fmt.Fprintf(w, "event: shutdown\ndata: version=%s host=%s\n\n", s.cfg.Version, s.hostname)
			flusher.Flush()
			return
		case <-t.C:
		}
		if _, err := fmt.Fprintf(w, "data: version=%s host=%s seq=%d\n\n", s.cfg.Version, s.hostname, seq); err != nil {
			return
		}
		flusher.Flush()
	}
}
