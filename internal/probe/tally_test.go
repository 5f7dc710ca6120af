package probe

import (
	"reflect"
	"testing"
)

func TestTallyArgsAndGreeting(t *testing.T) {
	if got := TallyArgs([]float64{0.001, 0.5, 60}); !reflect.DeepEqual(got, []string{"-tally", "0.001,0.5,60"}) {
		t.Errorf("TallyArgs = %q", got)
	}
	if addr, ok := ParseTallyGreeting("release-probe tally 1 127.0.0.1:40123\n"); !ok || addr != "127.0.0.1:40123" {
		t.Errorf("greeting = %q, %t", addr, ok)
	}
	for _, bad := range []string{"release-probe serve 1 abc\n", "usage: release-probe <port>\n", "release-probe tally 1 10.0.0.1:1\n"} {
		if _, ok := ParseTallyGreeting(bad); ok {
			t.Errorf("%q taken for a tally's greeting", bad)
		}
	}
}

func TestParseTally(t *testing.T) {
	got, err := ParseTally("received 9 unparsed 1 dropped 2\nbe_a c2-1 5 1 40 1,3,1\nbe_a r1-1 3 0 9 3,0,0\n")
	if err != nil {
		t.Fatal(err)
	}
	want := Tally{Received: 9, Unparsed: 1, Dropped: 2, Servers: map[string]map[string]ServerTally{"be_a": {
		"c2-1": {Requests: 5, Errors: 1, LatencyMs: 40, Buckets: []int64{1, 3, 1}},
		"r1-1": {Requests: 3, LatencyMs: 9, Buckets: []int64{3, 0, 0}},
	}}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("ParseTally = %+v\nwant %+v", got, want)
	}
	if got, err := ParseTally("received 0 unparsed 0 dropped -1\n"); err != nil || got.Dropped != -1 || len(got.Servers) != 0 {
		t.Errorf("empty tally = %+v, %v", got, err)
	}
	for _, bad := range []string{"", "nonsense\n", "received 1 unparsed 0 dropped 0\nbe_a c2-1 x 0 0 1\n", "received 1 unparsed 0 dropped 0\nbe_a c2-1 1 0 0\n"} {
		if _, err := ParseTally(bad); err == nil {
			t.Errorf("ParseTally(%q) accepted", bad)
		}
	}
}
