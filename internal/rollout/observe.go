package rollout

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/releasekit/terraform-provider-release/internal/docker"
	"github.com/releasekit/terraform-provider-release/internal/naming"
	"github.com/releasekit/terraform-provider-release/internal/router"
)

// Status is what runs for an environment's service, read from the host alone.
type Status struct {
	Found      bool
	Revision   int // the revision the route serves; 0 if none
	Image      string
	Digest     string
	DeployedAt time.Time
	ConfigHash string
	Running    int // running containers of that revision
	History    []HistoryEntry
	// Retained are revisions whose stopped containers can be restarted for a rollback.
	Retained []int
	// Drift says, in words, how the host differs from the last apply.
	Drift []string
	// Containers of this environment's service, all revisions.
	Containers []docker.Container
	// Canary is set when the route still sends traffic to a canary: a
	// canary is under way, or an apply was interrupted during one.
	Canary *CanaryStatus
	// Baseline holds the baseline containers of a canary.
	Baseline []docker.Container
	// LiveMismatch says the router's running worker does not serve what its
	// route file says (a route written but never loaded).
	LiveMismatch bool
	// ListenPort is the router listener the route binds (0: no route).
	ListenPort int
	// Port is the port the serving revision's containers listen on, from
	// their label (0: containers from before the label).
	Port int
	// Recorded are the revisions recorded as having had all traffic.
	Recorded map[int]bool
	// records are the served records, by revision.
	records map[int]docker.Container
}

// Served says whether a revision had all of the environment's traffic at some time.
func (s Status) Served(rev int) bool { return s.Recorded[rev] }

// Verified are the digests that completed a rollout here, the serving one
// first: every revision that served, including a canary once promoted. A
// canary under way or aborted is not among them.
func (s Status) Verified() []string {
	var out []string
	seen := map[string]bool{}
	add := func(d string) {
		if d != "" && !seen[d] {
			seen[d] = true
			out = append(out, d)
		}
	}
	if s.Recorded[s.Revision] {
		add(s.Digest)
	}
	for _, h := range s.History {
		add(h.Digest)
	}
	return out
}

// CanaryStatus is a canary found in the route.
type CanaryStatus struct {
	Revision int
	Digest   string
	// Weight is the canary's share of traffic in percent.
	Weight int
	// Command is a command left for this canary and not carried out yet:
	// CommandHeld when an apply ended at a manual step, or an action's.
	Command CanaryCommand
}

// Held says the canary waits at a manual step for the next apply.
func (c *CanaryStatus) Held() bool { return c != nil && c.Command == CommandHeld }

// Observe reads an environment's service from a listing of managed
// containers and the router's files, both of which callers may share
// between environments (one listing per host, one read per router).
func Observe(environment, service string, managed []docker.Container, routerID string, routerFiles map[string][]byte) Status {
	return ObserveLive(environment, service, managed, routerID, routerFiles, nil)
}

// ObserveLive is Observe that also knows what the router's running worker
// serves (nil: not read). When it differs from the route file (a route
// written but never loaded), what runs decides which revision serves.
func ObserveLive(environment, service string, managed []docker.Container, routerID string, routerFiles map[string][]byte, live map[string]router.ServerState) Status {
	st := Status{}
	byRev := st.collect(environment, service, managed)
	if !st.Found {
		return st
	}
	route := routerFiles[router.RouteFileName(environment, service)]
	st.ListenPort = router.RouteListenPort(route)
	servers := st.readRoute(route, live, byRev)
	if c := st.Canary; c != nil {
		c.Command = commandFor(environment, service, c.Revision, managed)
		if c.Held() {
			st.Drift = append(st.Drift, fmt.Sprintf("a canary of revision %d is held at %d%% of traffic by a manual step: the next apply continues it", c.Revision, c.Weight))
		} else {
			st.Drift = append(st.Drift, fmt.Sprintf("a canary of revision %d still gets %d%% of traffic: an apply was interrupted during it", c.Revision, c.Weight))
		}
	}
	routed := routedRevision(servers, byRev)
	if len(servers) == 0 {
		if routerID == "" {
			st.Drift = append(st.Drift, "the router container is missing")
		} else {
			st.Drift = append(st.Drift, "the router has no route for this service")
		}
	}
	st.Revision = routed
	cs := byRev[routed]
	if len(cs) > 0 {
		l := cs[0].Labels
		st.Image, st.Digest, st.ConfigHash = l[naming.LabelImage], l[naming.LabelDigest], l[naming.LabelConfigHash]
		st.Port = atoi(l[naming.LabelPort])
		if unix, err := strconv.ParseInt(l[naming.LabelDeployedAt], 10, 64); err == nil {
			st.DeployedAt = time.Unix(unix, 0).UTC()
		}
	}
	// Only what served counts as history, verified or retained: the
	// revisions with a served record (written once the router confirmed it
	// had all traffic) and those earlier containers name in their history.
	// A revision waiting for health, a canary (under way or aborted) and
	// containers never started are present but never served.
	records := servedRecords(environment, service, managed)
	st.records = records
	st.Recorded = servedRevisions(byRev, records)
	if routed > 0 && !st.Recorded[routed] && len(servers) > 0 {
		st.Drift = append(st.Drift, fmt.Sprintf("revision %d is routed but not recorded as served (an apply was interrupted after the switch)", routed))
	}
	st.History = mergeHistory(routed, byRev, records, st.Recorded)
	for _, c := range cs {
		if c.Running() {
			st.Running++
		} else {
			st.Drift = append(st.Drift, fmt.Sprintf("container %s is %s", c.Name, c.State))
		}
	}
	st.checkAddresses(servers, routed)
	st.checkRevisions(byRev, routed)
	sort.Sort(sort.Reverse(sort.IntSlice(st.Retained)))
	sort.Strings(st.Drift)
	return st
}

// collect keeps the environment's application containers, baselines
// apart, and groups the others by revision.
func (st *Status) collect(environment, service string, managed []docker.Container) map[int][]docker.Container {
	byRev := map[int][]docker.Container{}
	for _, c := range managed {
		if c.Labels[naming.LabelEnvironment] != environment || c.Labels[naming.LabelService] != service || !naming.KindApp.Is(c.Labels) {
			continue
		}
		st.Containers = append(st.Containers, c)
		if naming.TrackOf(c.Labels) == naming.TrackBaseline {
			st.Baseline = append(st.Baseline, c)
			continue
		}
		rev := atoi(c.Labels[naming.LabelRevision])
		byRev[rev] = append(byRev[rev], c)
	}
	st.Found = len(st.Containers) > 0
	return byRev
}

// readRoute returns the servers that serve: the route file's, or what the
// router's worker runs when that differs (a route written, never loaded).
// A canary in it is noted.
func (st *Status) readRoute(route []byte, live map[string]router.ServerState, byRev map[int][]docker.Container) []router.Server {
	servers := router.ParseRouteServers(route)
	if live != nil && !router.LiveMatches(route, live) {
		st.LiveMismatch = true
		st.Drift = append(st.Drift, "the router runs another route than its file holds (an apply was interrupted between writing the route and loading it)")
		servers = servers[:0]
		for name, l := range live {
			if l.Status == "MAINT" {
				continue // no traffic, whatever weight the exporter reports
			}
			servers = append(servers, router.Server{Name: name, Weight: l.Weight})
		}
	}
	canaryWeight, totalWeight := 0, 0
	for _, s := range servers {
		totalWeight += s.Weight
		if name, _ := naming.ParseServerName(s.Name); name.Track == naming.TrackCanary {
			canaryWeight += s.Weight
			st.Canary = &CanaryStatus{Revision: name.Revision}
		}
	}
	if st.Canary != nil {
		if totalWeight > 0 {
			st.Canary.Weight = (100*canaryWeight + totalWeight/2) / totalWeight
		}
		if cs := byRev[st.Canary.Revision]; len(cs) > 0 {
			st.Canary.Digest = cs[0].Labels[naming.LabelDigest]
		}
	}
	return servers
}

// routedRevision is the stable revision the servers give traffic to; with
// no route, the newest revision with running containers is what served.
func routedRevision(servers []router.Server, byRev map[int][]docker.Container) int {
	// A stable server with no weight beside weighted ones is being checked
	// by the router, not served. A canary's last step with a baseline gives
	// stable no weight at all: it is still the stable revision.
	routed, unweighted := 0, 0
	for _, s := range servers {
		name, _ := naming.ParseServerName(s.Name)
		switch {
		case name.Track != naming.TrackStable:
		case s.Weight > 0:
			routed = max(routed, name.Revision)
		default:
			unweighted = max(unweighted, name.Revision)
		}
	}
	if routed == 0 {
		routed = unweighted
	}
	if len(servers) == 0 {
		for rev, cs := range byRev {
			if rev > routed && anyRunning(cs) {
				routed = rev
			}
		}
	}
	return routed
}

// checkAddresses notes routed servers that no running container answers
// at, and servers resolved through Swarm's DNS whose service runs no task.
func (st *Status) checkAddresses(servers []router.Server, routed int) {
	addrs := map[string]bool{}
	for _, c := range st.Containers {
		if c.Running() {
			for _, ip := range c.IPs {
				addrs[ip] = true
			}
			if c.Task != nil && c.Task.Service != "" {
				addrs[naming.SwarmTasksName(c.Task.Service)] = true
			}
		}
	}
	for _, s := range servers {
		if s.Address == "" {
			continue // read from the running worker, which does not say
		}
		ip := s.Address
		if i := strings.LastIndexByte(ip, ':'); i > 0 {
			ip = ip[:i]
		}
		if !addrs[ip] {
			st.Drift = append(st.Drift, fmt.Sprintf("the route sends traffic to %s, which no running container of revision %d has", s.Address, routed))
		}
	}
}

// checkRevisions notes revisions running without traffic and collects the
// retained ones: served, stopped, every container started once.
func (st *Status) checkRevisions(byRev map[int][]docker.Container, routed int) {
	for rev, cs := range byRev {
		if rev == routed {
			continue
		}
		canary := st.Canary != nil && st.Canary.Revision == rev
		switch {
		case anyRunning(cs) && rev < routed:
			st.Drift = append(st.Drift, fmt.Sprintf("revision %d still runs without traffic", rev))
		case anyRunning(cs) && !canary:
			st.Drift = append(st.Drift, fmt.Sprintf("revision %d runs but was never routed (an interrupted apply)", rev))
		case !anyRunning(cs) && !canary && !st.Recorded[rev]:
			st.Drift = append(st.Drift, fmt.Sprintf("revision %d never served; an interrupted apply left its stopped containers", rev))
		}
		if !anyRunning(cs) && st.Recorded[rev] && everStarted(cs) {
			st.Retained = append(st.Retained, rev)
		}
	}
	switch {
	case st.Canary == nil && anyRunning(st.Baseline):
		st.Drift = append(st.Drift, "baseline containers of a finished canary still run")
	case st.Canary == nil && len(st.Baseline) > 0:
		st.Drift = append(st.Drift, "an interrupted apply left the stopped baseline containers of a canary")
	}
}

func anyRunning(cs []docker.Container) bool {
	for _, c := range cs {
		if c.Running() {
			return true
		}
	}
	return false
}

func atoi(s string) int { n, _ := strconv.Atoi(s); return n }

// ListManaged lists every container the provider manages on a host, in one call.
func ListManaged(ctx context.Context, h Host) ([]docker.Container, error) {
	return h.List(ctx, naming.Managed())
}

// servedRevisions are the revisions containers recorded as served: each
// records, when it is created, the history of the environment up to then.
func servedRevisions(byRev map[int][]docker.Container, records map[int]docker.Container) map[int]bool {
	served := map[int]bool{}
	for rev := range records {
		served[rev] = true
	}
	for _, cs := range byRev {
		for _, c := range cs {
			for _, h := range decodeHistory(c.Labels[naming.LabelHistory]) {
				served[h.Revision] = true
			}
		}
	}
	return served
}

// everStarted says whether every container ran at some time: one only
// created (an apply killed before it started it) is no rollback target.
func everStarted(cs []docker.Container) bool {
	for _, c := range cs {
		if c.State == "created" {
			return false
		}
	}
	return len(cs) > 0
}

// mergeHistory gathers the earlier revisions that served: the history
// label each container carries and the served revisions still present, so
// a rollback to a retained revision (whose labels are older) loses nothing.
func mergeHistory(current int, byRev map[int][]docker.Container, records map[int]docker.Container, served map[int]bool) []HistoryEntry {
	seen := map[int]HistoryEntry{}
	for rev, r := range records {
		seen[rev] = entryOf(rev, r.Labels)
	}
	for rev, cs := range byRev {
		l := cs[0].Labels
		for _, h := range decodeHistory(l[naming.LabelHistory]) {
			seen[h.Revision] = h
		}
		if !served[rev] {
			continue
		}
		seen[rev] = entryOf(rev, l)
	}
	delete(seen, current)
	out := make([]HistoryEntry, 0, len(seen))
	for _, h := range seen {
		out = append(out, h)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Revision > out[j].Revision })
	if len(out) > maxHistory {
		out = out[:maxHistory]
	}
	return out
}

// entryOf is the history entry that a revision's labels describe.
func entryOf(rev int, l map[string]string) HistoryEntry {
	e := HistoryEntry{Revision: rev, Image: l[naming.LabelImage], Digest: l[naming.LabelDigest]}
	if unix, err := strconv.ParseInt(l[naming.LabelDeployedAt], 10, 64); err == nil {
		e.DeployedAt = time.Unix(unix, 0).UTC()
	}
	return e
}
