package router

import (
	"strings"
	"testing"
)

const exporterSample = `# HELP haproxy_server_http_responses_total Total number of HTTP responses.
# TYPE haproxy_server_http_responses_total counter
haproxy_server_http_responses_total{proxy="be_prod_web",server="r1-1",code="2xx"} 180
haproxy_server_http_responses_total{proxy="be_prod_web",server="r1-1",code="5xx"} 0
haproxy_server_http_responses_total{proxy="be_prod_web",server="c2-1",code="2xx"} 19
haproxy_server_http_responses_total{proxy="be_prod_web",server="c2-1",code="5xx"} 1
haproxy_server_http_responses_total{proxy="be_other_web",server="r4-1",code="5xx"} 99
# HELP haproxy_server_response_time_average_seconds Avg. response time for last 1024 successful connections.
# TYPE haproxy_server_response_time_average_seconds gauge
haproxy_server_response_time_average_seconds{proxy="be_prod_web",server="c2-1"} 0.120
`

func TestParseServerMetrics(t *testing.T) {
	got, err := ParseServerMetrics(strings.NewReader(exporterSample), "be_prod_web")
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 {
		t.Fatalf("servers %v, want only the backend's two", got)
	}
	if c := got["c2-1"]; c.Requests != 20 || c.Errors != 1 || c.MeanLatency != 0.12 {
		t.Errorf("c2-1 = %+v", c)
	}
	if c := got["r1-1"]; c.Requests != 180 || c.Errors != 0 {
		t.Errorf("r1-1 = %+v", c)
	}
}

func TestAccumulatorSurvivesReloads(t *testing.T) {
	var a Accumulator
	a.Add(map[string]ServerCounts{"c2-1": {Requests: 100, Errors: 5}}) // a new server: all of it counts
	a.Add(map[string]ServerCounts{"c2-1": {Requests: 150, Errors: 6}})
	a.Add(map[string]ServerCounts{"c2-1": {Requests: 30, Errors: 2}}) // a reload restarted the counters
	a.Add(map[string]ServerCounts{"c2-1": {Requests: 40, Errors: 2}})
	got := a.Totals()["c2-1"]
	if got.Requests != 100+50+30+10 || got.Errors != 5+1+2+0 {
		t.Errorf("totals %+v, want 190 requests and 8 errors", got)
	}
}
