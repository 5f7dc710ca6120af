package rollouttest

import (
	"context"
	"errors"
	"math"
	"math/rand/v2"
	"sort"
	"strconv"
	"time"

	"github.com/releasekit/terraform-provider-release/internal/analysis"
	"github.com/releasekit/terraform-provider-release/internal/canary"
	"github.com/releasekit/terraform-provider-release/internal/naming"
	"github.com/releasekit/terraform-provider-release/internal/probe"
	"github.com/releasekit/terraform-provider-release/internal/rollout"
	"github.com/releasekit/terraform-provider-release/internal/router"
)

// Scenario is the traffic a simulated canary gets and how it is measured.
type Scenario struct {
	// Rate is the service's requests per second, every track together:
	// each request goes to a server with the probability of its weight in
	// the route the router has (Routes), so the canary gets its step's
	// weight, a baseline as much, stable the rest.
	Rate float64
	// ErrorRate is the 5xx rate of stable and baseline, CanaryErrorRate the canary's.
	ErrorRate, CanaryErrorRate float64
	// Incident multiplies every track's 5xx rate by Factor while the canary
	// has Weight percent of the traffic (one step).
	Incident *Incident
	// KnownTypes are application error types on every track; NewTypes
	// appear only on the canary. Both are read from Prometheus.
	KnownTypes, NewTypes []ErrorType
	// Scrape is how often Prometheus scrapes the containers' error counters:
	// a sample sees the counts of the last scrape (at a random phase). 0:
	// the counts as they are at the look.
	Scrape time.Duration
	// Latency, when set, gives response times, counted into
	// analysis.LatencyBounds (Counts.Latencies) and averaged (MeanLatency).
	Latency *Latency
	// StableBefore is how long stable served all of Rate before the canary
	// began: Sample.StableBefore is Rate × StableBefore requests, and
	// stable's known error types have that exposure's counts already.
	StableBefore time.Duration
	// ViaCollector samples through the real canary.Collector, reading
	// per-server counters (RouterScraper) the way HAProxy keeps them;
	// error types and latency buckets are then not read.
	ViaCollector bool
	// ViaTally gives that Collector a request tally, as the provider does
	// when the router can run one: every request the servers answered,
	// whatever the reloads (the route's request log; see router.OpenTally).
	// Without it the Collector reads the counters, with the worker that
	// served each scrape.
	ViaTally bool
	// Reloads restarts every server's counters at zero (a new HAProxy
	// worker) at every route applied (every step change) and at
	// ExtraReload. The split points of the traffic are the same with
	// or without it, so the same seed draws the same requests.
	Reloads bool
	// ExtraReload is another environment's reload of the shared router: at
	// a uniformly random time during the canary's planned pauses.
	ExtraReload bool
}

// Incident raises every track's 5xx rate during one step.
type Incident struct {
	Weight int
	Factor float64
}

// ErrorType is an application error type: Rate is its share of stable's
// and baseline's requests, CanaryRate of the canary's.
type ErrorType struct {
	Name             string
	Rate, CanaryRate float64
}

// Latency is a lognormal response time per track, in seconds.
type Latency struct {
	Median, Sigma             float64
	CanaryMedian, CanarySigma float64
}

// latencyModel is one track's response-time distribution, precomputed.
type latencyModel struct {
	bucket     []float64 // P(bucket i | not in buckets before i)
	mean, sdev float64
}

func newLatencyModel(median, sigma float64) *latencyModel {
	m := &latencyModel{bucket: make([]float64, len(analysis.LatencyBounds)+1)}
	prev, left := 0.0, 1.0
	for i, b := range analysis.LatencyBounds {
		cdf := 0.5 * math.Erfc(-(math.Log(b)-math.Log(median))/(sigma*math.Sqrt2))
		if left > 0 {
			m.bucket[i] = math.Min(1, (cdf-prev)/left)
		}
		left -= cdf - prev
		prev = cdf
	}
	m.bucket[len(analysis.LatencyBounds)] = 1
	m.mean = median * math.Exp(sigma*sigma/2)
	m.sdev = m.mean * math.Sqrt(math.Exp(sigma*sigma)-1)
	return m
}

// counts are one server's counts.
type counts struct {
	requests, errors int
	latencies        []int
	latencySum       float64
	types            []int
}

func (c *counts) add(o *counts) {
	c.requests += o.requests
	c.errors += o.errors
	c.latencySum += o.latencySum
	for i, v := range o.latencies {
		c.latencies[i] += v
	}
	for i, v := range o.types {
		c.types[i] += v
	}
}

type server struct {
	name  string
	track naming.Track
	share float64
	// total since the canary's metrics were opened, atBegin at Begin,
	// worker since the router's last reload, visible the error types at
	// Prometheus's last scrape.
	total, atBegin, worker counts
	visible                []int
	// visibleAtBegin is visible at Begin: stable's zero point as Prometheus had it.
	visibleAtBegin []int
	// served is total minus atBegin at the last sample.
	served struct{ requests, errors int }
	// meanLatency is the mean of the last interval with requests (HAProxy's average).
	meanLatency float64
}

// Traffic generates a scenario's requests as the fake clock moves and the
// routes change, and serves them as a rollout.MetricsSource (and its
// CanaryMetrics, or a canary.Collector with Scenario.ViaCollector). One
// Traffic serves one canary. Not safe for concurrent use: the rollout
// loop samples from one goroutine.
type Traffic struct {
	Scenario Scenario
	routes   *Routes
	clock    *Clock
	rng      *rand.Rand // requests
	events   *rand.Rand // scrape phase, reload time: apart, so they leave the requests' draws alone

	types        []ErrorType // known, then new
	known        int
	latency      map[naming.Track]*latencyModel
	target       canary.Target
	opened       bool
	begun        bool
	last         time.Duration // since Epoch
	nextScrape   time.Duration
	extraReload  time.Duration // -1: none left
	servers      []*server
	byName       map[string]*server
	stableBefore int
	beforeTypes  []int // stable's counts of each type before the canary
	reloads      int
	lastSample   analysis.Sample
	samples      int
	incident     bool
}

// NewTraffic is a scenario's traffic over routes, drawn from seed.
func NewTraffic(sc Scenario, seed uint64, routes *Routes, clk *Clock) *Traffic {
	t := &Traffic{Scenario: sc, routes: routes, clock: clk,
		rng:    rand.New(rand.NewPCG(seed, 0x5eed0001)),
		events: rand.New(rand.NewPCG(seed, 0x5eed0002)),
		byName: map[string]*server{}, extraReload: -1}
	t.types = append(append(t.types, sc.KnownTypes...), sc.NewTypes...)
	t.known = len(sc.KnownTypes)
	if l := sc.Latency; l != nil {
		base := newLatencyModel(l.Median, l.Sigma)
		t.latency = map[naming.Track]*latencyModel{naming.TrackStable: base, naming.TrackBaseline: base,
			naming.TrackCanary: newLatencyModel(l.CanaryMedian, l.CanarySigma)}
	}
	routes.OnApply = func(string, map[string][]byte) { t.onApply() }
	return t
}

func (t *Traffic) now() time.Duration { return t.clock.Now().Sub(Epoch) }

// Open starts the traffic's canary: rollout.MetricsSource.
func (t *Traffic) Open(_ context.Context, p canary.Policy, target canary.Target, _ rollout.RouterRef) (rollout.CanaryMetrics, error) {
	if t.opened {
		return nil, errors.New("a Traffic serves one canary")
	}
	t.opened, t.target, t.last = true, target, t.now()
	if t.Scenario.Scrape > 0 {
		t.nextScrape = t.last + time.Duration(t.events.Int64N(int64(t.Scenario.Scrape))) + 1
	}
	// Drawn whether or not it happens, so both variants draw alike.
	at := time.Duration(t.events.Int64N(int64(max(p.Shortest(), time.Second))))
	if t.Scenario.ExtraReload {
		t.extraReload = t.last + at
	}
	t.stableBefore = int(t.Scenario.Rate * t.Scenario.StableBefore.Seconds())
	t.beforeTypes = make([]int, len(t.types))
	for i, et := range t.types[:t.known] {
		t.beforeTypes[i] = Poisson(t.rng, float64(t.stableBefore)*et.Rate)
	}
	t.refresh()
	if t.Scenario.ViaCollector {
		if p.Analysis.Errors != nil || len(p.Analysis.Queries) > 0 {
			return nil, errors.New("rollouttest: a Traffic via the Collector reads no Prometheus")
		}
		c := &canary.Collector{Policy: p, Target: target, Router: t.Scrape}
		if t.Scenario.ViaTally {
			c.Tally = tally{t}
		}
		return &collected{Collector: c, t: t}, nil
	}
	return t, nil
}

// onApply is the router loading a route: the traffic so far went by the
// old one; a reload restarts the per-server counters.
func (t *Traffic) onApply() {
	if !t.opened {
		return
	}
	t.advance(t.now())
	if t.Scenario.Reloads {
		t.reload()
	}
	t.refresh()
}

func (t *Traffic) reload() {
	t.reloads++
	for _, s := range t.servers {
		s.worker = t.zero()
	}
}

func (t *Traffic) zero() counts {
	c := counts{types: make([]int, len(t.types))}
	if t.latency != nil {
		c.latencies = make([]int, len(analysis.LatencyBounds)+1)
	}
	return c
}

// refresh reads the split the router has now.
func (t *Traffic) refresh() {
	servers := t.routes.Servers(t.target.Environment, t.target.Service)
	total := 0
	for _, s := range servers {
		if !s.Drain {
			total += s.Weight
		}
	}
	for _, s := range t.servers {
		s.share = 0
	}
	for _, rs := range servers {
		s, ok := t.byName[rs.Name]
		if !ok {
			sv, ok := naming.ParseServerName(rs.Name)
			if !ok {
				continue
			}
			s = &server{name: rs.Name, track: sv.Track, total: t.zero(), atBegin: t.zero(), worker: t.zero(),
				visible: make([]int, len(t.types)), meanLatency: math.NaN()}
			t.byName[rs.Name] = s
			t.servers = append(t.servers, s)
		}
		if !rs.Drain && total > 0 {
			s.share = float64(rs.Weight) / float64(total)
		}
	}
	t.incident = false
	if inc := t.Scenario.Incident; inc != nil {
		c := 0.0
		for _, s := range t.servers {
			if s.track == naming.TrackCanary {
				c += s.share
			}
		}
		t.incident = int(math.Round(100*c)) == inc.Weight
	}
}

// advance generates the requests up to now, split at scrapes and reloads.
func (t *Traffic) advance(to time.Duration) {
	for t.last < to {
		next := to
		if t.Scenario.Scrape > 0 && t.nextScrape < next {
			next = t.nextScrape
		}
		if t.extraReload >= 0 && t.extraReload < next {
			next = t.extraReload
		}
		t.generate((next - t.last).Seconds())
		t.last = next
		if t.Scenario.Scrape > 0 && next == t.nextScrape {
			t.scrapeTypes()
			t.nextScrape += t.Scenario.Scrape
		}
		if next == t.extraReload {
			t.extraReload = -1
			if t.Scenario.Reloads {
				t.reload()
			}
		}
	}
}

func (t *Traffic) scrapeTypes() {
	for _, s := range t.servers {
		copy(s.visible, s.total.types)
	}
}

// generate draws seconds of requests over the servers.
func (t *Traffic) generate(seconds float64) {
	n := Poisson(t.rng, t.Scenario.Rate*seconds)
	left := 1.0
	var c counts
	for _, s := range t.servers {
		if n <= 0 || left <= 0 {
			break
		}
		if s.share <= 0 {
			continue
		}
		k := Binomial(t.rng, n, math.Min(1, s.share/left))
		n -= k
		left -= s.share
		if k == 0 {
			continue
		}
		c = t.zero()
		t.serve(s, k, &c)
		s.total.add(&c)
		s.worker.add(&c)
	}
}

// serve draws what k requests to s did.
func (t *Traffic) serve(s *server, k int, c *counts) {
	sc := &t.Scenario
	c.requests = k
	rate := sc.ErrorRate
	if s.track == naming.TrackCanary {
		rate = sc.CanaryErrorRate
	}
	if t.incident {
		rate = math.Min(1, rate*sc.Incident.Factor)
	}
	c.errors = Binomial(t.rng, k, rate)
	for i, et := range t.types {
		r := et.Rate
		if s.track == naming.TrackCanary {
			r = et.CanaryRate
		} else if i >= t.known {
			continue // new types appear only on the canary
		}
		c.types[i] = Binomial(t.rng, k, r)
	}
	if m := t.latency[s.track]; m != nil {
		left := k
		for i, p := range m.bucket {
			if left == 0 {
				break
			}
			d := Binomial(t.rng, left, p)
			c.latencies[i] = d
			left -= d
		}
		mean := m.mean + m.sdev/math.Sqrt(float64(k))*t.rng.NormFloat64()
		c.latencySum = mean * float64(k)
		s.meanLatency = mean
	}
}

// Begin is the zero point of the counts: rollout.CanaryMetrics.
func (t *Traffic) Begin(context.Context) error {
	t.advance(t.now())
	for _, s := range t.servers {
		s.atBegin = t.zero()
		s.atBegin.add(&s.total)
		s.visibleAtBegin = append([]int(nil), t.visibleOf(s)...)
	}
	t.begun = true
	return nil
}

// Sample is the counts since Begin: rollout.CanaryMetrics.
func (t *Traffic) Sample(context.Context) (analysis.Sample, error) {
	if !t.begun {
		return analysis.Sample{}, errors.New("sampled before Begin")
	}
	t.advance(t.now())
	canaryC, baselineC, stableC := t.zero(), t.zero(), t.zero()
	cv, bv, sv := make([]int, len(t.types)), make([]int, len(t.types)), make([]int, len(t.types))
	visible := t.visibleOf
	for _, s := range t.servers {
		since := t.zero()
		since.add(&s.total)
		since.requests -= s.atBegin.requests
		since.errors -= s.atBegin.errors
		since.latencySum -= s.atBegin.latencySum
		for i := range since.latencies {
			since.latencies[i] -= s.atBegin.latencies[i]
		}
		for i := range since.types {
			since.types[i] -= s.atBegin.types[i]
		}
		v := visible(s)
		switch s.track {
		case naming.TrackCanary:
			canaryC.add(&since)
			addInts(cv, v, nil)
		case naming.TrackBaseline:
			baselineC.add(&since)
			addInts(bv, v, nil)
		default:
			stableC.add(&since)
			addInts(sv, v, s.visibleAtBegin) // the comparison counts since the canary began
		}
	}
	out := analysis.Sample{Canary: t.counts(&canaryC), Stable: t.counts(&stableC), StableBefore: t.stableBefore}
	if t.target.Baseline {
		out.Baseline = t.counts(&baselineC)
	} else {
		out.Baseline, bv = out.Stable, sv
	}
	if len(t.types) > 0 {
		out.ErrorTypes = make(map[string]analysis.TypeCounts, len(t.types))
		for i, et := range t.types {
			// Stable's counter as Prometheus has it: since the container started.
			stable := t.beforeTypes[i]
			for _, s := range t.servers {
				if s.track == naming.TrackStable {
					stable += visible(s)[i]
				}
			}
			tc := analysis.TypeCounts{Canary: cv[i], Baseline: bv[i], Stable: stable}
			if tc.Canary+tc.Baseline+tc.Stable > 0 { // a labelled series exists once counted
				out.ErrorTypes[et.Name] = tc
			}
		}
	}
	t.lastSample = out
	t.samples++
	t.snapshotServed()
	return out, nil
}

func (t *Traffic) snapshotServed() {
	for _, s := range t.servers {
		s.served.requests = s.total.requests - s.atBegin.requests
		s.served.errors = s.total.errors - s.atBegin.errors
	}
}

// visibleOf is a server's error-type counts as Prometheus has them now.
func (t *Traffic) visibleOf(s *server) []int {
	if t.Scenario.Scrape > 0 {
		return s.visible
	}
	return s.total.types
}

// addInts adds v minus zero (if given) to sum.
func addInts(sum, v, zero []int) {
	for i := range sum {
		sum[i] += v[i]
		if zero != nil {
			sum[i] -= zero[i]
		}
	}
}

func (t *Traffic) counts(c *counts) analysis.Counts {
	out := analysis.Counts{Requests: c.requests, Errors: c.errors, MeanLatency: math.NaN(), Latencies: c.latencies}
	if c.requests > 0 && t.latency != nil {
		out.MeanLatency = c.latencySum / float64(c.requests)
	}
	return out
}

// Scrape is the router's per-server counters now, since the last reload:
// a canary.RouterScraper.
func (t *Traffic) Scrape(context.Context) (router.ServerScrape, error) {
	t.advance(t.now())
	out := make(map[string]router.ServerCounts, len(t.servers))
	for _, s := range t.servers {
		out[s.name] = router.ServerCounts{Requests: float64(s.worker.requests), Errors: float64(s.worker.errors), MeanLatency: s.meanLatency}
	}
	return router.ServerScrape{Worker: strconv.Itoa(t.reloads), Servers: out}, nil
}

// tally is the route's request log, counted: every request each server
// answered since the metrics were opened, whatever the reloads.
type tally struct{ t *Traffic }

func (tally) Addr() string { return "127.0.0.1:1" }
func (tally) Close()       {}

func (ta tally) Read(context.Context) (probe.Tally, error) {
	t := ta.t
	t.advance(t.now())
	servers := map[string]probe.ServerTally{}
	for _, s := range t.servers {
		st := probe.ServerTally{Requests: int64(s.total.requests), Errors: int64(s.total.errors), LatencyMs: int64(s.total.latencySum * 1000)}
		for _, v := range s.total.latencies {
			st.Buckets = append(st.Buckets, int64(v))
		}
		servers[s.name] = st
	}
	return probe.Tally{Dropped: 0, Servers: map[string]map[string]probe.ServerTally{router.BackendName(t.target.Environment, t.target.Service): servers}}, nil
}

// LastSample is the sample the loop judged last (at a decision, the deciding one).
func (t *Traffic) LastSample() analysis.Sample { return t.lastSample }

// Samples is how many samples the loop took.
func (t *Traffic) Samples() int { return t.samples }

// Reloads is how many times the router's counters restarted.
func (t *Traffic) Reloads() int { return t.reloads }

// Served is what the canary and its comparison (baseline, or stable
// without one) served since Begin, up to the last sample: the truth a
// collector's counts are measured against.
func (t *Traffic) Served() (canaryC, comparison analysis.Counts) {
	cmp := naming.TrackStable
	if t.target.Baseline {
		cmp = naming.TrackBaseline
	}
	names := make([]string, 0, len(t.servers))
	for _, s := range t.servers {
		names = append(names, s.name)
	}
	sort.Strings(names)
	for _, n := range names {
		s := t.byName[n]
		switch s.track {
		case naming.TrackCanary:
			canaryC.Requests += s.served.requests
			canaryC.Errors += s.served.errors
		case cmp:
			comparison.Requests += s.served.requests
			comparison.Errors += s.served.errors
		}
	}
	return canaryC, comparison
}

// collected is a canary.Collector whose samples the Traffic remembers.
type collected struct {
	*canary.Collector
	t *Traffic
}

func (c *collected) Begin(ctx context.Context) error {
	if err := c.t.Begin(ctx); err != nil {
		return err
	}
	return c.Collector.Begin(ctx)
}

func (c *collected) Sample(ctx context.Context) (analysis.Sample, error) {
	s, err := c.Collector.Sample(ctx)
	if err == nil {
		c.t.lastSample = s
		c.t.samples++
		c.t.snapshotServed()
	}
	return s, err
}
