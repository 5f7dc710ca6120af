package naming

import "testing"

func TestServerNameRoundTrip(t *testing.T) {
	for _, track := range []Track{TrackStable, TrackCanary, TrackBaseline} {
		for _, rev := range []int{1, 9, 10, 123} {
			for _, replica := range []int{1, 2, 50} {
				name := ServerName(track, rev, replica)
				got, ok := ParseServerName(name)
				if !ok || got != (Server{track, rev, replica}) {
					t.Errorf("ParseServerName(%q) = %+v, %v; want %v %d %d", name, got, ok, track, rev, replica)
				}
			}
		}
	}
}

func TestServerNameFormat(t *testing.T) {
	for _, tc := range []struct {
		track Track
		want  string
	}{{TrackStable, "r3-1"}, {TrackCanary, "c3-1"}, {TrackBaseline, "b3-1"}, {"", "r3-1"}} {
		if got := ServerName(tc.track, 3, 1); got != tc.want {
			t.Errorf("ServerName(%q, 3, 1) = %q, want %q", tc.track, got, tc.want)
		}
	}
}

func TestParseServerNameRejectsOthers(t *testing.T) {
	for _, name := range []string{"", "r", "r1", "r1-", "x1-1", "r-1-1", "r01-1", "r1-01", "r0-1", "r1-0", "rr1-1", "r1-1-1", "web"} {
		if s, ok := ParseServerName(name); ok {
			t.Errorf("ParseServerName(%q) = %+v, want not ok", name, s)
		}
	}
}

func TestContainerAndNetworkNames(t *testing.T) {
	if got := ContainerName("prod", "web", TrackStable, 2, 1); got != "prod-web-r2-1" {
		t.Errorf("stable: %q", got)
	}
	if got := ContainerName("prod", "web", TrackCanary, 2, 1); got != "prod-web-r2-1" {
		t.Errorf("canary: %q", got)
	}
	if got := ContainerName("prod", "web", TrackBaseline, 1, 2); got != "prod-web-b1-2" {
		t.Errorf("baseline: %q", got)
	}
	if got := NetworkName("prod", "web"); got != "release-prod-web" {
		t.Errorf("network: %q", got)
	}
}

func TestTrackOfAndKind(t *testing.T) {
	if TrackOf(map[string]string{}) != TrackStable || TrackOf(map[string]string{LabelTrack: "canary"}) != TrackCanary ||
		TrackOf(map[string]string{LabelTrack: "odd"}) != TrackStable {
		t.Error("TrackOf")
	}
	if !KindApp.Is(map[string]string{LabelKind: "app"}) || KindRouter.Is(map[string]string{LabelKind: "app"}) {
		t.Error("Kind.Is")
	}
}
