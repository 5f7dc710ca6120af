package rollout

import (
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/releasekit/terraform-provider-release/internal/docker"
	"github.com/releasekit/terraform-provider-release/internal/naming"
	"github.com/releasekit/terraform-provider-release/internal/router"
)

const (
	digest1 = "sha256:1111111111111111111111111111111111111111111111111111111111111111"
	digest2 = "sha256:2222222222222222222222222222222222222222222222222222222222222222"
	digest3 = "sha256:3333333333333333333333333333333333333333333333333333333333333333"
	digest4 = "sha256:4444444444444444444444444444444444444444444444444444444444444444"
	repo    = "127.0.0.1:5000/shop/web"
)

// deployedAt is when a revision was deployed in these tests.
func deployedAt(rev int) time.Time { return time.Unix(1700000000+int64(rev)*1000, 0).UTC() }

func digestOf(rev int) string {
	return fmt.Sprintf("sha256:%064d", rev)
}

// obsContainer is a container of an environment's service as the Docker host lists it.
func obsContainer(env, svc string, rev, replica int, state, digest, history string) docker.Container {
	return docker.Container{
		ID:    fmt.Sprintf("id-%s-%s-r%d-%d", env, svc, rev, replica),
		Name:  naming.ContainerName(env, svc, naming.TrackStable, rev, replica),
		Image: repo + "@" + digest,
		State: state,
		Labels: map[string]string{
			naming.LabelManaged:     "true",
			naming.LabelKind:        "app",
			naming.LabelEnvironment: env,
			naming.LabelService:     svc,
			naming.LabelImage:       repo + "@" + digest,
			naming.LabelDigest:      digest,
			naming.LabelRevision:    strconv.Itoa(rev),
			naming.LabelReplica:     strconv.Itoa(replica),
			naming.LabelTrack:       string(naming.TrackStable),
			naming.LabelDeployedAt:  strconv.FormatInt(deployedAt(rev).Unix(), 10),
			naming.LabelConfigHash:  "hash" + strconv.Itoa(rev),
			naming.LabelHistory:     history,
		},
		IPs: map[string]string{naming.NetworkName(env, svc): ip(rev, replica)},
	}
}

func ip(rev, replica int) string { return fmt.Sprintf("172.20.%d.%d", rev, replica) }

// routeFile renders the route that serves the given revision's replicas.
func routeFile(t *testing.T, env, svc string, rev, replicas int) map[string][]byte {
	t.Helper()
	r := router.Route{Environment: env, Service: svc, ListenPort: 8080, HealthPath: "/healthz"}
	for i := 1; i <= replicas; i++ {
		r.Servers = append(r.Servers, router.Server{Name: naming.ServerName(naming.TrackStable, rev, i), Address: ip(rev, i) + ":8080", Weight: 100})
	}
	cfg, err := router.RenderRoute(r)
	if err != nil {
		t.Fatal(err)
	}
	return map[string][]byte{router.BaseFile: []byte("base"), r.FileName(): cfg}
}

// served is the record that a revision had all traffic.
func served(rev int, digest string) docker.Container {
	return docker.Container{
		ID: fmt.Sprintf("record-%d", rev), Name: naming.ServedRecordName("production", "web", rev), State: "created",
		Labels: map[string]string{
			naming.LabelManaged: "true", naming.LabelKind: string(naming.KindServed), naming.LabelEnvironment: "production",
			naming.LabelService: "web", naming.LabelRevision: strconv.Itoa(rev), naming.LabelImage: repo + "@" + digest,
			naming.LabelDigest: digest, naming.LabelDeployedAt: strconv.FormatInt(deployedAt(rev).Unix(), 10),
		},
	}
}

func pair(rev int, state, digest, history string) []docker.Container {
	return []docker.Container{
		obsContainer("production", "web", rev, 1, state, digest, history),
		obsContainer("production", "web", rev, 2, state, digest, history),
	}
}

func concat(css ...[]docker.Container) []docker.Container {
	var out []docker.Container
	for _, cs := range css {
		out = append(out, cs...)
	}
	return out
}

func revisions(h []HistoryEntry) []int {
	out := []int{}
	for _, e := range h {
		out = append(out, e.Revision)
	}
	return out
}

func hasDrift(st Status, substr string) bool {
	for _, d := range st.Drift {
		if strings.Contains(d, substr) {
			return true
		}
	}
	return false
}

func TestObserveNothingDeployed(t *testing.T) {
	// Other environments, other services and routers are not this environment's.
	managed := concat(
		[]docker.Container{obsContainer("staging", "web", 1, 1, "running", digest1, "")},
		[]docker.Container{obsContainer("production", "api", 1, 1, "running", digest1, "")},
		[]docker.Container{{ID: "router", State: "running", Labels: map[string]string{naming.LabelManaged: "true", naming.LabelKind: "router", naming.LabelEnvironment: "production", naming.LabelService: "web"}}},
	)
	st := Observe("production", "web", managed, "router-1", routeFile(t, "production", "web", 1, 1))
	if st.Found || st.Revision != 0 || len(st.Containers) != 0 || len(st.Drift) != 0 {
		t.Errorf("Observe found %+v, want nothing", st)
	}
}

func TestObserveServingRevisionFromRoute(t *testing.T) {
	managed := concat(
		pair(1, "running", digest1, ""),
		pair(2, "running", digest2, encodeHistory([]HistoryEntry{entry(1, digest1, deployedAt(1).Unix())})),
		[]docker.Container{obsContainer("staging", "web", 9, 1, "running", digest4, "")},
	)
	// Revision 2 is newer, but the route sends traffic to revision 1.
	st := Observe("production", "web", managed, "router-1", routeFile(t, "production", "web", 1, 2))
	if !st.Found {
		t.Fatal("not found")
	}
	if st.Revision != 1 {
		t.Errorf("Revision = %d, want 1 (the routed one)", st.Revision)
	}
	if st.Digest != digest1 || st.Image != repo+"@"+digest1 || st.ConfigHash != "hash1" || !st.DeployedAt.Equal(deployedAt(1)) {
		t.Errorf("serving revision's details = %q %q %q %v, want revision 1's", st.Digest, st.Image, st.ConfigHash, st.DeployedAt)
	}
	if st.Running != 2 {
		t.Errorf("Running = %d, want 2", st.Running)
	}
	if len(st.Containers) != 4 {
		t.Errorf("%d containers, want the 4 of production/web", len(st.Containers))
	}
	if want := []string{"revision 2 runs but was never routed (an interrupted apply)"}; !reflect.DeepEqual(st.Drift, want) {
		t.Errorf("Drift = %q, want %q", st.Drift, want)
	}
}

func TestObserveInSync(t *testing.T) {
	managed := concat(pair(1, "exited", digest1, ""), pair(2, "running", digest2, encodeHistory([]HistoryEntry{entry(1, digest1, deployedAt(1).Unix())})), []docker.Container{served(2, digest2)})
	st := Observe("production", "web", managed, "router-1", routeFile(t, "production", "web", 2, 2))
	if st.Revision != 2 || st.Running != 2 || st.Digest != digest2 {
		t.Errorf("Status = rev %d, %d running, %s; want rev 2, 2 running, digest2", st.Revision, st.Running, st.Digest)
	}
	if len(st.Drift) != 0 {
		t.Errorf("Drift = %q, want none", st.Drift)
	}
	if want := []int{1}; !reflect.DeepEqual(st.Retained, want) {
		t.Errorf("Retained = %v, want %v", st.Retained, want)
	}
}

func TestObserveRouteMissing(t *testing.T) {
	managed := concat(
		pair(1, "exited", digest1, ""),
		pair(2, "running", digest2, ""),
		pair(3, "exited", digest3, ""), // newer, but not running: not what served
		[]docker.Container{served(1, digest1), served(2, digest2), served(3, digest3)},
	)
	for name, files := range map[string]map[string][]byte{
		"no file":    {router.BaseFile: []byte("base")},
		"empty file": {router.BaseFile: []byte("base"), router.RouteFileName("production", "web"): {}},
		"other env":  routeFile(t, "staging", "web", 2, 2),
	} {
		t.Run(name, func(t *testing.T) {
			st := Observe("production", "web", managed, "router-1", files)
			if st.Revision != 2 {
				t.Errorf("Revision = %d, want 2, the newest running revision", st.Revision)
			}
			if st.Digest != digest2 {
				t.Errorf("Digest = %q, want revision 2's", st.Digest)
			}
			if !hasDrift(st, "the router has no route for this service") {
				t.Errorf("Drift = %q, want the missing route", st.Drift)
			}
			if hasDrift(st, "router container is missing") {
				t.Errorf("Drift = %q: the router exists", st.Drift)
			}
			if want := []int{3, 1}; !reflect.DeepEqual(st.Retained, want) {
				t.Errorf("Retained = %v, want %v", st.Retained, want)
			}
		})
	}
	t.Run("no router", func(t *testing.T) {
		st := Observe("production", "web", managed, "", nil)
		if st.Revision != 2 {
			t.Errorf("Revision = %d, want 2", st.Revision)
		}
		if want := []string{"the router container is missing"}; !reflect.DeepEqual(st.Drift, want) {
			t.Errorf("Drift = %q, want %q", st.Drift, want)
		}
	})
}

func TestObserveStoppedServingContainer(t *testing.T) {
	managed := concat(
		[]docker.Container{
			obsContainer("production", "web", 1, 1, "running", digest1, ""),
			obsContainer("production", "web", 1, 2, "exited", digest1, ""),
		},
	)
	managed[1].IPs = map[string]string{} // a stopped container has no address
	st := Observe("production", "web", managed, "router-1", routeFile(t, "production", "web", 1, 2))
	if st.Revision != 1 || st.Running != 1 {
		t.Errorf("Revision %d with %d running, want 1 with 1", st.Revision, st.Running)
	}
	if !hasDrift(st, "container production-web-r1-2 is exited") {
		t.Errorf("Drift = %q, want the stopped container named", st.Drift)
	}
	if !hasDrift(st, "the route sends traffic to "+ip(1, 2)+":8080, which no running container of revision 1 has") {
		t.Errorf("Drift = %q, want the dead route target named", st.Drift)
	}
	if hasDrift(st, ip(1, 1)) {
		t.Errorf("Drift = %q names the healthy server", st.Drift)
	}
	if len(st.Retained) != 0 {
		t.Errorf("Retained = %v: the serving revision is never retained", st.Retained)
	}
}

func TestObserveOlderRevisionStillRunning(t *testing.T) {
	managed := concat(pair(1, "running", digest1, ""), pair(2, "running", digest2, ""), []docker.Container{served(2, digest2)})
	st := Observe("production", "web", managed, "router-1", routeFile(t, "production", "web", 2, 2))
	if st.Revision != 2 {
		t.Errorf("Revision = %d, want 2", st.Revision)
	}
	if want := []string{"revision 1 still runs without traffic"}; !reflect.DeepEqual(st.Drift, want) {
		t.Errorf("Drift = %q, want %q", st.Drift, want)
	}
	if len(st.Retained) != 0 {
		t.Errorf("Retained = %v: a running revision is not retained", st.Retained)
	}
}

func TestObserveNewerRevisionNeverRouted(t *testing.T) {
	managed := concat(pair(1, "exited", digest1, ""), pair(2, "running", digest2, ""), pair(3, "running", digest3, ""), []docker.Container{served(1, digest1), served(2, digest2)})
	st := Observe("production", "web", managed, "router-1", routeFile(t, "production", "web", 2, 2))
	if st.Revision != 2 {
		t.Errorf("Revision = %d, want 2", st.Revision)
	}
	if want := []string{"revision 3 runs but was never routed (an interrupted apply)"}; !reflect.DeepEqual(st.Drift, want) {
		t.Errorf("Drift = %q, want %q", st.Drift, want)
	}
}

func TestObserveRouteToUnknownAddress(t *testing.T) {
	managed := concat(pair(1, "running", digest1, ""), []docker.Container{served(1, digest1)})
	files := routeFile(t, "production", "web", 1, 2)
	// Someone edited the route: replica 2 is now a foreign address.
	name := router.RouteFileName("production", "web")
	files[name] = []byte(strings.Replace(string(files[name]), ip(1, 2)+":8080", "10.9.9.9:8080", 1))
	st := Observe("production", "web", managed, "router-1", files)
	if want := []string{"the route sends traffic to 10.9.9.9:8080, which no running container of revision 1 has"}; !reflect.DeepEqual(st.Drift, want) {
		t.Errorf("Drift = %q, want %q", st.Drift, want)
	}
}

func TestObserveRetainedNewestFirst(t *testing.T) {
	managed := concat(
		pair(2, "exited", digest2, ""),
		pair(5, "running", digest4, ""),
		pair(1, "exited", digest1, ""),
		pair(4, "created", digest3, ""),
		pair(3, "exited", digest3, ""),
		[]docker.Container{served(1, digest1), served(2, digest2), served(3, digest3), served(4, digest3), served(5, digest4)},
	)
	st := Observe("production", "web", managed, "router-1", routeFile(t, "production", "web", 5, 2))
	// Revision 4's containers were created but never started: no rollback target.
	if want := []int{3, 2, 1}; !reflect.DeepEqual(st.Retained, want) {
		t.Errorf("Retained = %v, want %v", st.Retained, want)
	}
	if len(st.Drift) != 0 {
		t.Errorf("Drift = %q, want none", st.Drift)
	}
}

func TestObserveHistoryMergesLabels(t *testing.T) {
	// Revisions 1..4 were deployed; 1 and 2 were pruned and live on only in labels.
	h3 := encodeHistory([]HistoryEntry{entry(2, digest2, deployedAt(2).Unix()), entry(1, digest1, deployedAt(1).Unix())})
	h4 := encodeHistory([]HistoryEntry{entry(3, digest3, deployedAt(3).Unix()), entry(2, digest2, deployedAt(2).Unix()), entry(1, digest1, deployedAt(1).Unix())})
	managed := concat(pair(3, "exited", digest3, h3), pair(4, "running", digest4, h4))
	st := Observe("production", "web", managed, "router-1", routeFile(t, "production", "web", 4, 2))
	if got, want := revisions(st.History), []int{3, 2, 1}; !reflect.DeepEqual(got, want) {
		t.Fatalf("History revisions = %v, want %v", got, want)
	}
	if st.History[0].Digest != digest3 || !st.History[0].DeployedAt.Equal(deployedAt(3)) || st.History[0].Image != repo+"@"+digest3 {
		t.Errorf("History[0] = %+v, want revision 3's", st.History[0])
	}
	if st.History[2].Digest != digest1 {
		t.Errorf("History[2] = %+v, want revision 1's", st.History[2])
	}
}

func TestObserveHistoryAfterRollback(t *testing.T) {
	// Revision 2 replaced 1 and carries 1 in its history label; then the
	// retained revision 1 was restarted. Its own labels are older and know
	// nothing of revision 2, yet history must still show it.
	h2 := encodeHistory([]HistoryEntry{entry(1, digest1, deployedAt(1).Unix())})
	managed := concat(pair(1, "running", digest1, ""), pair(2, "exited", digest2, h2), []docker.Container{served(1, digest1), served(2, digest2)})
	st := Observe("production", "web", managed, "router-1", routeFile(t, "production", "web", 1, 2))
	if st.Revision != 1 || st.Digest != digest1 {
		t.Fatalf("serving revision %d (%s), want 1", st.Revision, st.Digest)
	}
	if got, want := revisions(st.History), []int{2}; !reflect.DeepEqual(got, want) {
		t.Errorf("History revisions = %v, want %v (the serving revision is not history)", got, want)
	}
	if len(st.History) > 0 && (st.History[0].Digest != digest2 || !st.History[0].DeployedAt.Equal(deployedAt(2))) {
		t.Errorf("History[0] = %+v, want revision 2's", st.History[0])
	}
	if want := []int{2}; !reflect.DeepEqual(st.Retained, want) {
		t.Errorf("Retained = %v, want %v", st.Retained, want)
	}
	if len(st.Drift) != 0 {
		t.Errorf("Drift = %q, want none", st.Drift)
	}
}

func TestObserveHistoryCapped(t *testing.T) {
	var h []HistoryEntry
	for rev := 70; rev >= 1; rev-- {
		h = append(h, entry(rev, digestOf(rev), deployedAt(rev).Unix()))
	}
	// A label holds at most maxHistory, but two labels together hold more.
	managed := concat(pair(71, "running", digestOf(71), encodeHistory(h)), pair(30, "exited", digestOf(30), encodeHistory(h[50:])))
	st := Observe("production", "web", managed, "router-1", routeFile(t, "production", "web", 71, 2))
	if len(st.History) != maxHistory {
		t.Fatalf("%d history entries, want %d", len(st.History), maxHistory)
	}
	if st.History[0].Revision != 70 || st.History[maxHistory-1].Revision != 70-maxHistory+1 {
		t.Errorf("history spans %d..%d, want the newest 70..%d", st.History[0].Revision, st.History[maxHistory-1].Revision, 70-maxHistory+1)
	}
}

// Present is not served: a revision waiting for health, an aborted canary's
// stopped containers and a revision never started are neither verified,
// history nor a rollback target.
func TestObserveOnlyWhatServedCounts(t *testing.T) {
	h := encodeHistory([]HistoryEntry{entry(1, digest1, deployedAt(1).Unix())})
	managed := concat(
		pair(1, "running", digest1, ""), []docker.Container{served(1, digest1)},
		pair(2, "exited", digest2, h),  // an aborted canary, stopped but not removed
		pair(3, "running", digest3, h), // waiting for health
	)
	st := Observe("production", "web", managed, "router-1", routeFile(t, "production", "web", 1, 2))
	if got := st.Verified(); !reflect.DeepEqual(got, []string{digest1}) {
		t.Errorf("Verified = %v, want only %s", got, digest1)
	}
	if len(st.History) != 0 || len(st.Retained) != 0 {
		t.Errorf("History %v, Retained %v; want none: revisions 2 and 3 never served", revisions(st.History), st.Retained)
	}
	if d := Decide(st, webSpec("production", digest2)); d.Kind == Rollback {
		t.Errorf("Decide = %q: an aborted canary's containers were taken for a retained revision", d)
	}
}

// A revision routed without a record (killed after the switch, before the
// record) is drift that the next apply records.
func TestObserveRoutedButNotRecorded(t *testing.T) {
	st := Observe("production", "web", pair(1, "running", digest1, ""), "router-1", routeFile(t, "production", "web", 1, 2))
	if !hasDrift(st, "revision 1 is routed but not recorded as served") || len(st.Verified()) != 0 {
		t.Errorf("Drift %q, Verified %v; want the missing record as drift and nothing verified", st.Drift, st.Verified())
	}
}

// An abort killed between stopping the canary and removing it leaves
// stopped containers that never served and a stopped baseline: drift, so
// the next plan is not empty and the next apply removes them.
func TestObserveStoppedLeftoversOfAnAbortAreDrift(t *testing.T) {
	h := encodeHistory([]HistoryEntry{entry(1, digest1, deployedAt(1).Unix())})
	baseline := pair(1, "exited", digest1, "")
	for i := range baseline {
		baseline[i].ID += "-b"
		baseline[i].Labels[naming.LabelTrack] = string(naming.TrackBaseline)
	}
	managed := concat(revisionOf(webSpec("production", digest1), 1, "running", digest1, naming.TrackStable), []docker.Container{served(1, digest1)}, pair(2, "exited", digest2, h), baseline)
	st := Observe("production", "web", managed, "router-1", routeFile(t, "production", "web", 1, 2))
	if !hasDrift(st, "revision 2 never served") || !hasDrift(st, "stopped baseline containers") {
		t.Errorf("Drift = %q, want the never-served revision and the stopped baseline", st.Drift)
	}
	if d := Decide(st, webSpec("production", digest1)); d.Kind != Repair || !d.RemoveBaseline {
		t.Errorf("Decide = %q, want a repair that removes the baseline", d)
	}
}
