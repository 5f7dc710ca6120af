package rollout

import (
	"fmt"
	"sort"

	"github.com/releasekit/terraform-provider-release/internal/canary"
	"github.com/releasekit/terraform-provider-release/internal/docker"
	"github.com/releasekit/terraform-provider-release/internal/naming"
)

// Kind names what a rollout does.
type Kind int

const (
	// FirstRelease: nothing served before; the new revision gets all traffic once healthy.
	FirstRelease Kind = iota + 1
	// Repair: the serving revision is already what the spec asks for; what
	// drifted (a stopped container, a lost route) is put right in place.
	Repair
	// Rollback: a retained revision with the same digest and configuration
	// starts again and gets all traffic, without a pull or a canary.
	Rollback
	// HardSwitch: a new revision gets all traffic once every container is healthy.
	HardSwitch
	// Canary: a new revision is released through the canary's steps and analysis.
	Canary
	// ResumeCanary: a canary an interrupted apply left goes on from the step it had reached.
	ResumeCanary
	// AbortCanary: a canary an interrupted apply left is removed, every user
	// back on stable, and the apply fails (on_interrupt = "abort").
	AbortCanary
	// Blocked: nothing can be done safely; Reason says what to do.
	Blocked
)

var kindNames = map[Kind]string{
	FirstRelease: "first release", Repair: "repair", Rollback: "rollback", HardSwitch: "hard switch",
	Canary: "canary", ResumeCanary: "resume canary", AbortCanary: "abort canary", Blocked: "blocked",
}

func (k Kind) String() string { return kindNames[k] }

// Decision is what a rollout will do, and why.
type Decision struct {
	Kind Kind
	// Revision serves once the rollout succeeds: a new one, a retained one,
	// the serving one (Repair) or the interrupted canary's (ResumeCanary).
	Revision int
	// Stable is the revision serving now, 0 if none.
	Stable int
	// Reason qualifies the kind in words, when it needs it.
	Reason string
	// Policy is the canary policy of a Canary or ResumeCanary.
	Policy *canary.Policy
	// FirstStep is where a resumed canary starts (0-based).
	FirstStep int
	// Discard is an interrupted canary that is removed first, every user
	// back on Stable, before the decision runs.
	Discard *CanaryStatus
	// RemoveBaseline says a finished canary left its baseline, removed first.
	RemoveBaseline bool
	// Continue says a ResumeCanary continues a canary that was not
	// interrupted: held at a manual step, or promoted by an action.
	Continue CanaryCommand
}

// String is the decision as the plan shows it in `rollout`.
func (d Decision) String() string {
	var s string
	switch d.Kind {
	case FirstRelease:
		s = "hard switch (first release)"
	case HardSwitch:
		s = "hard switch"
		if d.Reason != "" {
			s += " (" + d.Reason + ")"
		}
	case Canary:
		s = "canary: " + d.Policy.Schedule()
	case Rollback:
		s = fmt.Sprintf("rollback to revision %d: a hard switch to its retained containers", d.Revision)
	case Repair:
		s = fmt.Sprintf("repair of revision %d in place (same digest and configuration)", d.Revision)
	case ResumeCanary:
		rest := *d.Policy
		rest.Steps = rest.Steps[d.FirstStep:]
		switch {
		case d.Continue == CommandPromote:
			s = fmt.Sprintf("promote the canary of revision %d, as the promote action asked: every user to it, then revision %d stops", d.Revision, d.Stable)
		case d.Continue == CommandHeld && d.FirstStep == len(d.Policy.Steps):
			s = fmt.Sprintf("continue the canary of revision %d held at its last step (manual): every user to it, then revision %d stops", d.Revision, d.Stable)
		case d.Continue == CommandHeld:
			s = fmt.Sprintf("continue the canary of revision %d held at a manual step, from step %d of %d: %s", d.Revision, d.FirstStep+1, len(d.Policy.Steps), rest.Schedule())
		default:
			s = fmt.Sprintf("resume the interrupted canary of revision %d at step %d of %d: %s", d.Revision, d.FirstStep+1, len(d.Policy.Steps), rest.Schedule())
		}
	case AbortCanary:
		s = fmt.Sprintf("abort the interrupted canary of revision %d (on_interrupt = abort): every user back on revision %d, then the apply fails and the next one starts a new canary", d.Revision, d.Stable)
	case Blocked:
		s = "blocked: " + d.Reason
	}
	switch {
	case d.Discard != nil:
		s = fmt.Sprintf("remove the interrupted canary of revision %d, then %s", d.Discard.Revision, s)
	case d.RemoveBaseline:
		s = "remove the baseline a finished canary left, then " + s
	}
	return s
}

// Decide is the one place that says what a rollout does: from what the
// host runs (Observe) and what the spec asks for. It does no I/O.
func Decide(before Status, spec Spec) Decision {
	if before.Canary == nil && len(before.Baseline) > 0 {
		d := decideRelease(withoutBaseline(before), spec)
		d.RemoveBaseline = true
		return d
	}
	if before.Canary != nil {
		return decideInterrupted(before, spec)
	}
	return decideRelease(before, spec)
}

// decideInterrupted settles a canary an earlier apply left mid-way.
func decideInterrupted(before Status, spec Spec) Decision {
	c := before.Canary
	if len(runningOf(before, before.Revision)) == 0 {
		return Decision{Kind: Blocked, Stable: before.Revision, Revision: c.Revision, Reason: fmt.Sprintf(
			"an interrupted canary of revision %d was found, but no container of the stable revision %d runs to put traffic back on; "+
				"start them again (docker start %s) and apply again, so that the canary can be resumed or removed without leaving users on nothing",
			c.Revision, before.Revision, naming.ContainerName(spec.Environment, spec.Service, naming.TrackStable, before.Revision, 1)+"…")}
	}
	p := spec.Canary
	if p != nil && resumable(spec, containersOf(before, c.Revision), before.Baseline) {
		// Not interrupted: held at a manual step, or promoted by an action
		// while no apply ran. Both go on whatever on_interrupt says.
		if i, ok := p.ManualStepAt(c.Weight); ok && c.Held() {
			return Decision{Kind: ResumeCanary, Revision: c.Revision, Stable: before.Revision, Policy: p, FirstStep: i + 1, Continue: CommandHeld}
		}
		if c.Command == CommandPromote {
			return Decision{Kind: ResumeCanary, Revision: c.Revision, Stable: before.Revision, Policy: p, FirstStep: len(p.Steps), Continue: CommandPromote}
		}
	}
	if p != nil && p.OnInterrupt == "resume" && resumable(spec, containersOf(before, c.Revision), before.Baseline) {
		first := 0
		for first < len(p.Steps)-1 && p.Steps[first].Weight < c.Weight-1 {
			first++
		}
		return Decision{Kind: ResumeCanary, Revision: c.Revision, Stable: before.Revision, Policy: p, FirstStep: first}
	}
	if p != nil && p.OnInterrupt == "abort" && c.Digest == spec.Digest {
		return Decision{Kind: AbortCanary, Revision: c.Revision, Stable: before.Revision, Policy: p}
	}
	// The canary is not what the spec asks for any more (a revert, another
	// digest or configuration): remove it, then release as if it never ran.
	d := decideRelease(withoutCanary(before), spec)
	d.Discard = c
	return d
}

// decideRelease picks how the spec's release reaches the serving state.
func decideRelease(before Status, spec Spec) Decision {
	hash := spec.ConfigHash()
	if before.Revision > 0 && before.Digest == spec.Digest && before.ConfigHash == hash && len(containersOf(before, before.Revision)) == spec.Replicas {
		return Decision{Kind: Repair, Revision: before.Revision, Stable: before.Revision}
	}
	// A served revision with the same digest and configuration: retained
	// (stopped), or still running because a rollback was interrupted.
	for _, rev := range rollbackCandidates(before) {
		if matches(containersOf(before, rev), spec, hash) {
			return Decision{Kind: Rollback, Revision: rev, Stable: before.Revision}
		}
	}
	next := Decision{Revision: nextRevision(before), Stable: before.Revision}
	switch {
	case before.Revision == 0 && len(before.History) == 0:
		next.Kind = FirstRelease
	case spec.Canary != nil && before.Revision > 0 && before.Running > 0:
		next.Kind, next.Policy = Canary, spec.Canary
	case spec.Canary != nil && before.Revision > 0:
		next.Kind = HardSwitch
		next.Reason = fmt.Sprintf("no container of the serving revision %d runs to compare a canary with", before.Revision)
	case before.Revision == 0:
		next.Kind = HardSwitch
		next.Reason = "nothing serves now"
	default:
		next.Kind = HardSwitch
	}
	return next
}

// matches says whether a revision's containers can serve the spec as they are.
func matches(cs []docker.Container, spec Spec, hash string) bool {
	return len(cs) == spec.Replicas && cs[0].Labels[naming.LabelDigest] == spec.Digest && cs[0].Labels[naming.LabelConfigHash] == hash
}

// resumable says whether a found canary is the one the spec asks for, whole and running.
func resumable(spec Spec, canaryContainers, baseline []docker.Container) bool {
	if !matches(canaryContainers, spec, spec.ConfigHash()) || spec.Canary.Baseline != (len(baseline) > 0) {
		return false
	}
	for _, c := range append(append([]docker.Container(nil), canaryContainers...), baseline...) {
		if !usable(c) {
			return false
		}
	}
	return true
}

// nextRevision is the number a new revision takes: one past every revision
// present or remembered.
func nextRevision(st Status) int {
	n := st.Revision
	for _, c := range st.Containers {
		n = max(n, atoi(c.Labels[naming.LabelRevision]))
	}
	for _, h := range st.History {
		n = max(n, h.Revision)
	}
	return n + 1
}

// containersOf is a revision's containers, baselines aside.
func containersOf(st Status, rev int) []docker.Container {
	var out []docker.Container
	for _, c := range st.Containers {
		if atoi(c.Labels[naming.LabelRevision]) == rev && naming.TrackOf(c.Labels) != naming.TrackBaseline {
			out = append(out, c)
		}
	}
	return out
}

// runningOf is a revision's running containers, baselines aside.
func runningOf(st Status, rev int) []docker.Container {
	var out []docker.Container
	for _, c := range containersOf(st, rev) {
		if c.Running() {
			out = append(out, c)
		}
	}
	return out
}

// withoutBaseline is the status once the baseline is removed.
func withoutBaseline(st Status) Status {
	st.Containers = without(st.Containers, st.Baseline)
	st.Baseline = nil
	return st
}

// withoutCanary is the status once an interrupted canary and its baseline
// are removed and stable serves alone: the canary's revision never served.
func withoutCanary(st Status) Status {
	gone := append(containersOf(st, st.Canary.Revision), st.Baseline...)
	st = withoutBaseline(st)
	st.Containers = without(st.Containers, gone)
	var retained []int
	for _, r := range st.Retained {
		if r != st.Canary.Revision {
			retained = append(retained, r)
		}
	}
	st.Retained, st.Canary = retained, nil
	return st
}

func without(cs, drop []docker.Container) []docker.Container {
	gone := map[string]bool{}
	for _, c := range drop {
		gone[c.ID] = true
	}
	var out []docker.Container
	for _, c := range cs {
		if !gone[c.ID] {
			out = append(out, c)
		}
	}
	return out
}

// rollbackCandidates are the revisions, newest first, that served, other
// than the serving one, whose containers all ran at some time.
func rollbackCandidates(st Status) []int {
	seen := map[int]bool{}
	var out []int
	for _, c := range st.Containers {
		rev := atoi(c.Labels[naming.LabelRevision])
		if seen[rev] || rev == st.Revision || !st.Served(rev) || naming.TrackOf(c.Labels) == naming.TrackBaseline {
			continue
		}
		seen[rev] = true
		if everStarted(containersOf(st, rev)) {
			out = append(out, rev)
		}
	}
	sort.Sort(sort.Reverse(sort.IntSlice(out)))
	return out
}
