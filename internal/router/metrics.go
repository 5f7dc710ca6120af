package router

import (
	"fmt"
	"io"

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

// Accumulator adds up counters across reloads: each reload starts new
// workers whose counters begin at zero, so a value lower than the last one
// is a restart, not a decrease.
type Accumulator struct {
	last  map[string]ServerCounts
	total map[string]ServerCounts
}

// Add takes one scrape.
func (a *Accumulator) Add(sample map[string]ServerCounts) {
	if a.last == nil {
		a.last, a.total = map[string]ServerCounts{}, map[string]ServerCounts{}
	}
	for server, now := range sample {
		prev, seen := a.last[server]
		t := a.total[server]
		switch {
		case !seen, now.Requests < prev.Requests || now.Errors < prev.Errors:
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
