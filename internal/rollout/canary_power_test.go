package rollout

import (
	"errors"
	"strings"
	"testing"

	"github.com/releasekit/terraform-provider-release/internal/analysis"
	"github.com/releasekit/terraform-provider-release/internal/naming"
)

// steadySample is a healthy canary and baseline with n requests a side per
// look and a 0.5% 5xx rate on both.
func steadySample(n int) func(int) (analysis.Sample, error) {
	return func(look int) (analysis.Sample, error) {
		r := look * n
		return analysis.Sample{Canary: analysis.Counts{Requests: r, Errors: r / 200}, Baseline: analysis.Counts{Requests: r, Errors: r / 200}}, nil
	}
}

// A healthy canary with too little traffic for its test to catch
// must_catch is not promoted: by default it is aborted as underpowered
// after its last step, with the requests it would have needed, and nobody
// stays on it. Earlier steps show the projected power in the report.
func TestCanaryWithTooLittleTrafficIsUnderpowered(t *testing.T) {
	h := newHarness(t)
	h.deploy(webSpec("production", digest1))
	p := testPolicy(true)
	p.Analysis.OnUnderpowered = ""
	m := &fakeMetrics{sample: steadySample(20)}
	_, err := h.d.Deploy(h.ctx, h.withCanary(webSpec("production", digest2), p, m))
	var aborted *CanaryAbortedError
	if !errors.As(err, &aborted) {
		t.Fatalf("Deploy = %v, want an underpowered abort", err)
	}
	if !aborted.Underpowered || aborted.RequestsNeeded < 1000 || aborted.Step != 3 || !strings.Contains(aborted.Why, "underpowered") {
		t.Fatalf("aborted = %+v", aborted)
	}
	if strings.Count(aborted.Report, "| power |") != 3 || !strings.Contains(aborted.Report, "more canary requests needed") {
		t.Errorf("the report does not show the power:\n%s", aborted.Report)
	}
	if st := h.observe("production"); st.Revision != 1 || st.Canary != nil {
		t.Errorf("after the abort: revision %d, canary %+v", st.Revision, st.Canary)
	}
	if n := judgmentsLeft(h); n != 0 {
		t.Errorf("%d kept analyses left after the canary was decided", n)
	}
}

// The same canary with enough traffic has the power and is promoted.
func TestCanaryWithEnoughTrafficHasThePower(t *testing.T) {
	h := newHarness(t)
	h.deploy(webSpec("production", digest1))
	p := testPolicy(true)
	p.Analysis.OnUnderpowered = ""
	m := &fakeMetrics{sample: steadySample(3000)}
	res, err := h.d.Deploy(h.ctx, h.withCanary(webSpec("production", digest2), p, m))
	if err != nil {
		t.Fatalf("Deploy = %v", err)
	}
	if res.Status.Revision != 2 || !strings.Contains(res.CanaryReport, "| power |") {
		t.Errorf("revision %d, report:\n%s", res.Status.Revision, res.CanaryReport)
	}
}

// on_underpowered = "extend" analyses the step up to inconclusive_limit
// more times before it gives up; "promote" goes on and says so.
func TestCanaryUnderpoweredExtendsOrPromotes(t *testing.T) {
	h := newHarness(t)
	h.deploy(webSpec("production", digest1))
	p := testPolicy(true)
	p.Analysis.OnUnderpowered = "extend"
	m := &fakeMetrics{sample: steadySample(50)}
	_, err := h.d.Deploy(h.ctx, h.withCanary(webSpec("production", digest2), p, m))
	var aborted *CanaryAbortedError
	if !errors.As(err, &aborted) || !aborted.Underpowered {
		t.Fatalf("Deploy = %v, want an underpowered abort after the extension", err)
	}
	// 3 planned looks a step, and 2 more at the last.
	if m.looks != 9+p.Analysis.InconclusiveLimit {
		t.Errorf("%d looks, want %d", m.looks, 9+p.Analysis.InconclusiveLimit)
	}

	p.Analysis.OnUnderpowered = "promote"
	m = &fakeMetrics{sample: steadySample(20)}
	res, err := h.d.Deploy(h.ctx, h.withCanary(webSpec("production", digest2), p, m))
	if err != nil || res.Status.Revision == 1 {
		t.Fatalf("Deploy = %v (revision %d), want the canary promoted with a warning", err, res.Status.Revision)
	}
	if !strings.Contains(res.CanaryReport, "| power |") || !strings.Contains(res.CanaryReport, "| inconclusive |") {
		t.Errorf("the report does not warn of the missing power:\n%s", res.CanaryReport)
	}
}

// A canary interrupted mid-way and resumed continues the same analysis:
// the looks go on from where they were, and what the test spent stays
// spent, so an interruption never gives a canary a second budget.
func TestCanaryResumedContinuesItsAnalysis(t *testing.T) {
	h := newHarness(t)
	h.deploy(webSpec("production", digest1))
	p := testPolicy(true)
	p.OnInterrupt = "resume"
	h.interrupt(webSpec("production", digest2), p, 5) // during step 2, 4 looks judged
	if n := judgmentsLeft(h); n != 1 {
		t.Fatalf("%d kept analyses after the interruption, want 1 (the newest)", n)
	}
	m := &fakeMetrics{sample: healthySample(200)}
	res := h.deploy(h.withCanary(webSpec("production", digest2), p, m))
	if res.Status.Revision != 2 {
		t.Fatalf("not promoted: %+v", res.Status)
	}
	if !strings.Contains(res.CanaryReport, "| 2 | 5 | error rate |") {
		t.Errorf("the resumed analysis does not go on from look 5:\n%s", res.CanaryReport)
	}
	if n := judgmentsLeft(h); n != 0 {
		t.Errorf("%d kept analyses left after the promotion", n)
	}
}

func judgmentsLeft(h *harness) int {
	n := 0
	for _, c := range h.host.containers {
		if naming.KindJudgment.Is(c.c.Labels) {
			n++
		}
	}
	return n
}

// A kept analysis that cannot be read (a label damaged by hand) starts a
// new analysis, and the old markers go with it: otherwise the old one, with
// a higher look, would read as the newest after the next kill.
func TestCanaryResumedWithAnUnreadableAnalysisStartsAnew(t *testing.T) {
	h := newHarness(t)
	h.deploy(webSpec("production", digest1))
	p := testPolicy(true)
	p.OnInterrupt = "resume"
	h.interrupt(webSpec("production", digest2), p, 5) // 4 looks kept
	for _, c := range h.host.containers {
		if naming.KindJudgment.Is(c.c.Labels) {
			c.c.Labels[naming.LabelJudgment] = "not base64!"
		}
	}
	h.interrupt(webSpec("production", digest2), p, 3) // resumed: 2 looks of a new analysis
	var looks []string
	for _, c := range h.host.containers {
		if naming.KindJudgment.Is(c.c.Labels) {
			looks = append(looks, c.c.Labels[naming.LabelLook])
		}
	}
	if len(looks) != 1 || looks[0] != "2" {
		t.Fatalf("kept analyses at looks %v after the second kill, want only the new one's look 2", looks)
	}
	m := &fakeMetrics{sample: healthySample(200)}
	res := h.deploy(h.withCanary(webSpec("production", digest2), p, m))
	if res.Status.Revision != 2 || !strings.Contains(res.CanaryReport, "| 2 | 3 | error rate |") {
		t.Errorf("revision %d; the analysis does not go on from the new one's look 3:\n%s", res.Status.Revision, res.CanaryReport)
	}
}
