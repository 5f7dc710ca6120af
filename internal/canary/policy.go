// Package canary holds a canary release policy: its steps, how each step is
// analysed, the schedule that follows from them, and the compact encoding
// that lets an environment carry the policy by id. It holds no Terraform types.
package canary

import (
	"bytes"
	"compress/gzip"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strings"
	"text/template"
	"time"
)

// Policy is a canary release policy.
type Policy struct {
	Steps    []Step   `json:"steps"`
	Analysis Analysis `json:"analysis"`
	// Baseline runs a fresh container of the stable version beside the
	// canary, with the same share of traffic, to judge the canary against.
	Baseline bool `json:"baseline"`
	// OnInterrupt says what the next apply does with a canary an earlier
	// apply left mid-way: "abort" or "resume".
	OnInterrupt string `json:"on_interrupt"`
	// ReportPath, if set, receives the analysis report as Markdown.
	ReportPath string `json:"report_path,omitempty"`
}

// Step sends Weight percent of traffic to the canary for Pause.
type Step struct {
	Weight int      `json:"weight"`
	Pause  Duration `json:"pause"`
	// Manual holds the canary at Weight when the step is reached: the apply
	// ends there, and the next apply (or the promote action, carried out by
	// it) continues. Pause is then zero.
	Manual bool `json:"manual,omitempty"`
}

// ManualPause is how a manual step's pause is written.
const ManualPause = "manual"

// PauseText is a step's pause as written: a duration, or ManualPause.
func (s Step) PauseText() string {
	if s.Manual {
		return ManualPause
	}
	return Format(time.Duration(s.Pause))
}

// ManualStepAt is the index of the manual step at weight, if there is one:
// a canary found at that weight is held there.
func (p Policy) ManualStepAt(weight int) (int, bool) {
	for i, s := range p.Steps {
		if s.Manual && s.Weight == weight {
			return i, true
		}
	}
	return 0, false
}

// Analysis is how each step is judged.
type Analysis struct {
	Interval          Duration    `json:"interval"`
	MinRequests       int         `json:"min_requests"`
	MaxErrorRate      float64     `json:"max_error_rate,omitempty"`
	MaxLatency        Duration    `json:"max_latency,omitempty"`
	Prometheus        *Prometheus `json:"prometheus,omitempty"`
	Queries           []Query     `json:"queries,omitempty"`
	Errors            *Errors     `json:"errors,omitempty"`
	FailureLimit      int         `json:"failure_limit"`
	InconclusiveLimit int         `json:"inconclusive_limit"`
	// FalseAlarmRate is the whole canary's false-alarm budget, shared by
	// every check (0: DefaultFalseAlarmRate).
	FalseAlarmRate float64 `json:"false_alarm_rate,omitempty"`
	// MustCatch is the canary 5xx rate each step's test must have had the
	// power to catch (0: the smaller of 3× the baseline's rate and the
	// baseline's rate plus 1 point).
	MustCatch float64 `json:"must_catch,omitempty"`
	// SlowRequests judges the canary's share of slow requests (where the
	// router reports response times) with a share of the budget.
	SlowRequests bool `json:"slow_requests,omitempty"`
	// OnUnderpowered is what a step whose test had too little power does:
	// "abort", "extend" or "promote" ("": DefaultOnUnderpowered).
	OnUnderpowered string `json:"on_underpowered,omitempty"`
}

// Prometheus is the server queries and error metrics are read from. Its
// password is read at apply from the environment variable PasswordEnv, so no
// secret is stored in the policy or its id.
type Prometheus struct {
	URL         string `json:"url"`
	Username    string `json:"username,omitempty"`
	PasswordEnv string `json:"password_env,omitempty"`
}

// Query is a health metric whose value must stay within [Min, Max].
type Query struct {
	Name  string   `json:"name"`
	Query string   `json:"query"`
	Min   *float64 `json:"min,omitempty"`
	Max   *float64 `json:"max,omitempty"`
}

// Errors is the application's error counter, labelled by error type.
type Errors struct {
	Metric           string `json:"metric"`
	Label            string `json:"label"`
	NewTypeIntervals int    `json:"new_type_intervals"`
	DetectDecrease   bool   `json:"detect_decrease,omitempty"`
}

// Duration is a time.Duration written as "30s" in JSON.
type Duration time.Duration

func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(Format(time.Duration(d))) }

// Format writes a duration the way people write them: 1m, 2m30s, 500ms.
func Format(d time.Duration) string {
	if d == 0 {
		return "0s"
	}
	if d%time.Second != 0 {
		return d.String()
	}
	var b strings.Builder
	if h := d / time.Hour; h > 0 {
		fmt.Fprintf(&b, "%dh", h)
		d -= h * time.Hour
	}
	if m := d / time.Minute; m > 0 {
		fmt.Fprintf(&b, "%dm", m)
		d -= m * time.Minute
	}
	if d > 0 {
		fmt.Fprintf(&b, "%ds", d/time.Second)
	}
	return b.String()
}

func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	v, err := time.ParseDuration(s)
	*d = Duration(v)
	return err
}

// QueryData is what a query template can name.
type QueryData struct {
	Environment, Service, Track, Digest string
	CanaryDigest, StableDigest          string
	// Interval is the analysis interval in Prometheus syntax, such as 30s.
	Interval string
}

var (
	queryNamePattern = regexp.MustCompile(`^[a-z][a-z0-9_]{0,62}$`)
	metricPattern    = regexp.MustCompile(`^[a-zA-Z_:][a-zA-Z0-9_:]*$`)
	labelPattern     = regexp.MustCompile(`^[a-zA-Z_][a-zA-Z0-9_]*$`)
)

// Problem is a validation error on one attribute path, such as steps[1].weight.
type Problem struct {
	Path    string
	Message string
}

// Validate finds every problem a plan can see.
func (p Policy) Validate() []Problem {
	var out []Problem
	add := func(path, format string, args ...any) { out = append(out, Problem{path, fmt.Sprintf(format, args...)}) }
	if len(p.Steps) == 0 {
		add("steps", "a canary needs at least one step, such as { weight = 10, pause = \"1m\" }")
	}
	for i, s := range p.Steps {
		path := fmt.Sprintf("steps[%d]", i)
		if s.Weight < 1 || s.Weight > 99 {
			add(path+".weight", "weight %d is not between 1 and 99 (100%% is the promotion after the last step)", s.Weight)
		}
		if i > 0 && s.Weight <= p.Steps[i-1].Weight {
			add(path+".weight", "weights must rise from step to step: %d follows %d", s.Weight, p.Steps[i-1].Weight)
		}
		if p.Baseline && s.Weight > 50 {
			add(path+".weight", "with a baseline, which gets as much traffic as the canary, a weight above 50 leaves stable less than nothing; use at most 50 or baseline = false")
		}
		if !s.Manual && time.Duration(s.Pause) < time.Duration(p.Analysis.Interval) {
			add(path+".pause", "the pause %s is shorter than the analysis interval %s, so the step would never be analysed", time.Duration(s.Pause), time.Duration(p.Analysis.Interval))
		}
	}
	a := p.Analysis
	if time.Duration(a.Interval) < time.Second {
		add("analysis.interval", "the interval must be at least 1s")
	}
	if a.MinRequests < 1 {
		add("analysis.min_requests", "min_requests must be at least 1: with no requests a check can only be inconclusive")
	}
	if a.MaxErrorRate < 0 || a.MaxErrorRate >= 1 {
		add("analysis.max_error_rate", "max_error_rate is a fraction between 0 and 1, such as 0.01 for 1%%")
	}
	if a.FailureLimit < 1 {
		add("analysis.failure_limit", "failure_limit must be at least 1")
	}
	if a.InconclusiveLimit < 1 {
		add("analysis.inconclusive_limit", "inconclusive_limit must be at least 1")
	}
	if a.FalseAlarmRate < 0 || a.FalseAlarmRate > 0.2 {
		add("analysis.false_alarm_rate", "false_alarm_rate %g is not a fraction between 0 and 0.2, such as 0.01 for at most 1%% of good canaries aborted", a.FalseAlarmRate)
	}
	if a.MustCatch < 0 || a.MustCatch >= 1 {
		add("analysis.must_catch", "must_catch %g is not a 5xx rate between 0 and 1, such as 0.02 for 2%%", a.MustCatch)
	}
	switch a.OnUnderpowered {
	case "", "abort", "extend", "promote":
	default:
		add("analysis.on_underpowered", "%q: use \"abort\", \"extend\" or \"promote\"", a.OnUnderpowered)
	}
	if (len(a.Queries) > 0 || a.Errors != nil) && a.Prometheus == nil {
		add("analysis.prometheus", "queries and errors are read from Prometheus: set analysis.prometheus.url")
	}
	if pr := a.Prometheus; pr != nil {
		if !strings.HasPrefix(pr.URL, "http://") && !strings.HasPrefix(pr.URL, "https://") {
			add("analysis.prometheus.url", "%q is not an http:// or https:// URL", pr.URL)
		}
		if pr.PasswordEnv != "" && !labelPattern.MatchString(pr.PasswordEnv) {
			add("analysis.prometheus.password_env", "%q is not an environment variable name", pr.PasswordEnv)
		}
	}
	seen := map[string]bool{}
	for i, q := range a.Queries {
		path := fmt.Sprintf("analysis.queries[%d]", i)
		if !queryNamePattern.MatchString(q.Name) {
			add(path+".name", "%q: a name is lowercase letters, digits and underscores, starting with a letter", q.Name)
		}
		if seen[q.Name] {
			add(path+".name", "the name %q is used twice", q.Name)
		}
		seen[q.Name] = true
		if q.Min == nil && q.Max == nil {
			add(path, "the query %q has neither min nor max, so it can never fail; set at least one", q.Name)
		}
		if q.Min != nil && q.Max != nil && *q.Min > *q.Max {
			add(path+".min", "min %g is above max %g", *q.Min, *q.Max)
		}
		if _, err := RenderQuery(q.Query, QueryData{Environment: "e", Service: "s", Track: "canary", Digest: "sha256:0"}); err != nil {
			add(path+".query", "%v", err)
		}
	}
	if e := a.Errors; e != nil {
		if !metricPattern.MatchString(e.Metric) {
			add("analysis.errors.metric", "%q is not a Prometheus metric name", e.Metric)
		}
		if !labelPattern.MatchString(e.Label) {
			add("analysis.errors.label", "%q is not a Prometheus label name", e.Label)
		}
		if e.NewTypeIntervals < 1 {
			add("analysis.errors.new_type_intervals", "new_type_intervals must be at least 1")
		}
	}
	if p.OnInterrupt != "abort" && p.OnInterrupt != "resume" {
		add("on_interrupt", "%q: use \"abort\" or \"resume\"", p.OnInterrupt)
	}
	return out
}

// RenderQuery fills a query template such as
// `sum(rate(http_errors_total{track="{{.Track}}",service="{{.Service}}"}[1m]))`.
func RenderQuery(text string, d QueryData) (string, error) {
	if strings.TrimSpace(text) == "" {
		return "", errors.New("the query is empty")
	}
	t, err := template.New("query").Option("missingkey=error").Parse(text)
	if err != nil {
		return "", fmt.Errorf("the query is not a valid template: %w", err)
	}
	var b strings.Builder
	if err := t.Execute(&b, d); err != nil {
		return "", fmt.Errorf("the query names something a template cannot (use .Environment, .Service, .Track, .Digest, .CanaryDigest, .StableDigest, .Interval): %w", err)
	}
	return b.String(), nil
}

// Looks is how many analyses a canary may take at most: the planned ones
// and, at each step, the inconclusive retries.
func (p Policy) Looks() int {
	n := 0
	for _, s := range p.Steps {
		n += int(time.Duration(s.Pause)/time.Duration(p.Analysis.Interval)) + p.Analysis.InconclusiveLimit
	}
	return n
}

// Shortest is how long a canary that passes every analysis takes.
func (p Policy) Shortest() time.Duration {
	var d time.Duration
	for _, s := range p.Steps {
		d += time.Duration(s.Pause)
	}
	return d
}

// Longest adds, at each step, the inconclusive analyses allowed before an abort.
func (p Policy) Longest() time.Duration {
	return p.Shortest() + time.Duration(len(p.Steps)*p.Analysis.InconclusiveLimit)*time.Duration(p.Analysis.Interval)
}

// Schedule is the policy in one readable line, for the plan.
func (p Policy) Schedule() string {
	var parts []string
	for _, s := range p.Steps {
		part := fmt.Sprintf("%d%% for %s", s.Weight, Format(time.Duration(s.Pause)))
		if s.Manual {
			part = fmt.Sprintf("%d%% held until the next apply", s.Weight)
		}
		parts = append(parts, part)
	}
	parts = append(parts, "100%")
	who := "canary"
	if p.Baseline {
		who = "canary and an equal baseline"
	}
	return fmt.Sprintf("%s to the %s; analysed every %s (at least %d requests a side); %s to %s",
		strings.Join(parts, " → "), who, Format(time.Duration(p.Analysis.Interval)), p.Analysis.MinRequests, Format(p.Shortest()), Format(p.Longest()))
}

const idPrefix = "rc1."

// ID encodes the policy, so an environment that takes the id carries the
// whole policy: the id changes exactly when the policy does.
func (p Policy) ID() string {
	// Settings at their defaults are left out, as the JSON of the policies
	// written before they existed left them: such a policy keeps its id.
	if p.Analysis.FalseAlarmRate == DefaultFalseAlarmRate {
		p.Analysis.FalseAlarmRate = 0
	}
	if p.Analysis.OnUnderpowered == DefaultOnUnderpowered {
		p.Analysis.OnUnderpowered = ""
	}
	b, _ := json.Marshal(p)
	var z bytes.Buffer
	w, _ := gzip.NewWriterLevel(&z, gzip.BestCompression)
	_, _ = w.Write(b)
	_ = w.Close()
	return idPrefix + base64.RawURLEncoding.EncodeToString(z.Bytes())
}

// Decode reads a policy back from its id.
func Decode(id string) (Policy, error) {
	if !strings.HasPrefix(id, idPrefix) {
		return Policy{}, errors.New("not a release_canary id: use release_canary.<name>.id")
	}
	raw, err := base64.RawURLEncoding.DecodeString(strings.TrimPrefix(id, idPrefix))
	if err != nil {
		return Policy{}, fmt.Errorf("not a release_canary id: %w", err)
	}
	r, err := gzip.NewReader(bytes.NewReader(raw))
	if err != nil {
		return Policy{}, fmt.Errorf("not a release_canary id: %w", err)
	}
	b, err := io.ReadAll(io.LimitReader(r, 1<<20))
	if err != nil {
		return Policy{}, fmt.Errorf("not a release_canary id: %w", err)
	}
	var p Policy
	if err := json.Unmarshal(b, &p); err != nil {
		return Policy{}, fmt.Errorf("not a release_canary id: %w", err)
	}
	return p, nil
}
