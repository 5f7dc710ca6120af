package router

import (
	"reflect"
	"strings"
	"testing"
	"time"
)

func runtimeRoute(t *testing.T, sticky bool, servers ...Server) []byte {
	t.Helper()
	return mustRenderRoute(t, Route{Environment: "prod", Service: "web", ListenPort: 8080, HealthPath: "/healthz", Sticky: sticky, Servers: servers})
}

// A change of servers (weights, drain, added, removed) and of stickiness
// goes through the runtime API; any other change of the route reloads.
func TestPlanRuntimeDecidesRuntimeOrReload(t *testing.T) {
	s1 := Server{Name: "s1-1", Address: "10.0.0.2:8080", Weight: 200}
	c2 := Server{Name: "c2-1", Address: "10.0.0.3:8080", Weight: 56}
	b1 := Server{Name: "b1-1", Address: "10.0.0.4:8080", Weight: 56}
	with := func(s Server, weight int, drain bool) Server { s.Weight, s.Drain = weight, drain; return s }
	base := runtimeRoute(t, true, s1, c2, b1)
	yes, no := true, false

	for _, tc := range []struct {
		name    string
		next    []byte
		ok      bool
		weights bool // WeightChanges takes it too
		want    RuntimePlan
	}{
		{"same route", base, true, true, RuntimePlan{}},
		{"a canary step", runtimeRoute(t, true, with(s1, 128, false), with(c2, 128, false), b1),
			true, true, RuntimePlan{Changes: []WeightChange{{Server: "c2-1", Weight: 128}, {Server: "s1-1", Weight: 128}}}},
		{"promotion drains stable and baseline", runtimeRoute(t, true, with(s1, 0, true), with(c2, 256, false), with(b1, 0, true)),
			true, true, RuntimePlan{Changes: []WeightChange{{Server: "b1-1", Drain: true}, {Server: "c2-1", Weight: 256}, {Server: "s1-1", Drain: true}}}},
		{"abort to weight 0 without drain", runtimeRoute(t, true, s1, with(c2, 0, false), b1),
			true, true, RuntimePlan{Changes: []WeightChange{{Server: "c2-1", Weight: 0}}}},
		{"a server added", runtimeRoute(t, true, s1, c2, b1, Server{Name: "c2-2", Address: "10.0.0.5:8080", Weight: 56}),
			true, false, RuntimePlan{Add: []Server{{Name: "c2-2", Address: "10.0.0.5:8080", Weight: 56}}}},
		{"a server removed", runtimeRoute(t, true, s1, c2),
			true, false, RuntimePlan{Remove: []string{"b1-1"}}},
		{"a server renamed (promoted to stable)", runtimeRoute(t, true, s1, with(c2, 56, false), Server{Name: "s9-1", Address: b1.Address, Weight: 56}),
			true, false, RuntimePlan{Add: []Server{{Name: "s9-1", Address: b1.Address, Weight: 56}}, Remove: []string{"b1-1"}}},
		{"stickiness ends", runtimeRoute(t, false, s1, c2, b1), true, false, RuntimePlan{Sticky: &no}},
		{"a server moved", runtimeRoute(t, true, s1, c2, Server{Name: "b1-1", Address: "10.0.0.9:8080", Weight: 56}), false, false, RuntimePlan{}},
		{"no previous route", nil, false, false, RuntimePlan{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			prev := base
			if tc.next == nil {
				prev, tc.next = nil, base
			}
			plan, ok := PlanRuntime(prev, tc.next)
			if ok != tc.ok {
				t.Fatalf("ok = %t, want %t", ok, tc.ok)
			}
			if _, _, wok := WeightChanges(prev, tc.next); wok != tc.weights {
				t.Errorf("WeightChanges ok = %t, want %t", wok, tc.weights)
			}
			if !ok {
				return
			}
			if plan.Backend != "be_prod_web" {
				t.Errorf("backend = %q", plan.Backend)
			}
			got := RuntimePlan{Add: plan.Add, Changes: plan.Changes, Remove: plan.Remove, Sticky: plan.Sticky}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("plan = %+v, want %+v", got, tc.want)
			}
		})
	}
	if plan, ok := PlanRuntime(runtimeRoute(t, false, s1), base); !ok || plan.Sticky == nil || *plan.Sticky != yes {
		t.Errorf("a canary's start is not planned as stickiness on: %+v %t", plan, ok)
	}

	// Another setting of the route (the check interval) reloads, and so
	// does a route an earlier version wrote (per-server cookies).
	r := Route{Environment: "prod", Service: "web", ListenPort: 8080, HealthPath: "/healthz", Sticky: true, Servers: []Server{s1, c2, b1}, CheckInterval: 5 * time.Second}
	if _, ok := PlanRuntime(base, mustRenderRoute(t, r)); ok {
		t.Error("a changed check interval was planned through the runtime API")
	}
	earlier := "backend be_prod_web\n    balance roundrobin\n    default-server inter 2s fastinter 100ms fall 3 rise 2\n" +
		"    cookie rls_prod_web insert indirect nocache\n    server s1-1 10.0.0.2:8080 check weight 200 cookie s1-1\n"
	if _, ok := PlanRuntime([]byte(earlier), base); ok {
		t.Error("a route of an earlier version was planned through the runtime API")
	}
}

func TestDrainedServerRendersInMaintenanceAndParsesBack(t *testing.T) {
	cfg := runtimeRoute(t, true, Server{Name: "s1-1", Address: "10.0.0.2:8080", Weight: 100, Drain: true})
	if !hasLine(cfg, "server s1-1 10.0.0.2:8080 check weight 0 disabled") {
		t.Errorf("a drained server is not rendered disabled with weight 0:\n%s", cfg)
	}
	got := ParseRouteServers(cfg)
	if len(got) != 1 || got[0].Weight != 0 || !got[0].Drain {
		t.Errorf("parsed back %+v", got)
	}
}

// The sticky switch is a server of its own backend, never one of the route's.
func TestStickySwitchRendersAndReadsBack(t *testing.T) {
	s1 := Server{Name: "s1-1", Address: "10.0.0.2:8080", Weight: 100}
	for _, sticky := range []bool{true, false} {
		cfg := runtimeRoute(t, sticky, s1)
		if IsSticky(cfg) != sticky {
			t.Errorf("IsSticky = %t for a route rendered sticky %t:\n%s", !sticky, sticky, cfg)
		}
		if got := ParseRouteServers(cfg); len(got) != 1 || got[0].Name != "s1-1" {
			t.Errorf("servers = %+v", got)
		}
		if backendOf(cfg) != "be_prod_web" {
			t.Errorf("backend = %q", backendOf(cfg))
		}
	}
	// A service named "sticky" is a route of its own, not a switch.
	cfg := mustRenderRoute(t, Route{Environment: "prod", Service: "sticky", ListenPort: 8080, HealthPath: "/healthz", Servers: []Server{s1}})
	if got := ParseRouteServers(cfg); len(got) != 1 || backendOf(cfg) != "be_prod_sticky" {
		t.Errorf("service sticky: servers %+v, backend %q", got, backendOf(cfg))
	}
}

func TestRuntimeCommands(t *testing.T) {
	got := RuntimeCommands("be_prod_web", []WeightChange{{Server: "b1-1", Drain: true}, {Server: "c2-1", Weight: 256}})
	want := "set server be_prod_web/c2-1 weight 256; set server be_prod_web/c2-1 state ready; " +
		"set server be_prod_web/b1-1 weight 0; set server be_prod_web/b1-1 state maint"
	if got != want {
		t.Errorf("got  %q\nwant %q", got, want)
	}
	// A hard switch's servers: the new one added DOWN with no weight, then
	// weighted; the old one drained and deleted; stickiness ends.
	prev := runtimeRoute(t, true, Server{Name: "s1-1", Address: "10.0.0.2:8080", Weight: 100}, Server{Name: "c2-1", Address: "10.0.0.3:8080", Weight: 100})
	next := runtimeRoute(t, false, Server{Name: "s2-1", Address: "10.0.0.3:8080", Weight: 100}, Server{Name: "s3-1", Address: "10.0.0.9:8080", Weight: 50})
	plan, ok := PlanRuntime(prev, next)
	if !ok {
		t.Fatal("not planned")
	}
	want = "del server be_prod_web/s2-1; add server be_prod_web/s2-1 10.0.0.3:8080 check inter 2s fastinter 50ms downinter 10ms fall 3 rise 1 weight 0; " +
		"enable server be_prod_web/s2-1; enable health be_prod_web/s2-1; " + // serving already as c2-1: UP at once
		"del server be_prod_web/s3-1; add server be_prod_web/s3-1 10.0.0.9:8080 check inter 2s fastinter 50ms downinter 10ms fall 3 rise 1 weight 0; " +
		"enable server be_prod_web/s3-1; set server be_prod_web/s3-1 health down; enable health be_prod_web/s3-1; " +
		"enable dynamic-cookie backend be_prod_web; " +
		"set server be_prod_web/s2-1 weight 100; set server be_prod_web/s3-1 weight 50; " +
		"set server be_prod_web_sticky/sticky state maint; " +
		"set server be_prod_web/c2-1 weight 0; set server be_prod_web/c2-1 state maint; del server be_prod_web/c2-1; " +
		"set server be_prod_web/s1-1 weight 0; set server be_prod_web/s1-1 state maint; del server be_prod_web/s1-1; " +
		"show servers state be_prod_web; show servers state be_prod_web_sticky"
	if got := plan.Commands(); got != want {
		t.Errorf("got  %q\nwant %q", got, want)
	}
}

// Measured with HAProxy 2.6.12: a server disabled in the file has admin
// state 5 (FMAINT|CMAINT); `state ready` leaves 4 (CMAINT, a record of the
// file only), which is not maintenance.
const showServersState = `1
# be_id be_name srv_id srv_name srv_addr srv_op_state srv_admin_state srv_uweight srv_iweight srv_time_since_last_change srv_check_status srv_check_result srv_check_health srv_check_state srv_agent_state bk_f_forced_id srv_f_forced_id srv_fqdn srv_port srvrecord srv_use_ssl srv_check_port srv_check_addr srv_agent_addr srv_agent_port
4 be_prod_web 1 s1-1 10.0.0.2 2 0 100 100 2 15 3 4 6 0 0 0 - 8080 - 0 0 - - 0
4 be_prod_web 2 c2-1 10.0.0.3 0 5 0 0 2 1 0 0 14 0 0 0 - 8080 - 0 0 - - 0
4 be_prod_web 3 b1-1 10.0.0.4 2 4 7 0 1 1 0 2 6 0 0 0 - 8080 - 0 0 - - 0
5 be_other_web 1 s1-1 10.0.0.8 2 0 100 100 2 15 3 4 6 0 0 0 - 8080 - 0 0 - - 0

`

func TestParseServersState(t *testing.T) {
	got, err := ParseServersState(showServersState, "be_prod_web")
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]RuntimeServer{"s1-1": {Address: "10.0.0.2:8080", Weight: 100}, "c2-1": {Address: "10.0.0.3:8080", Weight: 0, Maint: true}, "b1-1": {Address: "10.0.0.4:8080", Weight: 7}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %+v, want %+v", got, want)
	}
	for _, answer := range []string{"Unknown command\n", ""} {
		if _, err := ParseServersState(answer, "be_prod_web"); err == nil || !strings.Contains(err.Error(), "answered") {
			t.Errorf("answer %q: err = %v", answer, err)
		}
	}
}

func TestParseBaseReadsBackTheSettings(t *testing.T) {
	b := Base{MetricsPort: 9000, HardStopAfter: 90 * time.Second, TimeoutTunnel: 1500 * time.Millisecond}
	got, ok := ParseBase(RenderBase(b))
	if !ok || got != b {
		t.Errorf("ParseBase = %+v, %t; want %+v", got, ok, b)
	}
	// A base file of an earlier version (no runtime socket) is not one of ours.
	old := strings.Replace(string(RenderBase(b)), "    stats socket "+RuntimeSocket+" mode 600 level admin\n", "", 1)
	if _, ok := ParseBase([]byte(old)); ok {
		t.Error("a base file without the runtime socket was taken for a current one")
	}
	// An edited value is read back as it is, for the plan to show.
	edited := strings.Replace(string(RenderBase(b)), "hard-stop-after 90s", "hard-stop-after 10s", 1)
	if got, ok := ParseBase([]byte(edited)); !ok || got.HardStopAfter != 10*time.Second {
		t.Errorf("edited: %+v %t", got, ok)
	}
}

// The cookies HAProxy 2.6 derived for servers of a backend keyed "be"
// (measured): a test can pin a user to a server by its address.
func TestServerCookieIsHAProxys(t *testing.T) {
	for address, want := range map[string]string{"172.19.0.2:8080": "0fa44c5723febfc1", "172.19.0.3:8080": "947f31f61fa0fc62", "172.19.0.6:8080": "67df1ad2246496db"} {
		if got, err := dynamicCookie("be", address); err != nil || got != want {
			t.Errorf("%s: %s (%v), want %s", address, got, err, want)
		}
	}
	if _, err := ServerCookie("prod", "web", "[::1]:8080"); err == nil {
		t.Error("an IPv6 address was given a cookie")
	}
}

// Servers resolved through Docker's DNS (a Swarm service's tasks) render
// with the route's resolvers section, parse back, take weight changes at
// run time, and are added or removed by a reload only: HAProxy 2.6 never
// resolves a server added at run time.
func TestResolvedServers(t *testing.T) {
	route := func(servers ...Server) []byte {
		r := validRoute()
		r.Servers = servers
		cfg, err := RenderRoute(r)
		if err != nil {
			t.Fatal(err)
		}
		return cfg
	}
	task := func(name string, weight int) Server {
		return Server{Name: name, Address: "tasks.production-web-r2:8080", Weight: weight, Resolve: true}
	}
	one := route(task("r2-1", 100), task("r2-2", 100))
	for _, want := range []string{
		"server r2-1 tasks.production-web-r2:8080 check resolvers rs_production_web init-addr libc,none resolve-prefer ipv4 weight 100\n",
		"\nresolvers rs_production_web\n    nameserver docker 127.0.0.11:53\n",
	} {
		if !strings.Contains(string(one), want) {
			t.Errorf("the route lacks %q:\n%s", want, one)
		}
	}
	if got := ParseRouteServers(one); len(got) != 2 || !got[0].Resolve || got[0].Address != "tasks.production-web-r2:8080" || got[0].Weight != 100 {
		t.Errorf("parsed back as %+v", got)
	}
	if strings.Contains(string(route(Server{Name: "r1-1", Address: "172.18.0.2:8080", Weight: 100})), "resolvers") {
		t.Error("a route of addresses has a resolvers section")
	}

	if _, ok := PlanRuntime(one, route(task("r2-1", 30), task("r2-2", 100))); !ok {
		t.Error("a weight change of resolved servers takes a reload")
	}
	if _, ok := PlanRuntime(one, route(task("r2-1", 100), task("r2-2", 100), task("r2-3", 100))); ok {
		t.Error("a resolved server added at run time: HAProxy would never resolve it")
	}
	if _, ok := PlanRuntime(one, route(task("r2-1", 100))); ok {
		t.Error("a resolved server removed at run time")
	}
	host := route(Server{Name: "r1-1", Address: "172.18.0.2:8080", Weight: 100})
	if _, ok := PlanRuntime(host, route(Server{Name: "r1-1", Address: "172.18.0.2:8080", Weight: 100}, task("r2-1", 0))); ok {
		t.Error("from addresses to resolved servers at run time")
	}

	r := validRoute()
	r.Servers = []Server{{Name: "r2-1", Address: "tasks.x:8080\n    server evil 1.2.3.4:80", Resolve: true}}
	if _, err := RenderRoute(r); err == nil {
		t.Error("a host name with a newline was rendered")
	}
	r.Servers = []Server{{Name: "r2-1", Address: "tasks.x:8080"}}
	if _, err := RenderRoute(r); err == nil {
		t.Error("a host name rendered as an address without resolvers")
	}
}
