package rollout

import (
	"strings"
	"testing"

	"github.com/releasekit/terraform-provider-release/internal/canary"
	"github.com/releasekit/terraform-provider-release/internal/docker"
	"github.com/releasekit/terraform-provider-release/internal/naming"
	"github.com/releasekit/terraform-provider-release/internal/router"
)

// revisionOf is a revision's two replicas as the spec would have run them.
func revisionOf(spec Spec, rev int, state, digest string, track naming.Track) []docker.Container {
	s := spec
	s.Image, s.Digest = repo+"@"+digest, digest
	cs := pair(rev, state, digest, "")
	for i := range cs {
		cs[i].Labels[naming.LabelConfigHash] = s.ConfigHash()
		cs[i].Labels[naming.LabelTrack] = string(track)
		if track == naming.TrackBaseline {
			cs[i].ID += "-baseline"
			cs[i].Name = naming.ContainerName("production", "web", track, rev, i+1)
		}
	}
	return cs
}

// splitRoute routes weight percent to the canary revision and the rest to stable.
func splitRoute(t *testing.T, stable, canaryRev, weight int) map[string][]byte {
	t.Helper()
	r := router.Route{Environment: "production", Service: "web", ListenPort: 8080, HealthPath: "/healthz", Sticky: true}
	for i := 1; i <= 2; i++ {
		r.Servers = append(r.Servers,
			router.Server{Name: naming.ServerName(naming.TrackStable, stable, i), Address: ip(stable, i) + ":8080", Weight: 100 - weight},
			router.Server{Name: naming.ServerName(naming.TrackCanary, canaryRev, i), Address: ip(canaryRev, i) + ":8080", Weight: weight})
	}
	cfg, err := router.RenderRoute(r)
	if err != nil {
		t.Fatal(err)
	}
	return map[string][]byte{router.BaseFile: []byte("base"), r.FileName(): cfg}
}

func TestDecide(t *testing.T) {
	plain := webSpec("production", digest1)
	withPolicy := func(digest, onInterrupt string) Spec {
		s := webSpec("production", digest)
		p := testPolicy(false)
		p.OnInterrupt = onInterrupt
		s.Canary = &p
		return s
	}
	v2 := webSpec("production", digest2)
	for _, tc := range []struct {
		name       string
		containers []docker.Container
		route      func(t *testing.T) map[string][]byte
		spec       Spec
		want       Kind
		revision   int
		rollout    string // a part of Decision.String()
		check      func(t *testing.T, d Decision)
	}{
		{
			name: "nothing on the host", spec: plain,
			want: FirstRelease, revision: 1, rollout: "hard switch (first release)",
		},
		{
			name:       "the serving release again, a container stopped",
			containers: concat(revisionOf(plain, 1, "running", digest1, naming.TrackStable)[:1], revisionOf(plain, 1, "exited", digest1, naming.TrackStable)[1:]),
			route:      func(t *testing.T) map[string][]byte { return routeFile(t, "production", "web", 1, 2) },
			spec:       plain, want: Repair, revision: 1, rollout: "repair of revision 1",
		},
		{
			name: "the image of a retained revision",
			containers: concat(revisionOf(plain, 1, "exited", digest1, naming.TrackStable), revisionOf(v2, 2, "running", digest2, naming.TrackStable),
				[]docker.Container{served(1, digest1), served(2, digest2)}),
			route: func(t *testing.T) map[string][]byte { return routeFile(t, "production", "web", 2, 2) },
			spec:  plain, want: Rollback, revision: 1, rollout: "rollback to revision 1: a hard switch to its retained containers",
		},
		{
			// The retained containers were started, then the apply was killed
			// before the route moved: still a rollback, not a canary with a pull.
			name: "a rollback interrupted after the retained containers started",
			containers: concat(revisionOf(plain, 1, "running", digest1, naming.TrackStable), revisionOf(v2, 2, "running", digest2, naming.TrackStable),
				[]docker.Container{served(1, digest1), served(2, digest2)}),
			route: func(t *testing.T) map[string][]byte { return routeFile(t, "production", "web", 2, 2) },
			spec:  withPolicy(digest1, "abort"), want: Rollback, revision: 1, rollout: "rollback to revision 1",
		},
		{
			name: "an aborted canary's containers, stopped but not removed",
			containers: concat(revisionOf(plain, 1, "running", digest1, naming.TrackStable), revisionOf(v2, 2, "exited", digest2, naming.TrackCanary),
				[]docker.Container{served(1, digest1)}),
			route: func(t *testing.T) map[string][]byte { return routeFile(t, "production", "web", 1, 2) },
			spec:  withPolicy(digest2, "abort"), want: Canary, revision: 3, rollout: "canary: ",
		},
		{
			name:       "a new digest without a canary",
			containers: revisionOf(plain, 1, "running", digest1, naming.TrackStable),
			route:      func(t *testing.T) map[string][]byte { return routeFile(t, "production", "web", 1, 2) },
			spec:       v2, want: HardSwitch, revision: 2, rollout: "hard switch",
			check: func(t *testing.T, d Decision) {
				if d.String() != "hard switch" {
					t.Errorf("String() = %q, want exactly %q", d.String(), "hard switch")
				}
			},
		},
		{
			name:       "a new digest with a canary",
			containers: revisionOf(plain, 1, "running", digest1, naming.TrackStable),
			route:      func(t *testing.T) map[string][]byte { return routeFile(t, "production", "web", 1, 2) },
			spec:       withPolicy(digest2, "abort"), want: Canary, revision: 2, rollout: "canary: 10% for 30s → 25% for 30s → 50% for 30s → 100%",
		},
		{
			// The plan used to say canary here while the apply did a hard switch.
			name:       "a canary policy, but the serving containers are stopped",
			containers: revisionOf(plain, 1, "exited", digest1, naming.TrackStable),
			route:      func(t *testing.T) map[string][]byte { return routeFile(t, "production", "web", 1, 2) },
			spec:       withPolicy(digest2, "abort"), want: HardSwitch, revision: 2,
			rollout: "hard switch (no container of the serving revision 1 runs to compare a canary with)",
		},
		{
			name:       "route lost and nothing runs, a new digest",
			containers: concat(revisionOf(plain, 1, "exited", digest1, naming.TrackStable), []docker.Container{served(1, digest1)}),
			spec:       v2, want: HardSwitch, revision: 2, rollout: "hard switch (nothing serves now)",
		},
		{
			name:       "an interrupted canary, on_interrupt resume",
			containers: concat(revisionOf(plain, 1, "running", digest1, naming.TrackStable), revisionOf(v2, 2, "running", digest2, naming.TrackCanary)),
			route:      func(t *testing.T) map[string][]byte { return splitRoute(t, 1, 2, 25) },
			spec:       withPolicy(digest2, "resume"), want: ResumeCanary, revision: 2,
			rollout: "resume the interrupted canary of revision 2 at step 2 of 3: 25% for 30s → 50% for 30s → 100%",
			check: func(t *testing.T, d Decision) {
				if d.FirstStep != 1 || d.Stable != 1 {
					t.Errorf("FirstStep %d, Stable %d; want step index 1 (25%%) and stable 1", d.FirstStep, d.Stable)
				}
			},
		},
		{
			name:       "an interrupted canary, on_interrupt abort",
			containers: concat(revisionOf(plain, 1, "running", digest1, naming.TrackStable), revisionOf(v2, 2, "running", digest2, naming.TrackCanary)),
			route:      func(t *testing.T) map[string][]byte { return splitRoute(t, 1, 2, 25) },
			spec:       withPolicy(digest2, "abort"), want: AbortCanary, revision: 2,
			rollout: "abort the interrupted canary of revision 2 (on_interrupt = abort): every user back on revision 1",
		},
		{
			name:       "an interrupted canary whose containers stopped is not resumed",
			containers: concat(revisionOf(plain, 1, "running", digest1, naming.TrackStable), revisionOf(v2, 2, "exited", digest2, naming.TrackCanary)),
			route:      func(t *testing.T) map[string][]byte { return splitRoute(t, 1, 2, 25) },
			spec:       withPolicy(digest2, "resume"), want: Canary, revision: 2,
			rollout: "remove the interrupted canary of revision 2, then canary: 10% for 30s",
			check: func(t *testing.T, d Decision) {
				if d.Discard == nil || d.Discard.Revision != 2 {
					t.Errorf("Discard = %+v, want the canary of revision 2", d.Discard)
				}
			},
		},
		{
			name:       "an interrupted canary, then the change reverted",
			containers: concat(revisionOf(plain, 1, "running", digest1, naming.TrackStable), revisionOf(v2, 2, "running", digest2, naming.TrackCanary)),
			route:      func(t *testing.T) map[string][]byte { return splitRoute(t, 1, 2, 25) },
			spec:       withPolicy(digest1, "abort"), want: Repair, revision: 1,
			rollout: "remove the interrupted canary of revision 2, then repair of revision 1",
		},
		{
			name:       "an interrupted canary with nothing stable running",
			containers: concat(revisionOf(plain, 1, "exited", digest1, naming.TrackStable), revisionOf(v2, 2, "running", digest2, naming.TrackCanary)),
			route:      func(t *testing.T) map[string][]byte { return splitRoute(t, 1, 2, 25) },
			spec:       withPolicy(digest2, "resume"), want: Blocked, revision: 2,
			rollout: "blocked: an interrupted canary of revision 2 was found, but no container of the stable revision 1 runs",
		},
		{
			name: "a promoted canary's baseline left behind",
			containers: concat(revisionOf(plain, 1, "exited", digest1, naming.TrackStable), revisionOf(v2, 2, "running", digest2, naming.TrackCanary),
				revisionOf(plain, 1, "running", digest1, naming.TrackBaseline)),
			route: func(t *testing.T) map[string][]byte { return routeFile(t, "production", "web", 2, 2) },
			spec:  withPolicy(digest2, "abort"), want: Repair, revision: 2,
			rollout: "remove the baseline a finished canary left, then repair of revision 2",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var files map[string][]byte
			if tc.route != nil {
				files = tc.route(t)
			}
			st := Observe("production", "web", tc.containers, "router-1", files)
			d := Decide(st, tc.spec)
			if d.Kind != tc.want || d.Revision != tc.revision {
				t.Fatalf("Decide = %s of revision %d (%q), want %s of revision %d", d.Kind, d.Revision, d.String(), tc.want, tc.revision)
			}
			if !strings.Contains(d.String(), tc.rollout) {
				t.Errorf("String() = %q, want it to contain %q", d.String(), tc.rollout)
			}
			if tc.check != nil {
				tc.check(t, d)
			}
		})
	}
}

// Every kind has a name and a plan text.
func TestDecisionStringCoversEveryKind(t *testing.T) {
	p := canary.Policy{Steps: []canary.Step{{Weight: 10}}, Analysis: canary.Analysis{Interval: canary.Duration(1)}}
	for k := FirstRelease; k <= Blocked; k++ {
		if k.String() == "" || (Decision{Kind: k, Policy: &p}).String() == "" {
			t.Errorf("kind %d has no name or no plan text", k)
		}
	}
}

// At a canary's 50% step with a baseline, stable gets no weight: it is
// still the stable revision, not a server being checked.
func TestObserveCanaryAtFiftyPercentWithBaseline(t *testing.T) {
	plain := webSpec("production", digest1)
	v2 := webSpec("production", digest2)
	r := router.Route{Environment: "production", Service: "web", ListenPort: 8080, HealthPath: "/healthz", Sticky: true}
	for i := 1; i <= 2; i++ {
		r.Servers = append(r.Servers,
			router.Server{Name: naming.ServerName(naming.TrackStable, 1, i), Address: ip(1, i) + ":8080", Weight: 0},
			router.Server{Name: naming.ServerName(naming.TrackCanary, 2, i), Address: ip(2, i) + ":8080", Weight: 256},
			router.Server{Name: naming.ServerName(naming.TrackBaseline, 1, i), Address: ip(1, i) + ":8081", Weight: 256})
	}
	cfg, err := router.RenderRoute(r)
	if err != nil {
		t.Fatal(err)
	}
	managed := concat(revisionOf(plain, 1, "running", digest1, naming.TrackStable), revisionOf(v2, 2, "running", digest2, naming.TrackCanary),
		revisionOf(plain, 1, "running", digest1, naming.TrackBaseline), []docker.Container{served(1, digest1)})
	st := Observe("production", "web", managed, "router-1", map[string][]byte{r.FileName(): cfg})
	if st.Revision != 1 || st.Canary == nil || st.Canary.Revision != 2 || st.Canary.Weight != 50 {
		t.Fatalf("Observe = revision %d, canary %+v; want stable 1 and the canary of revision 2 at 50%%", st.Revision, st.Canary)
	}
	p := testPolicy(true)
	p.OnInterrupt = "resume"
	v2.Canary = &p
	if d := Decide(st, v2); d.Kind != ResumeCanary || d.Stable != 1 {
		t.Errorf("Decide = %q (stable %d), want the canary resumed over stable revision 1", d, d.Stable)
	}
}

// env_wo: its version is in the configuration hash, its values are not
// (no state holds them), and an environment without it hashes as before it
// existed, so upgrading the provider releases nothing.
func TestConfigHashTakesTheSecretEnvVersion(t *testing.T) {
	spec := Spec{Image: "registry.example.com/shop/web@sha256:" + strings.Repeat("a", 64), Port: 8080, Env: map[string]string{"A": "1"}}
	// The hash of this spec before SecretEnvVersion existed (commit ee13ad5).
	if got := spec.ConfigHash(); got != "d2fd5ea3ca2eebc1" {
		t.Errorf("hash without env_wo = %s: environments released before env_wo existed would release again", got)
	}
	with := spec
	with.SecretEnv, with.SecretEnvVersion = map[string]string{"DB": "one"}, 1
	other := with
	other.SecretEnv = map[string]string{"DB": "two"}
	if with.ConfigHash() == spec.ConfigHash() || with.ConfigHash() != other.ConfigHash() {
		t.Errorf("hashes: without %s, version 1 %s, version 1 with other values %s", spec.ConfigHash(), with.ConfigHash(), other.ConfigHash())
	}
	other.SecretEnvVersion = 2
	if other.ConfigHash() == with.ConfigHash() {
		t.Error("a new env_wo_version did not change the hash")
	}
}
