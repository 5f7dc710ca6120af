package main

import (
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// durationBuckets are the upper bounds (seconds) of app_request_duration_seconds.
var durationBuckets = []float64{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10}

// metrics is a tiny hand-written Prometheus registry: just what the app
// exposes, printed in the text exposition format (version 0.0.4).
type metrics struct {
	version string
	start   time.Time

	mu       sync.Mutex
	requests map[string]uint64 // by status code
	errors   map[string]uint64 // by error type
	buckets  []uint64          // cumulative counts are computed on output
	count    uint64
	sum      float64
}

func newMetrics(version string, start time.Time, errorTypes []errorType) *metrics {
	m := &metrics{
		version:  version,
		start:    start,
		requests: map[string]uint64{"200": 0, "500": 0},
		errors:   map[string]uint64{},
		buckets:  make([]uint64, len(durationBuckets)),
	}
	// Known error types are exposed from the start at 0, so that a rate
	// can be computed from the first increase on.
	for _, t := range errorTypes {
		m.errors[t.Name] = 0
	}
	return m
}

// observe records one request to "/".
func (m *metrics) observe(code int, d time.Duration, errs []string) {
	secs := d.Seconds()
	m.mu.Lock()
	defer m.mu.Unlock()
	m.requests[strconv.Itoa(code)]++
	for _, e := range errs {
		m.errors[e]++
	}
	for i, le := range durationBuckets {
		if secs <= le {
			m.buckets[i]++
			break
		}
	}
	m.count++
	m.sum += secs
}

// write prints every metric in the Prometheus text format.
func (m *metrics) write(w io.Writer) error {
	m.mu.Lock()
	requests := sortedKeys(m.requests)
	reqVals := make([]uint64, len(requests))
	for i, k := range requests {
		reqVals[i] = m.requests[k]
	}
	errNames := sortedKeys(m.errors)
	errVals := make([]uint64, len(errNames))
	for i, k := range errNames {
		errVals[i] = m.errors[k]
	}
	buckets := append([]uint64(nil), m.buckets...)
	count, sum := m.count, m.sum
	m.mu.Unlock()

	var b strings.Builder
	b.WriteString("# HELP app_info Information about the running application.\n")
	b.WriteString("# TYPE app_info gauge\n")
	fmt.Fprintf(&b, "app_info{version=\"%s\"} 1\n", escapeLabel(m.version))

	b.WriteString("# HELP app_start_time_seconds Start time of the process since unix epoch in seconds.\n")
	b.WriteString("# TYPE app_start_time_seconds gauge\n")
	fmt.Fprintf(&b, "app_start_time_seconds %s\n", strconv.FormatFloat(float64(m.start.UnixMilli())/1e3, 'f', 3, 64))

	b.WriteString("# HELP app_requests_total Requests to / by HTTP status code.\n")
	b.WriteString("# TYPE app_requests_total counter\n")
	for i, k := range requests {
		fmt.Fprintf(&b, "app_requests_total{code=\"%s\"} %d\n", escapeLabel(k), reqVals[i])
	}

	b.WriteString("# HELP app_errors_total Application errors by type (see ERROR_TYPES).\n")
	b.WriteString("# TYPE app_errors_total counter\n")
	for i, k := range errNames {
		fmt.Fprintf(&b, "app_errors_total{type=\"%s\"} %d\n", escapeLabel(k), errVals[i])
	}

	b.WriteString("# HELP app_request_duration_seconds Duration of requests to /.\n")
	b.WriteString("# TYPE app_request_duration_seconds histogram\n")
	var cum uint64
	for i, le := range durationBuckets {
		cum += buckets[i]
		fmt.Fprintf(&b, "app_request_duration_seconds_bucket{le=\"%s\"} %d\n", formatFloat(le), cum)
	}
	fmt.Fprintf(&b, "app_request_duration_seconds_bucket{le=\"+Inf\"} %d\n", count)
	fmt.Fprintf(&b, "app_request_duration_seconds_sum %s\n", formatFloat(sum))
	fmt.Fprintf(&b, "app_request_duration_seconds_count %d\n", count)

	_, err := io.WriteString(w, b.String())
	return err
}

func sortedKeys(m map[string]uint64) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func formatFloat(f float64) string {
	return strconv.FormatFloat(f, 'g', -1, 64)
}

// escapeLabel escapes a label value as the text format requires.
func escapeLabel(s string) string {
	return strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`).Replace(s)
}
