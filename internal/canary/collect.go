package canary

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strconv"
	"sync"
	"time"

	"github.com/releasekit/terraform-provider-release/internal/analysis"
	"github.com/releasekit/terraform-provider-release/internal/naming"
	"github.com/releasekit/terraform-provider-release/internal/probe"
	"github.com/releasekit/terraform-provider-release/internal/router"
)

// Target is the canary being analysed.
type Target struct {
	Environment, Service           string
	CanaryRevision, StableRevision int
	CanaryDigest, StableDigest     string
	Baseline                       bool // baseline containers (stable version, track=baseline) run beside the canary
	Interval                       time.Duration
}

// RouterScraper returns the raw counters of the route's backend, one scrape,
// with the worker that served them when known.
type RouterScraper func(ctx context.Context) (router.ServerScrape, error)

// RequestTally counts the requests the canary's route logs (see
// router.TallySession), from when it was opened until it is closed.
type RequestTally interface {
	// Addr is where the canary's route must log its requests.
	Addr() string
	Read(ctx context.Context) (probe.Tally, error)
	Close()
}

// Collector samples one canary for its analysis: requests, 5xx and latency
// from the router, error types and query values from Prometheus. Not safe
// for concurrent use.
type Collector struct {
	Policy     Policy
	Target     Target
	Router     RouterScraper
	Prometheus Querier // nil when the policy has no prometheus
	// Tally, when set, counts every request of the route, across reloads,
	// and the counts come from it; the router's counters are the fallback
	// (they miss what old workers serve after a reload), and a sample that
	// comes from them says so (Sample.CountsNote).
	Tally RequestTally
	// NoTally says why there is no Tally ("" when there is one, or none
	// was tried): the samples' note gives it.
	NoTally string

	// Stop, when set, is called by Close (the provider ends the router's
	// calls of ScrapeNow with it).
	Stop func()

	begun bool
	// mu guards servers and counting: ScrapeNow comes from other goroutines.
	mu       sync.Mutex
	counting bool // Begin took the counters' zero point
	// tallyAtBegin is the tally's counts of the route's backend at Begin,
	// droppedAtBegin its drops then; tallyLost says why the tally's counts
	// stopped being used ("" while they are).
	tallyAtBegin   map[string]probe.ServerTally
	droppedAtBegin int64
	tallyLost      string
	// stableBefore is stable's requests the router counted before Begin.
	stableBefore float64
	// servers adds up the router's counters across its reloads.
	servers router.Accumulator
	// serversAtBegin and stableErrorsAtBegin are the zero points of counts
	// that started before the canary (stable's).
	serversAtBegin      map[string]router.ServerCounts
	stableErrorsAtBegin map[string]float64
	// canaryErrors, baselineErrors and stableErrors add up the error
	// counter per series, across resets, when Prometheus is a SeriesQuerier.
	canaryErrors, baselineErrors, stableErrors counterSet
}

// Begin takes the first scrape: the zero point for every count.
func (c *Collector) Begin(ctx context.Context) error {
	if err := c.check(); err != nil {
		return err
	}
	scrape, err := c.Router(ctx)
	if err != nil {
		return fmt.Errorf("the router's counters: %w", err)
	}
	c.mu.Lock()
	c.servers = router.Accumulator{}
	c.servers.AddScrape(scrape)
	c.serversAtBegin = c.servers.Totals()
	c.counting = true
	c.mu.Unlock()
	c.stableBefore = 0
	for name, counts := range scrape.Servers {
		if server, ok := naming.ParseServerName(name); ok && server.Track == naming.TrackStable {
			c.stableBefore += counts.Requests
		}
	}
	c.tallyLost, c.tallyAtBegin = "", nil
	switch {
	case c.Tally != nil:
		t, err := c.Tally.Read(ctx)
		if err != nil {
			c.tallyLost = err.Error()
			break
		}
		c.tallyAtBegin, c.droppedAtBegin = t.Servers[c.backend()], t.Dropped
	case c.NoTally != "":
		c.tallyLost = c.NoTally
	default:
		c.tallyLost = "no request log was set up"
	}
	c.stableErrorsAtBegin = nil
	c.canaryErrors, c.baselineErrors, c.stableErrors = counterSet{}, counterSet{}, counterSet{}
	if sq, ok := c.Prometheus.(SeriesQuerier); ok && c.Policy.Analysis.Errors != nil {
		// Stable's zero point, per series.
		series, err := sq.Series(ctx, c.Policy.Analysis.Errors.Metric+c.stableSelector())
		if err != nil {
			return fmt.Errorf("the error types: %w", err)
		}
		c.stableErrors.add(series, c.Policy.Analysis.Errors.Label, false)
	} else if c.Policy.Analysis.Errors != nil && !c.Target.Baseline {
		// Without a baseline, stable's errors since now are the comparison.
		if c.stableErrorsAtBegin, err = c.errorTypes(ctx, c.stableSelector()); err != nil {
			return err
		}
	}
	c.begun = true
	return nil
}

// Sample returns the counts since Begin and the queries' values now.
func (c *Collector) Sample(ctx context.Context) (analysis.Sample, error) {
	if !c.begun {
		return analysis.Sample{}, errors.New("the canary's counts were sampled before they began")
	}
	scrape, err := c.Router(ctx)
	if err != nil {
		return analysis.Sample{}, fmt.Errorf("the router's counters: %w", err)
	}
	c.mu.Lock()
	c.servers.AddScrape(scrape)
	c.mu.Unlock()
	s := analysis.Sample{Values: map[string]float64{}, StableBefore: int(math.Round(c.stableBefore))}
	c.counts(ctx, &s)
	if c.Policy.Analysis.Errors != nil {
		if s.ErrorTypes, err = c.errorTypeCounts(ctx); err != nil {
			return analysis.Sample{}, err
		}
	}
	for _, q := range c.Policy.Analysis.Queries {
		text, err := RenderQuery(q.Query, c.queryData())
		if err != nil {
			return analysis.Sample{}, fmt.Errorf("the query %s: %w", q.Name, err)
		}
		v, ok, err := Scalar(ctx, c.Prometheus, text)
		if err != nil {
			return analysis.Sample{}, fmt.Errorf("the query %s: %w", q.Name, err)
		}
		if ok {
			s.Values[q.Name] = v
		}
	}
	return s, nil
}

// RequestLog is where the canary's route must log its requests for the
// tally; "" without one (the route then logs nothing).
func (c *Collector) RequestLog() string {
	if c.Tally == nil {
		return ""
	}
	return c.Tally.Addr()
}

// ScrapeNow reads the router's counters between samples: right before a
// reload, so that the counters' fallback loses only what old workers
// answer after it. Safe to call from any goroutine; failures are left to
// the next sample.
func (c *Collector) ScrapeNow(ctx context.Context) {
	c.mu.Lock()
	counting := c.counting
	c.mu.Unlock()
	if !counting {
		return
	}
	scrape, err := c.Router(ctx)
	if err != nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.servers.AddScrape(scrape)
}

// Close ends the tally. The counts end with it; the route may still log
// to its address until the route without the canary replaces it.
func (c *Collector) Close(context.Context) error {
	if c.Stop != nil {
		c.Stop()
	}
	if c.Tally != nil {
		c.Tally.Close()
	}
	return nil
}

// check finds what would make every sample fail, before the first.
func (c *Collector) check() error {
	a := c.Policy.Analysis
	if c.Router == nil {
		return errors.New("the canary's analysis has no router to read requests from")
	}
	if (a.Errors != nil || len(a.Queries) > 0) && c.Prometheus == nil {
		return errors.New("the canary policy reads errors or queries from Prometheus, but no Prometheus client was given")
	}
	// The metric and label are written into PromQL as they are.
	if e := a.Errors; e != nil && (!metricPattern.MatchString(e.Metric) || !labelPattern.MatchString(e.Label)) {
		return fmt.Errorf("the error metric %q or its label %q is not a Prometheus name", e.Metric, e.Label)
	}
	for _, q := range a.Queries {
		if _, err := RenderQuery(q.Query, c.queryData()); err != nil {
			return fmt.Errorf("the query %s: %w", q.Name, err)
		}
	}
	return nil
}

func (c *Collector) queryData() QueryData {
	interval := c.Target.Interval
	if interval <= 0 {
		interval = time.Duration(c.Policy.Analysis.Interval)
	}
	return QueryData{
		Environment: c.Target.Environment, Service: c.Target.Service,
		Track: string(naming.TrackCanary), Digest: c.Target.CanaryDigest,
		CanaryDigest: c.Target.CanaryDigest, StableDigest: c.Target.StableDigest,
		Interval: Format(interval),
	}
}

func (c *Collector) backend() string {
	return router.BackendName(c.Target.Environment, c.Target.Service)
}

// counts fills the sample's request counts since Begin: from the tally
// while it answers, else from the router's counters, with a note saying
// what those may miss. Without a baseline, stable is what the canary is
// compared with.
func (c *Collector) counts(ctx context.Context, s *analysis.Sample) {
	if c.tallyLost == "" {
		t, err := c.Tally.Read(ctx)
		if err == nil {
			c.tallyCounts(t, s)
			return
		}
		c.tallyLost = err.Error()
	}
	var canarySum, baselineSum, stableSum trackSum
	c.mu.Lock()
	totals, reloads := c.servers.Totals(), c.servers.Reloads
	c.mu.Unlock()
	for name, total := range totals {
		// Servers first seen after Begin have no zero point: all of theirs counts.
		at := c.serversAtBegin[name]
		since := router.ServerCounts{Requests: total.Requests - at.Requests, Errors: total.Errors - at.Errors, MeanLatency: total.MeanLatency}
		if sum := c.trackOf(name, &canarySum, &baselineSum, &stableSum); sum != nil {
			sum.add(since)
		}
	}
	s.Canary, s.Baseline, s.Stable = canarySum.counts(), baselineSum.counts(), stableSum.counts()
	if !c.Target.Baseline {
		s.Baseline = s.Stable
	}
	s.CountsNote = "counted from the router's counters (" + c.tallyLost + ")"
	if n := reloads; n > 0 {
		s.CountsNote += fmt.Sprintf("; the router reloaded at least %d times since the canary began, and what its old workers served after each reload is not counted", n)
	}
}

// trackOf is the sum a server's counts go to, nil for none.
func (c *Collector) trackOf(name string, canary, baseline, stable *trackSum) *trackSum {
	server, ok := naming.ParseServerName(name)
	switch {
	case !ok:
		return nil
	case server.Track == naming.TrackCanary:
		return canary
	case server.Track == naming.TrackBaseline && c.Target.Baseline:
		return baseline
	case server.Track == naming.TrackStable:
		return stable
	}
	return nil
}

// tallyCounts fills the sample from the request log's tally.
func (c *Collector) tallyCounts(t probe.Tally, s *analysis.Sample) {
	var canarySum, baselineSum, stableSum trackSum
	for name, now := range t.Servers[c.backend()] {
		at := c.tallyAtBegin[name]
		if sum := c.trackOf(name, &canarySum, &baselineSum, &stableSum); sum != nil {
			sum.addTally(now, at)
		}
	}
	s.Canary, s.Baseline, s.Stable = canarySum.counts(), baselineSum.counts(), stableSum.counts()
	if !c.Target.Baseline {
		s.Baseline = s.Stable
	}
	switch dropped := t.Dropped - c.droppedAtBegin; {
	case t.Dropped < 0 || c.droppedAtBegin < 0:
		s.CountsNote = "counted from the router's request log, whose losses cannot be read: counts may be low"
	case dropped > 0:
		s.CountsNote = fmt.Sprintf("counted from the router's request log, which lost %d lines (the reader fell behind): counts may be low by up to %d", dropped, dropped)
	}
}

type trackSum struct {
	requests, errors float64
	// latencies counts requests by response time (analysis.LatencyBounds);
	// nil when unknown.
	latencies []int
	// latencyWeight is the requests of the servers with a latency, latencyTotal
	// the sum of their latencies weighted by it.
	latencyWeight, latencyTotal float64
}

func (t *trackSum) add(s router.ServerCounts) {
	t.requests += s.Requests
	t.errors += s.Errors
	if s.Requests > 0 && !math.IsNaN(s.MeanLatency) {
		t.latencyWeight += s.Requests
		t.latencyTotal += s.Requests * s.MeanLatency
	}
}

// addTally adds a server's tally since at.
func (t *trackSum) addTally(now, at probe.ServerTally) {
	requests := float64(now.Requests - at.Requests)
	t.requests += requests
	t.errors += float64(now.Errors - at.Errors)
	if requests > 0 {
		t.latencyWeight += requests
		t.latencyTotal += float64(now.LatencyMs-at.LatencyMs) / 1000
	}
	if len(now.Buckets) != len(analysis.LatencyBounds)+1 {
		return // a tally with other buckets
	}
	if t.latencies == nil {
		t.latencies = make([]int, len(now.Buckets))
	}
	for i, n := range now.Buckets {
		if i < len(at.Buckets) {
			n -= at.Buckets[i]
		}
		t.latencies[i] += int(n)
	}
}

func (t trackSum) counts() analysis.Counts {
	c := analysis.Counts{Requests: int(math.Round(t.requests)), Errors: int(math.Round(t.errors)), MeanLatency: math.NaN(), Latencies: t.latencies}
	if t.latencyWeight > 0 {
		c.MeanLatency = t.latencyTotal / t.latencyWeight
	}
	return c
}

// errorTypeCounts reads each track's error counter by type. Canary and
// baseline containers are new with the canary, so their counters count
// from zero; stable's started long before.
func (c *Collector) errorTypeCounts(ctx context.Context) (map[string]analysis.TypeCounts, error) {
	if sq, ok := c.Prometheus.(SeriesQuerier); ok {
		return c.errorTypeCountsBySeries(ctx, sq)
	}
	canary, err := c.errorTypes(ctx, c.selector(c.Target.CanaryRevision, ""))
	if err != nil {
		return nil, err
	}
	stable, err := c.errorTypes(ctx, c.stableSelector())
	if err != nil {
		return nil, err
	}
	var baseline map[string]float64
	if c.Target.Baseline {
		if baseline, err = c.errorTypes(ctx, c.selector(c.Target.StableRevision, `,track="baseline"`)); err != nil {
			return nil, err
		}
	} else {
		baseline = map[string]float64{}
		for t, v := range stable {
			baseline[t] = math.Max(0, v-c.stableErrorsAtBegin[t]) // a restart resets the counter
		}
	}
	out := map[string]analysis.TypeCounts{}
	for _, side := range []map[string]float64{canary, baseline, stable} {
		for t := range side {
			out[t] = analysis.TypeCounts{Canary: count(canary[t]), Baseline: count(baseline[t]), Stable: count(stable[t])}
		}
	}
	return out, nil
}

func count(v float64) int { return int(math.Round(v)) }

// errorTypes sums the error counter of the selected containers by type.
// Series without the type label are counted under "(no <label>)".
func (c *Collector) errorTypes(ctx context.Context, selector string) (map[string]float64, error) {
	e := c.Policy.Analysis.Errors
	query := fmt.Sprintf("sum by (%s) (%s%s)", e.Label, e.Metric, selector)
	byType, err := c.Prometheus.Vector(ctx, query, e.Label)
	if err != nil {
		return nil, fmt.Errorf("the error types: %w", err)
	}
	if v, ok := byType[""]; ok {
		delete(byType, "")
		byType["(no "+e.Label+")"] = v
	}
	return byType, nil
}

// stableSelector leaves out the baseline but not track="canary": after a
// promotion, the stable containers are the former canary's.
func (c *Collector) stableSelector() string {
	return c.selector(c.Target.StableRevision, `,track!="baseline"`)
}

func (c *Collector) selector(revision int, extra string) string {
	return fmt.Sprintf("{environment=%s,service=%s,revision=%s%s}",
		promString(c.Target.Environment), promString(c.Target.Service), promString(strconv.Itoa(revision)), extra)
}

// promString quotes a PromQL string literal: PromQL reads double-quoted
// strings with Go's escapes, which strconv.Quote writes.
func promString(s string) string { return strconv.Quote(s) }
