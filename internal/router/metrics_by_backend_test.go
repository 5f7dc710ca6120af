package router

import (
	"reflect"
	"strings"
	"testing"
)

// One read of every backend gives each backend what ParseServerStates
// gives it alone.
func TestParseServerStatesByBackend(t *testing.T) {
	text := exporterStates(t)
	all, err := ParseServerStatesByBackend(strings.NewReader(text))
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 2 {
		t.Errorf("backends %v, want be_t_web and be_other_web", all)
	}
	for _, backend := range []string{"be_t_web", "be_other_web", "be_gone_web"} {
		want, err := ParseServerStates(strings.NewReader(text), backend)
		if err != nil {
			t.Fatal(err)
		}
		if got := all[backend]; len(got) != len(want) || (len(want) > 0 && !reflect.DeepEqual(got, want)) {
			t.Errorf("%s = %+v, want %+v", backend, got, want)
		}
	}
}

func TestParseServerStatesByBackendSkipsOtherFamilies(t *testing.T) {
	for line, want := range map[string]bool{
		`haproxy_server_status{proxy="b",server="s",state="UP"} 1`: true,
		`# HELP haproxy_server_weight Service weight`:              true,
		`# TYPE haproxy_server_check_status gauge`:                 true,
		`haproxy_server_status_other{proxy="b",server="s"} 1`:      false,
		`haproxy_server_current_queue{proxy="b",server="s"} 0`:     false,
		`# TYPE haproxy_server_max_queue gauge`:                    false,
	} {
		if got := isStateLine(line); got != want {
			t.Errorf("isStateLine(%q) = %v, want %v", line, got, want)
		}
	}
}
