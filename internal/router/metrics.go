package router

import (
	"fmt"
	"io"
	"strings"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// ServerCounts are one server's numbers from HAProxy's Prometheus exporter.
type ServerCounts struct {
	Requests float64 // HTTP responses of any code
	Errors   float64 // 5xx responses
	// MeanLatency is HAProxy's average response time over the last 1024 requests, in seconds.
	MeanLatency float64
}

// ParseServerMetrics reads the per-server counters of one backend.
func ParseServerMetrics(r io.Reader, backend string) (map[string]ServerCounts, error) {
	families, err := parseExporter(r)
	if err != nil {
		return nil, err
	}
	out := map[string]ServerCounts{}
	eachServer(families, "haproxy_server_http_responses_total", backend, func(server string, labels map[string]string, v float64) {
		c := out[server]
		c.Requests += v
		if labels["code"] == "5xx" {
			c.Errors += v
		}
		out[server] = c
	})
	eachServer(families, "haproxy_server_response_time_average_seconds", backend, func(server string, _ map[string]string, v float64) {
		c := out[server]
		c.MeanLatency = v
		out[server] = c
	})
	return out, nil
}

// ParseServerStates reads HAProxy's view of each server of one backend. The
// exporter writes one series per possible state, the current one at 1; a
// server not checked yet has no check state at 1, so its CheckStatus is "".
func ParseServerStates(r io.Reader, backend string) (map[string]ServerState, error) {
	families, err := parseExporter(r)
	if err != nil {
		return nil, err
	}
	out := map[string]ServerState{}
	eachServer(families, "haproxy_server_status", backend, func(server string, labels map[string]string, v float64) {
		s := out[server]
		if v == 1 {
			s.Status = labels["state"]
		}
		out[server] = s
	})
	eachServer(families, "haproxy_server_check_status", backend, func(server string, labels map[string]string, v float64) {
		s := out[server]
		if v == 1 {
			s.CheckStatus = labels["state"]
		}
		out[server] = s
	})
	eachServer(families, "haproxy_server_weight", backend, func(server string, _ map[string]string, v float64) {
		s := out[server]
		s.Weight = int(v)
		out[server] = s
	})
	return out, nil
}

func parseExporter(r io.Reader) (map[string]*dto.MetricFamily, error) {
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(r)
	if err != nil {
		return nil, fmt.Errorf("parsing the router's metrics: %w", err)
	}
	return families, nil
}

// eachServer calls fn for each series of a family that belongs to a server of backend.
func eachServer(families map[string]*dto.MetricFamily, name, backend string, fn func(server string, labels map[string]string, value float64)) {
	f, ok := families[name]
	if !ok {
		return
	}
	for _, m := range f.GetMetric() {
		labels := map[string]string{}
		for _, l := range m.GetLabel() {
			labels[l.GetName()] = l.GetValue()
		}
		if labels["proxy"] != backend || labels["server"] == "" {
			continue
		}
		fn(labels["server"], labels, value(f.GetType(), m))
	}
}

func value(t dto.MetricType, m *dto.Metric) float64 {
	switch t {
	case dto.MetricType_COUNTER:
		return m.GetCounter().GetValue()
	case dto.MetricType_GAUGE:
		return m.GetGauge().GetValue()
	default:
		return m.GetUntyped().GetValue()
	}
}

// ServerScrape is one read of a backend's counters, with the HAProxy worker
// that served them.
type ServerScrape struct {
	// Worker names the worker process ("" when unknown): each reload starts
	// a new one whose counters begin at zero.
	Worker  string
	Servers map[string]ServerCounts
}

// ParseWorker reads the worker that served a scrape, from the line
// "# worker <pid>" the probe's -scrape writes first; "" when absent.
func ParseWorker(text string) string {
	line, _, _ := strings.Cut(text, "\n")
	if w, ok := strings.CutPrefix(line, "# worker "); ok && w != "" && !strings.ContainsAny(w, " \t") {
		return w
	}
	return ""
}

// Accumulator adds up counters across reloads: each reload starts new
// workers whose counters begin at zero. A scrape that names its worker
// tells a reload for sure, however far the new worker has counted; one
// that does not is taken for a reload when a counter went down (a new
// worker that counted past the old one's total is then missed, and its
// fresh counts lose the old total). Either way, what an old worker served
// between the last scrape before a reload and its exit is not counted:
// Reloads says how often that may have happened. The request log's tally
// (TallySession) has neither loss.
type Accumulator struct {
	worker string
	last   map[string]ServerCounts
	total  map[string]ServerCounts
	// Reloads counts the new workers seen after the first scrape.
	Reloads int
}

// Add takes one scrape whose worker is unknown.
func (a *Accumulator) Add(sample map[string]ServerCounts) {
	a.AddScrape(ServerScrape{Servers: sample})
}

// AddScrape takes one scrape.
func (a *Accumulator) AddScrape(s ServerScrape) {
	if a.last == nil {
		a.last, a.total = map[string]ServerCounts{}, map[string]ServerCounts{}
	}
	newWorker := s.Worker != "" && a.worker != "" && s.Worker != a.worker
	if newWorker {
		a.Reloads++
		a.last = map[string]ServerCounts{}
	}
	if s.Worker != "" {
		a.worker = s.Worker
	}
	decreased := false
	for server, now := range s.Servers {
		prev, seen := a.last[server]
		t := a.total[server]
		switch {
		case !seen:
			t.Requests += now.Requests
			t.Errors += now.Errors
		case now.Requests < prev.Requests || now.Errors < prev.Errors:
			// A reload not named, or a server deleted and added again at runtime.
			decreased = true
			t.Requests += now.Requests
			t.Errors += now.Errors
		default:
			t.Requests += now.Requests - prev.Requests
			t.Errors += now.Errors - prev.Errors
		}
		t.MeanLatency = now.MeanLatency
		a.total[server] = t
		a.last[server] = now
	}
	if decreased && s.Worker == "" {
		a.Reloads++
	}
}

// Totals are the counts since each server first appeared: canary and
// baseline servers are new with the canary, so all of theirs count.
func (a *Accumulator) Totals() map[string]ServerCounts {
	out := map[string]ServerCounts{}
	for k, v := range a.total {
		out[k] = v
	}
	return out
}
