// Package loadgen sends constant HTTP traffic and counts every failure: the
// witness that a switch drops no request. It only ever targets the URL it is
// given, with a bounded rate and duration.
package loadgen

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"sort"
	"strings"
	"sync"
	"time"
)

// Config is a load run.
type Config struct {
	URL string
	// Rate is requests per second across all workers.
	Rate int
	// Workers send requests concurrently; each keeps its own connections.
	Workers int
	// KeepAlive reuses connections; without it every request opens one.
	KeepAlive bool
	// MaxDuration stops the run even if Stop is never called.
	MaxDuration time.Duration
	Timeout     time.Duration
	// Cookie, if set, is sent with every request (to pin a route's sticky server).
	Cookie string
	// UserRequests, if set, makes each worker a user that keeps its cookies
	// for that many requests, then gives way to a new user.
	UserRequests int
	// Watch is the version whose users are followed: a user answered by it
	// who is later answered by another version counts in Stats.LeftWatched.
	Watch string
}

// Stats counts what happened.
type Stats struct {
	Requests  int
	OK        int // 2xx
	Non2xx    int
	Errors    int // connection errors and timeouts
	ByVersion map[string]int
	// AppErrors counts non-2xx answers from the application itself (it
	// names its version), by version; the rest came from the router.
	AppErrors map[string]int
	// Users is how many users (UserRequests) were simulated; LeftWatched
	// is how many of them the Watch version answered and then another did.
	Users, LeftWatched int
	// Failures holds the first few failures, for the test log.
	Failures []string
	// ErrorTimes is when each connection error happened, so that errors in
	// a known outage (the router itself restarting) can be told apart;
	// RouterNon2xxTimes the same for the router's own non-2xx answers.
	ErrorTimes        []time.Time
	RouterNon2xxTimes []time.Time
}

// ErrorsBetween counts the connection errors from from to to.
func (s Stats) ErrorsBetween(from, to time.Time) int { return countBetween(s.ErrorTimes, from, to) }

// RouterNon2xxBetween counts the router's own non-2xx answers from from to to.
func (s Stats) RouterNon2xxBetween(from, to time.Time) int {
	return countBetween(s.RouterNon2xxTimes, from, to)
}

func countBetween(times []time.Time, from, to time.Time) int {
	n := 0
	for _, t := range times {
		if !t.Before(from) && !t.After(to) {
			n++
		}
	}
	return n
}

// Failed is every request that did not get a 2xx answer.
func (s Stats) Failed() int { return s.Non2xx + s.Errors }

func (s Stats) String() string {
	versions := make([]string, 0, len(s.ByVersion))
	for v, n := range s.ByVersion {
		versions = append(versions, fmt.Sprintf("%s=%d", v, n))
	}
	sort.Strings(versions)
	return fmt.Sprintf("requests=%d ok=%d non2xx=%d errors=%d versions[%s]", s.Requests, s.OK, s.Non2xx, s.Errors, strings.Join(versions, " "))
}

// Run is a load run in progress.
type Run struct {
	cancel context.CancelFunc
	done   chan struct{}
	// finish stops the workers between requests (Finish).
	finish   chan struct{}
	finishMu sync.Once
	mu       sync.Mutex
	stats    Stats
}

// Start begins sending traffic.
func Start(cfg Config) *Run {
	if cfg.Workers <= 0 {
		cfg.Workers = 4
	}
	if cfg.Rate <= 0 {
		cfg.Rate = 100
	}
	if cfg.MaxDuration <= 0 {
		cfg.MaxDuration = 5 * time.Minute
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 10 * time.Second
	}
	ctx, cancel := context.WithTimeout(context.Background(), cfg.MaxDuration)
	r := &Run{cancel: cancel, done: make(chan struct{}), finish: make(chan struct{}), stats: Stats{ByVersion: map[string]int{}, AppErrors: map[string]int{}}}
	interval := time.Duration(int64(time.Second) * int64(cfg.Workers) / int64(cfg.Rate))
	var wg sync.WaitGroup
	for w := 0; w < cfg.Workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			client := &http.Client{Timeout: cfg.Timeout, Transport: &http.Transport{DisableKeepAlives: !cfg.KeepAlive, MaxIdleConnsPerHost: 1}}
			defer client.CloseIdleConnections()
			u := &user{}
			sent := 0
			// Spread the workers over the interval.
			t := time.NewTicker(interval)
			defer t.Stop()
			time.Sleep(interval * time.Duration(w) / time.Duration(cfg.Workers))
			for {
				select {
				case <-ctx.Done():
					return
				case <-r.finish:
					return
				case <-t.C:
				}
				if cfg.UserRequests > 0 && sent%cfg.UserRequests == 0 {
					client.Jar, _ = cookiejar.New(nil)
					u = &user{}
					r.newUser()
				}
				sent++
				req, err := http.NewRequestWithContext(ctx, http.MethodGet, cfg.URL, nil)
				if err != nil {
					return
				}
				if cfg.Cookie != "" {
					req.Header.Set("Cookie", cfg.Cookie)
				}
				resp, err := client.Do(req)
				if ctx.Err() != nil {
					return // the run ended mid-request: not a failure of the target
				}
				r.record(resp, err, u, cfg.Watch)
			}
		}(w)
	}
	go func() { wg.Wait(); close(r.done) }()
	return r
}

// user is one simulated user's view: whether the watched version answered them.
type user struct{ watched, left bool }

func (r *Run) newUser() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.stats.Users++
}

func (r *Run) record(resp *http.Response, err error, u *user, watch string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.stats.Requests++
	if err != nil {
		r.stats.Errors++
		r.stats.ErrorTimes = append(r.stats.ErrorTimes, time.Now())
		if len(r.stats.Failures) < 10 {
			r.stats.Failures = append(r.stats.Failures, time.Now().Format("15:04:05.000")+" "+err.Error())
		}
		return
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	version := resp.Header.Get("X-App-Version")
	if watch != "" && version != "" {
		switch {
		case version == watch:
			u.watched = true
		case u.watched && !u.left:
			u.left = true
			r.stats.LeftWatched++
		}
	}
	if resp.StatusCode/100 == 2 {
		r.stats.OK++
		r.stats.ByVersion[version]++
		return
	}
	r.stats.Non2xx++
	if version != "" {
		r.stats.AppErrors[version]++
	} else {
		r.stats.RouterNon2xxTimes = append(r.stats.RouterNon2xxTimes, time.Now())
	}
	if len(r.stats.Failures) < 10 {
		r.stats.Failures = append(r.stats.Failures, fmt.Sprintf("%s HTTP %d", time.Now().Format("15:04:05.000"), resp.StatusCode))
	}
}

// Snapshot returns the counts so far.
func (r *Run) Snapshot() Stats {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := r.stats
	s.ByVersion = map[string]int{}
	for k, v := range r.stats.ByVersion {
		s.ByVersion[k] = v
	}
	s.AppErrors = map[string]int{}
	for k, v := range r.stats.AppErrors {
		s.AppErrors[k] = v
	}
	s.Failures = append([]string(nil), r.stats.Failures...)
	s.ErrorTimes = append([]time.Time(nil), r.stats.ErrorTimes...)
	s.RouterNon2xxTimes = append([]time.Time(nil), r.stats.RouterNon2xxTimes...)
	return s
}

// Finish ends the run after the requests under way are answered and
// counted, and returns the totals: every request sent is in them, as a
// count the target keeps of its own can be compared with.
func (r *Run) Finish() Stats {
	r.finishMu.Do(func() { close(r.finish) })
	<-r.done
	r.cancel()
	return r.Snapshot()
}

// Stop ends the run and returns the totals.
func (r *Run) Stop() Stats {
	r.cancel()
	<-r.done
	return r.Snapshot()
}
