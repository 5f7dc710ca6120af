package router

import (
	"os"
	"reflect"
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

// A new worker that counted past the old one's total before the next
// scrape: without the worker's name the step up looks like more of the
// same, and the old total is taken off the fresh counts; with it, the
// fresh counts all count.
func TestAccumulatorUpwardStepAcrossReload(t *testing.T) {
	scrapes := []ServerScrape{
		{Worker: "10", Servers: map[string]ServerCounts{"c2-1": {Requests: 100, Errors: 4}}},
		{Worker: "10", Servers: map[string]ServerCounts{"c2-1": {Requests: 120, Errors: 5}}},
		{Worker: "31", Servers: map[string]ServerCounts{"c2-1": {Requests: 200, Errors: 9}}}, // reloaded, past 120
		{Worker: "31", Servers: map[string]ServerCounts{"c2-1": {Requests: 210, Errors: 9}}},
		{Worker: "44", Servers: map[string]ServerCounts{"c2-1": {Requests: 3}, "c2-2": {Requests: 7, Errors: 1}}}, // reloaded, below
	}
	var named, unnamed Accumulator
	for _, s := range scrapes {
		named.AddScrape(s)
		unnamed.Add(s.Servers)
	}
	got := named.Totals()
	if c := got["c2-1"]; c.Requests != 120+210+3 || c.Errors != 5+9 {
		t.Errorf("with workers named: c2-1 %+v, want 333 requests, 14 errors", c)
	}
	if c := got["c2-2"]; c.Requests != 7 || c.Errors != 1 {
		t.Errorf("with workers named: c2-2 %+v", c)
	}
	if named.Reloads != 2 {
		t.Errorf("named reloads %d, want 2", named.Reloads)
	}
	// The inference loses the step up (200-120 counted instead of 200) and
	// sees one reload of the two.
	if c := unnamed.Totals()["c2-1"]; c.Requests != 120+80+10+3 || unnamed.Reloads != 1 {
		t.Errorf("inferred: c2-1 %+v, %d reloads; want the old 213 and 1", c, unnamed.Reloads)
	}
}

func TestParseWorker(t *testing.T) {
	for text, want := range map[string]string{
		"# worker 4711\n# HELP x\n": "4711",
		"# HELP x\n# worker 4711\n": "",
		"# worker \n":               "",
		"":                          "",
	} {
		if got := ParseWorker(text); got != want {
			t.Errorf("ParseWorker(%q) = %q, want %q", text, got, want)
		}
	}
}

// exporterStates is real HAProxy 2.6 exporter output, with servers in every
// state a check leaves them in (see the comment at its top).
func exporterStates(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile("testdata/exporter-server-states.txt")
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestParseServerStates(t *testing.T) {
	got, err := ParseServerStates(strings.NewReader(exporterStates(t)), "be_t_web")
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]ServerState{
		"ok-1":     {Status: "UP", CheckStatus: "L7OK", Weight: 100},
		"closed-1": {Status: "DOWN", CheckStatus: "L4CON", Weight: 50},
		"bad-1":    {Status: "DOWN", CheckStatus: "L7STS", Weight: 0},
		"slow-1":   {Status: "DOWN", CheckStatus: "L7TOUT", Weight: 10},
		"new-1":    {Status: "UP", CheckStatus: "", Weight: 7}, // added by the reload, not checked yet
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("ParseServerStates =\n%+v\nwant\n%+v", got, want)
	}
	for name, s := range got {
		if s.Ready() != (name == "ok-1") {
			t.Errorf("%s %+v: Ready() = %v", name, s, s.Ready())
		}
	}

	other, err := ParseServerStates(strings.NewReader(exporterStates(t)), "be_other_web")
	if err != nil {
		t.Fatal(err)
	}
	if want := map[string]ServerState{"r4-1": {Status: "UP", CheckStatus: "L7OK", Weight: 100}}; !reflect.DeepEqual(other, want) {
		t.Errorf("be_other_web = %+v, want %+v", other, want)
	}
	none, err := ParseServerStates(strings.NewReader(exporterStates(t)), "be_gone_web")
	if err != nil || len(none) != 0 {
		t.Errorf("a backend the worker does not have = %+v, %v; want empty", none, err)
	}
	if _, err := ParseServerStates(strings.NewReader("<html>\n"), "be_t_web"); err == nil {
		t.Error("HTML parsed as metrics")
	}
}

func TestServerStateDescribe(t *testing.T) {
	for s, want := range map[ServerState]string{
		{Status: "DOWN", CheckStatus: "L7TOUT"}: "is DOWN (Layer 7 timeout, L7TOUT)",
		{Status: "DOWN", CheckStatus: "L4CON"}:  "is DOWN (Layer 4 connection problem, such as a refused connection, L4CON)",
		{Status: "DOWN", CheckStatus: "L7STS"}:  "is DOWN (Layer 7 wrong status, L7STS)",
		{Status: "UP"}:                          "is UP (not checked yet)",
		{Status: "UP", CheckStatus: "INI"}:      "is UP (not checked yet)",
		{Status: "MAINT", CheckStatus: "XYZ"}:   "is MAINT (XYZ)",
		{}:                                      "is not in the router's running configuration",
	} {
		if got := s.describe(); got != want {
			t.Errorf("%+v.describe() = %q, want %q", s, got, want)
		}
	}
	for _, code := range []string{"L4TOUT", "L6TOUT", "L6RSP", "L7RSP", "L7OK", "SOCKERR"} {
		if got := CheckStatusText(code); !strings.HasSuffix(got, ", "+code) || len(got) < len(code)+6 {
			t.Errorf("CheckStatusText(%q) = %q, want words and the code", code, got)
		}
	}
}
