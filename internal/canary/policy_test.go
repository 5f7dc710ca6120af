package canary

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

func standard() Policy {
	return Policy{
		Steps:       []Step{{Weight: 5, Pause: Duration(time.Minute)}, {Weight: 25, Pause: Duration(2 * time.Minute)}, {Weight: 50, Pause: Duration(2 * time.Minute)}},
		Analysis:    Analysis{Interval: Duration(30 * time.Second), MinRequests: 100, MaxErrorRate: 0.01, FailureLimit: 1, InconclusiveLimit: 3},
		Baseline:    true,
		OnInterrupt: "abort",
	}
}

func TestScheduleAndDurations(t *testing.T) {
	p := standard()
	if got, want := p.Shortest(), 5*time.Minute; got != want {
		t.Errorf("shortest %s, want %s", got, want)
	}
	// Three steps, three inconclusive retries of 30s each.
	if got, want := p.Longest(), 9*time.Minute+30*time.Second; got != want {
		t.Errorf("longest %s, want %s", got, want)
	}
	want := "5% for 1m → 25% for 2m → 50% for 2m → 100% to the canary and an equal baseline; analysed every 30s (at least 100 requests a side); 5m to 9m30s"
	if got := p.Schedule(); got != want {
		t.Errorf("schedule\n got %q\nwant %q", got, want)
	}
	if got := p.Looks(); got != 2+4+4+9 {
		t.Errorf("looks %d, want 19", got)
	}
}

func TestValidate(t *testing.T) {
	if probs := standard().Validate(); len(probs) != 0 {
		t.Fatalf("the standard policy has problems: %v", probs)
	}
	max := 0.5
	min := 1.0
	cases := []struct {
		name   string
		change func(*Policy)
		path   string
		text   string
	}{
		{"no steps", func(p *Policy) { p.Steps = nil }, "steps", "at least one step"},
		{"weight 100", func(p *Policy) { p.Baseline = false; p.Steps[2].Weight = 100 }, "steps[2].weight", "between 1 and 99"},
		{"falling weights", func(p *Policy) { p.Steps[1].Weight = 5 }, "steps[1].weight", "must rise"},
		{"baseline over 50", func(p *Policy) { p.Steps[2].Weight = 60 }, "steps[2].weight", "baseline"},
		{"pause under interval", func(p *Policy) { p.Steps[0].Pause = Duration(10 * time.Second) }, "steps[0].pause", "shorter than the analysis interval"},
		{"queries without prometheus", func(p *Policy) { p.Analysis.Queries = []Query{{Name: "q", Query: "up", Max: &max}} }, "analysis.prometheus", "set analysis.prometheus.url"},
		{"bad template", func(p *Policy) {
			p.Analysis.Prometheus = &Prometheus{URL: "http://prom:9090"}
			p.Analysis.Queries = []Query{{Name: "q", Query: `rate(x{track="{{.Trak}}"}[1m])`, Max: &max}}
		}, "analysis.queries[0].query", "cannot"},
		{"unbounded query", func(p *Policy) {
			p.Analysis.Prometheus = &Prometheus{URL: "http://prom:9090"}
			p.Analysis.Queries = []Query{{Name: "q", Query: "up"}}
		}, "analysis.queries[0]", "never fail"},
		{"min above max", func(p *Policy) {
			p.Analysis.Prometheus = &Prometheus{URL: "http://prom:9090"}
			p.Analysis.Queries = []Query{{Name: "q", Query: "up", Min: &min, Max: &max}}
		}, "analysis.queries[0].min", "above max"},
		{"bad metric", func(p *Policy) {
			p.Analysis.Prometheus = &Prometheus{URL: "http://prom:9090"}
			p.Analysis.Errors = &Errors{Metric: "app-errors", Label: "type", NewTypeIntervals: 2}
		}, "analysis.errors.metric", "not a Prometheus metric name"},
		{"bad url", func(p *Policy) { p.Analysis.Prometheus = &Prometheus{URL: "prom:9090"} }, "analysis.prometheus.url", "not an http"},
		{"on_interrupt", func(p *Policy) { p.OnInterrupt = "retry" }, "on_interrupt", "abort"},
	}
	for _, c := range cases {
		p := standard()
		p.Steps = append([]Step(nil), p.Steps...)
		c.change(&p)
		found := false
		for _, pr := range p.Validate() {
			if pr.Path == c.path && strings.Contains(pr.Message, c.text) {
				found = true
			}
		}
		if !found {
			t.Errorf("%s: want a problem at %s mentioning %q, got %v", c.name, c.path, c.text, p.Validate())
		}
	}
}

func TestIDRoundTrip(t *testing.T) {
	p := standard()
	max := 0.2
	p.Analysis.Prometheus = &Prometheus{URL: "http://prom:9090", Username: "u", PasswordEnv: "PROM_PASSWORD"}
	p.Analysis.Queries = []Query{{Name: "signup_rate", Query: `sum(rate(signups_total{track="{{.Track}}"}[1m]))`, Max: &max}}
	id := p.ID()
	if id != p.ID() {
		t.Fatal("the id of a policy is not stable")
	}
	if !strings.HasPrefix(id, "rc1.") {
		t.Errorf("id %q", id)
	}
	back, err := Decode(id)
	if err != nil {
		t.Fatal(err)
	}
	if back.ID() != id || back.Schedule() != p.Schedule() || *back.Analysis.Queries[0].Max != 0.2 {
		t.Errorf("the decoded policy differs: %+v", back)
	}
	q := standard()
	q.Steps[0].Weight = 6
	if q.ID() == id {
		t.Error("a different policy has the same id")
	}
	if _, err := Decode("sha256:abc"); err == nil || !strings.Contains(err.Error(), "release_canary.<name>.id") {
		t.Errorf("decoding garbage: %v", err)
	}
}

func TestRenderQuery(t *testing.T) {
	got, err := RenderQuery(`sum(rate(app_errors_total{service="{{.Service}}",track="{{.Track}}"}[{{.Interval}}]))`,
		QueryData{Service: "web", Track: "canary", Interval: "30s"})
	if err != nil || got != `sum(rate(app_errors_total{service="web",track="canary"}[30s]))` {
		t.Errorf("got %q, %v", got, err)
	}
	if _, err := RenderQuery("  ", QueryData{}); err == nil {
		t.Error("an empty query was accepted")
	}
}

func TestFormat(t *testing.T) {
	for d, want := range map[time.Duration]string{time.Minute: "1m", 90 * time.Second: "1m30s", 2 * time.Hour: "2h", 30 * time.Second: "30s", 500 * time.Millisecond: "500ms", 0: "0s"} {
		if got := Format(d); got != want {
			t.Errorf("Format(%v) = %q, want %q", d, got, want)
		}
	}
}

func TestManualStep(t *testing.T) {
	p := standard()
	p.Steps[1] = Step{Weight: 25, Manual: true}
	if probs := p.Validate(); len(probs) != 0 {
		t.Fatalf("a manual step has problems: %v", probs)
	}
	want := "5% for 1m → 25% held until the next apply → 50% for 2m → 100% to the canary and an equal baseline; analysed every 30s (at least 100 requests a side); 3m to 7m30s"
	if got := p.Schedule(); got != want {
		t.Errorf("schedule\n got %q\nwant %q", got, want)
	}
	if i, ok := p.ManualStepAt(25); !ok || i != 1 {
		t.Errorf("ManualStepAt(25) = %d, %v; want 1, true", i, ok)
	}
	if _, ok := p.ManualStepAt(5); ok {
		t.Error("ManualStepAt(5) found a timed step")
	}
	if got := p.Steps[1].PauseText(); got != ManualPause {
		t.Errorf("PauseText of a manual step = %q", got)
	}
	// The encoding of a policy without manual steps is what it was.
	if id := standard().ID(); strings.Contains(mustDecodeJSON(t, id), "manual") {
		t.Errorf("a policy without manual steps encodes a manual field: %s", mustDecodeJSON(t, id))
	}
	back, err := Decode(p.ID())
	if err != nil || !back.Steps[1].Manual {
		t.Errorf("a manual step does not survive the encoding: %+v, %v", back.Steps, err)
	}
}

func mustDecodeJSON(t *testing.T, id string) string {
	t.Helper()
	p, err := Decode(id)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(p)
	return string(b)
}
