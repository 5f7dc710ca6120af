package router

import (
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

func validRoute() Route {
	return Route{
		Environment:   "production",
		Service:       "web",
		ListenPort:    8080,
		HealthPath:    "/healthz",
		CheckInterval: 2 * time.Second,
		Servers: []Server{
			{Name: "r2-2", Address: "172.18.0.4:8080", Weight: 100, Track: "stable"},
			{Name: "r2-1", Address: "172.18.0.3:8080", Weight: 100, Track: "stable"},
		},
	}
}

func lines(b []byte) []string {
	var out []string
	for _, l := range strings.Split(string(b), "\n") {
		out = append(out, strings.TrimSpace(l))
	}
	return out
}

func hasLine(b []byte, want string) bool {
	for _, l := range lines(b) {
		if l == want {
			return true
		}
	}
	return false
}

func TestRenderBase(t *testing.T) {
	cfg := string(RenderBase(Base{MetricsPort: 8405}))
	for _, want := range []string{
		"global",
		"hard-stop-after 300s", // the default
		"stats socket /tmp/release-haproxy.sock mode 600 level admin",
		"timeout tunnel 3600s", // the default
		"frontend release-metrics",
		"bind :8405",
		"http-request use-service prometheus-exporter if { path /metrics }",
		"timeout check 2s",
	} {
		if !hasLine([]byte(cfg), want) {
			t.Errorf("base config lacks line %q:\n%s", want, cfg)
		}
	}

	cfg = string(RenderBase(Base{MetricsPort: 9000, HardStopAfter: 1500 * time.Millisecond}))
	if !hasLine([]byte(cfg), "hard-stop-after 1500ms") {
		t.Errorf("a sub-second hard-stop-after should render in ms:\n%s", cfg)
	}
	if !hasLine([]byte(cfg), "bind :9000") {
		t.Errorf("metrics port 9000 not bound:\n%s", cfg)
	}
	if hasLine([]byte(cfg), "bind :8405") {
		t.Errorf("metrics port 8405 bound although 9000 was asked:\n%s", cfg)
	}
}

func TestNames(t *testing.T) {
	if got, want := RouteFileName("production", "web"), "route_production_web.cfg"; got != want {
		t.Errorf("RouteFileName = %q, want %q", got, want)
	}
	if got, want := validRoute().FileName(), "route_production_web.cfg"; got != want {
		t.Errorf("Route.FileName = %q, want %q", got, want)
	}
	if got, want := BackendName("staging", "api"), "be_staging_api"; got != want {
		t.Errorf("BackendName = %q, want %q", got, want)
	}
	// Route file names must sort after the base file, which HAProxy loads first.
	if !(BaseFile < RouteFileName("a", "a")) || !(BaseFile < RouteFileName("0", "0")) {
		t.Errorf("route files must sort after %s", BaseFile)
	}
}

func TestRenderRoute(t *testing.T) {
	cfg, err := RenderRoute(validRoute())
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"frontend fe_production_web",
		"bind :8080",
		"default_backend be_production_web",
		"backend be_production_web",
		"option httpchk GET /healthz",
		"http-check expect rstatus ^2[0-9][0-9]$", // any 2xx, as the environment's gate
		"timeout check 2s",                        // the default
		"default-server inter 2s fastinter 50ms downinter 10ms fall 3 rise 1",
		"server r2-1 172.18.0.3:8080 check weight 100",
		"server r2-2 172.18.0.4:8080 check weight 100",
	} {
		if !hasLine(cfg, want) {
			t.Errorf("route lacks line %q:\n%s", want, cfg)
		}
	}
	// 503 only while no server can take a request: servers join through
	// the runtime API, so the rule is in every route.
	if !hasLine(cfg, `http-request return status 503 content-type text/plain string "no healthy release\n" if { nbsrv lt 1 } !{ stopping }`) {
		t.Errorf("a route must answer 503 only without a usable server:\n%s", cfg)
	}
	// Servers are sorted by name, whatever the input order.
	i1 := strings.Index(string(cfg), "server r2-1 ")
	i2 := strings.Index(string(cfg), "server r2-2 ")
	if i1 < 0 || i2 < 0 || i1 > i2 {
		t.Errorf("servers not sorted by name:\n%s", cfg)
	}
	// The same route in any order renders to the same bytes: no spurious reloads.
	r := validRoute()
	r.Servers[0], r.Servers[1] = r.Servers[1], r.Servers[0]
	cfg2, err := RenderRoute(r)
	if err != nil {
		t.Fatal(err)
	}
	if string(cfg) != string(cfg2) {
		t.Errorf("rendering depends on the order of servers:\n%s\n---\n%s", cfg, cfg2)
	}
	// The caller's slice is not reordered.
	r = validRoute()
	_, _ = RenderRoute(r)
	if r.Servers[0].Name != "r2-2" {
		t.Errorf("RenderRoute reordered the caller's servers: %v", r.Servers)
	}
}

func TestRenderRouteWeightsAndInterval(t *testing.T) {
	r := validRoute()
	r.ListenPort = 9090
	r.HealthPath = "/status/ready"
	r.CheckInterval = 500 * time.Millisecond
	r.CheckTimeout = 1500 * time.Millisecond
	r.Servers = []Server{
		{Name: "r3-1", Address: "10.0.0.7:80", Weight: 5, Track: "canary"},
		{Name: "r2-1", Address: "10.0.0.6:80", Weight: 95, Track: "stable"},
		{Name: "r1-1", Address: "10.0.0.5:80", Weight: 0},
	}
	cfg, err := RenderRoute(r)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"bind :9090",
		"option httpchk GET /status/ready",
		"default-server inter 500ms fastinter 50ms downinter 10ms fall 3 rise 1",
		"timeout check 1500ms",
		"server r1-1 10.0.0.5:80 check weight 0",
		"server r2-1 10.0.0.6:80 check weight 95",
		"server r3-1 10.0.0.7:80 check weight 5",
	} {
		if !hasLine(cfg, want) {
			t.Errorf("route lacks line %q:\n%s", want, cfg)
		}
	}
	var order []string
	for _, l := range lines(cfg) {
		if strings.HasPrefix(l, "server ") && !strings.HasPrefix(l, "server sticky ") {
			order = append(order, strings.Fields(l)[1])
		}
	}
	if want := []string{"r1-1", "r2-1", "r3-1"}; !reflect.DeepEqual(order, want) {
		t.Errorf("server order = %v, want %v", order, want)
	}

	// No interval or timeout: the defaults of 2s.
	r.CheckInterval, r.CheckTimeout = 0, 0
	cfg, err = RenderRoute(r)
	if err != nil {
		t.Fatal(err)
	}
	if !hasLine(cfg, "default-server inter 2s fastinter 50ms downinter 10ms fall 3 rise 1") {
		t.Errorf("default check interval not 2s:\n%s", cfg)
	}
	if !hasLine(cfg, "timeout check 2s") || strings.Count(string(cfg), "timeout check") != 1 {
		t.Errorf("default check timeout not 2s, once:\n%s", cfg)
	}
}

func TestRenderRouteNoServersAnswers503(t *testing.T) {
	r := validRoute()
	r.Servers = nil
	cfg, err := RenderRoute(r)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(cfg), "http-request return status 503") {
		t.Errorf("a route without servers must answer 503:\n%s", cfg)
	}
	if len(ParseRouteServers(cfg)) != 0 {
		t.Errorf("a route without servers has a server line:\n%s", cfg)
	}
	if !hasLine(cfg, "bind :8080") {
		t.Errorf("a route without servers still listens:\n%s", cfg)
	}
}

func TestValidateAcceptsValidRoutes(t *testing.T) {
	for _, mod := range []func(*Route){
		func(r *Route) {},
		func(r *Route) { r.Environment = "a" },
		func(r *Route) { r.Environment = strings.Repeat("a", 32) },
		func(r *Route) { r.Environment = "prod-eu-1" },
		func(r *Route) { r.Service = "0web9" },
		func(r *Route) { r.ListenPort = 1 },
		func(r *Route) { r.ListenPort = 65535 },
		func(r *Route) { r.HealthPath = "/" },
		func(r *Route) { r.HealthPath = "/health/live?full=1&x=%20" },
		func(r *Route) { r.Servers = nil },
		func(r *Route) { r.Servers[0].Weight = 0; r.Servers[1].Weight = 256 },
	} {
		r := validRoute()
		mod(&r)
		if err := r.Validate(); err != nil {
			t.Errorf("Validate(%+v) = %v, want nil", r, err)
		}
		if _, err := RenderRoute(r); err != nil {
			t.Errorf("RenderRoute(%+v) = %v, want nil", r, err)
		}
	}
}

func TestValidateRejectsInjection(t *testing.T) {
	cases := map[string]func(*Route){
		"environment with space":           func(r *Route) { r.Environment = "prod uction" },
		"environment with newline":         func(r *Route) { r.Environment = "prod\n    bind :22" },
		"environment with trailing nl":     func(r *Route) { r.Environment = "prod\n" },
		"environment with quote":           func(r *Route) { r.Environment = `prod"` },
		"environment with single quote":    func(r *Route) { r.Environment = "prod'" },
		"environment with underscore":      func(r *Route) { r.Environment = "prod_eu" },
		"environment uppercase":            func(r *Route) { r.Environment = "Production" },
		"environment empty":                func(r *Route) { r.Environment = "" },
		"environment leading dash":         func(r *Route) { r.Environment = "-prod" },
		"environment trailing dash":        func(r *Route) { r.Environment = "prod-" },
		"environment too long":             func(r *Route) { r.Environment = strings.Repeat("a", 33) },
		"environment with hash":            func(r *Route) { r.Environment = "prod#x" },
		"environment with dot":             func(r *Route) { r.Environment = "prod.eu" },
		"environment with slash":           func(r *Route) { r.Environment = "../etc" },
		"service with space":               func(r *Route) { r.Service = "web app" },
		"service with newline":             func(r *Route) { r.Service = "web\nbackend evil" },
		"service with quote":               func(r *Route) { r.Service = `we"b` },
		"service with underscore":          func(r *Route) { r.Service = "web_app" },
		"service uppercase":                func(r *Route) { r.Service = "Web" },
		"service non-ASCII":                func(r *Route) { r.Service = "wéb" },
		"listen port 0":                    func(r *Route) { r.ListenPort = 0 },
		"listen port negative":             func(r *Route) { r.ListenPort = -1 },
		"listen port 65536":                func(r *Route) { r.ListenPort = 65536 },
		"health path empty":                func(r *Route) { r.HealthPath = "" },
		"health path relative":             func(r *Route) { r.HealthPath = "healthz" },
		"health path with space":           func(r *Route) { r.HealthPath = "/health z" },
		"health path with HTTP version":    func(r *Route) { r.HealthPath = "/healthz HTTP/1.1" },
		"health path with tab":             func(r *Route) { r.HealthPath = "/health\tz" },
		"health path with double quote":    func(r *Route) { r.HealthPath = `/health"z` },
		"health path with single quote":    func(r *Route) { r.HealthPath = "/health'z" },
		"health path with backslash":       func(r *Route) { r.HealthPath = `/health\z` },
		"health path with hash":            func(r *Route) { r.HealthPath = "/healthz#comment" },
		"health path with newline":         func(r *Route) { r.HealthPath = "/healthz\n    server evil 1.2.3.4:80" },
		"health path with CR":              func(r *Route) { r.HealthPath = "/healthz\r" },
		"health path with NUL":             func(r *Route) { r.HealthPath = "/healthz\x00" },
		"health path with DEL":             func(r *Route) { r.HealthPath = "/healthz\x7f" },
		"health path non-ASCII":            func(r *Route) { r.HealthPath = "/gesundheit-prüfen" },
		"health path invalid UTF-8":        func(r *Route) { r.HealthPath = "/health\xff" },
		"health path unicode line sep":     func(r *Route) { r.HealthPath = "/health\u2028z" },
		"server name with space":           func(r *Route) { r.Servers[0].Name = "r2 1" },
		"server name with newline":         func(r *Route) { r.Servers[0].Name = "r2-1\n" },
		"server name with underscore":      func(r *Route) { r.Servers[0].Name = "r2_1" },
		"server name uppercase":            func(r *Route) { r.Servers[0].Name = "R2-1" },
		"server name empty":                func(r *Route) { r.Servers[0].Name = "" },
		"server name quote":                func(r *Route) { r.Servers[0].Name = `r2"1` },
		"server name leading dash":         func(r *Route) { r.Servers[0].Name = "-r2" },
		"server name too long":             func(r *Route) { r.Servers[0].Name = strings.Repeat("r", 64) },
		"server names repeated":            func(r *Route) { r.Servers[1].Name = r.Servers[0].Name },
		"address hostname":                 func(r *Route) { r.Servers[0].Address = "web:8080" },
		"address without port":             func(r *Route) { r.Servers[0].Address = "172.18.0.3" },
		"address empty":                    func(r *Route) { r.Servers[0].Address = "" },
		"address port only":                func(r *Route) { r.Servers[0].Address = ":8080" },
		"address IPv6":                     func(r *Route) { r.Servers[0].Address = "[::1]:8080" },
		"address with trailing option":     func(r *Route) { r.Servers[0].Address = "172.18.0.3:8080 backup" },
		"address with newline":             func(r *Route) { r.Servers[0].Address = "172.18.0.3:8080\n    server evil 1.2.3.4:80" },
		"address with port too long":       func(r *Route) { r.Servers[0].Address = "172.18.0.3:123456" },
		"address with three octets":        func(r *Route) { r.Servers[0].Address = "172.18.0:8080" },
		"address with four-digit octet":    func(r *Route) { r.Servers[0].Address = "1720.18.0.3:8080" },
		"address with leading space":       func(r *Route) { r.Servers[0].Address = " 172.18.0.3:8080" },
		"weight negative":                  func(r *Route) { r.Servers[0].Weight = -1 },
		"weight above 256":                 func(r *Route) { r.Servers[0].Weight = 257 },
		"weight far above 256":             func(r *Route) { r.Servers[1].Weight = 1000 },
		"second server bad, first is fine": func(r *Route) { r.Servers[1].Address = "evil" },
	}
	for name, mod := range cases {
		t.Run(name, func(t *testing.T) {
			r := validRoute()
			mod(&r)
			if err := r.Validate(); err == nil {
				t.Fatalf("Validate accepted %+v", r)
			}
			cfg, err := RenderRoute(r)
			if err == nil {
				t.Fatalf("RenderRoute rendered an invalid route:\n%s", cfg)
			}
			if cfg != nil {
				t.Errorf("RenderRoute returned config with an error: %q", cfg)
			}
		})
	}
}

func TestValidateErrorNamesTheField(t *testing.T) {
	r := validRoute()
	r.Environment = "Prod"
	if err := r.Validate(); err == nil || !strings.Contains(err.Error(), "environment") || !strings.Contains(err.Error(), `"Prod"`) {
		t.Errorf("error should name the environment and the value: %v", err)
	}
	r = validRoute()
	r.HealthPath = "/a b"
	if err := r.Validate(); err == nil || !strings.Contains(err.Error(), "health check path") {
		t.Errorf("error should name the health check path: %v", err)
	}
	r = validRoute()
	r.Servers[0].Weight = 300
	if err := r.Validate(); err == nil || !strings.Contains(err.Error(), "300") {
		t.Errorf("error should name the weight: %v", err)
	}
}

func TestParseRouteServersRoundTrip(t *testing.T) {
	r := validRoute()
	r.Servers = []Server{
		{Name: "r7-2", Address: "10.1.2.3:8080", Weight: 100, Track: "stable"},
		{Name: "r8-1", Address: "10.1.2.4:8080", Weight: 5, Track: "canary"},
		{Name: "r7-1", Address: "10.1.2.2:8080", Weight: 0, Track: "baseline"},
	}
	cfg, err := RenderRoute(r)
	if err != nil {
		t.Fatal(err)
	}
	got := ParseRouteServers(cfg)
	// Track is not written to the configuration; order is the rendered (sorted) order.
	want := []Server{
		{Name: "r7-1", Address: "10.1.2.2:8080", Weight: 0},
		{Name: "r7-2", Address: "10.1.2.3:8080", Weight: 100},
		{Name: "r8-1", Address: "10.1.2.4:8080", Weight: 5},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("ParseRouteServers = %+v, want %+v", got, want)
	}

	// Rendering the parsed servers again gives the same file.
	r2 := r
	r2.Servers = got
	cfg2, err := RenderRoute(r2)
	if err != nil {
		t.Fatal(err)
	}
	if string(cfg) != string(cfg2) {
		t.Errorf("render(parse(render(r))) != render(r):\n%s\n---\n%s", cfg, cfg2)
	}
}

func TestParseRouteServersEmptyAndForeign(t *testing.T) {
	if got := ParseRouteServers(nil); len(got) != 0 {
		t.Errorf("ParseRouteServers(nil) = %v", got)
	}
	r := validRoute()
	r.Servers = nil
	cfg, _ := RenderRoute(r)
	if got := ParseRouteServers(cfg); len(got) != 0 {
		t.Errorf("a route without servers parsed to %v", got)
	}
	// Only "server" lines count; default-server and comments do not.
	got := ParseRouteServers([]byte("# server x 1.2.3.4:80\n    default-server inter 2s\n\tserver a 1.2.3.4:80 check\nserver\n"))
	want := []Server{{Name: "a", Address: "1.2.3.4:80"}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("ParseRouteServers = %+v, want %+v", got, want)
	}
}

// TestHAProxyAcceptsRenderedConfig checks the rendered files with the real
// HAProxy, as the router does before each reload.
func TestHAProxyAcceptsRenderedConfig(t *testing.T) {
	const bin = "/usr/sbin/haproxy"
	if _, err := os.Stat(bin); err != nil {
		t.Skipf("%s is not installed", bin)
	}
	check := func(t *testing.T, files map[string][]byte) (string, error) {
		t.Helper()
		dir := t.TempDir()
		for name, content := range files {
			if err := os.WriteFile(filepath.Join(dir, name), content, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		out, err := exec.Command(bin, "-c", "-f", dir).CombinedOutput()
		return string(out), err
	}
	mustRender := func(t *testing.T, r Route) []byte {
		t.Helper()
		cfg, err := RenderRoute(r)
		if err != nil {
			t.Fatal(err)
		}
		return cfg
	}

	t.Run("base and two routes", func(t *testing.T) {
		staging := validRoute()
		staging.Environment, staging.ListenPort = "staging", 8081
		canary := validRoute()
		canary.CheckInterval = 1500 * time.Millisecond
		canary.CheckTimeout = 700 * time.Millisecond
		canary.Servers = append(canary.Servers, Server{Name: "r3-1", Address: "172.18.0.9:8080", Weight: 5, Track: "canary"}, Server{Name: "r1-1", Address: "172.18.0.2:8080", Weight: 0})
		files := map[string][]byte{
			BaseFile:                    RenderBase(Base{MetricsPort: 8405, HardStopAfter: 10 * time.Second}),
			validRoute().FileName():     mustRender(t, canary),
			staging.FileName():          mustRender(t, staging),
			RouteFileName("gone", "db"): {}, // an emptied (destroyed) route
		}
		if out, err := check(t, files); err != nil {
			t.Fatalf("haproxy -c refused the rendered configuration: %v\n%s", err, out)
		}
	})
	t.Run("route without servers", func(t *testing.T) {
		r := validRoute()
		r.Servers = nil
		files := map[string][]byte{BaseFile: RenderBase(Base{MetricsPort: 8405}), r.FileName(): mustRender(t, r)}
		if out, err := check(t, files); err != nil {
			t.Fatalf("haproxy -c refused a route without servers: %v\n%s", err, out)
		}
	})
	t.Run("the check itself can fail", func(t *testing.T) {
		// Two routes on the same backend name are a conflict HAProxy reports:
		// proves this harness would notice a broken file.
		r := validRoute()
		cfg := mustRender(t, r)
		files := map[string][]byte{BaseFile: RenderBase(Base{MetricsPort: 8405}), r.FileName(): cfg, "route_zz_copy.cfg": cfg}
		out, err := check(t, files)
		if err == nil {
			t.Fatalf("haproxy -c accepted a duplicated backend:\n%s", out)
		}
		if !strings.Contains(out, "be_production_web") {
			t.Errorf("haproxy -c failed for another reason than the duplicate:\n%s", out)
		}
	})
}

func TestListenerOwner(t *testing.T) {
	a, _ := RenderRoute(Route{Environment: "staging", Service: "web", ListenPort: 81, HealthPath: "/healthz"})
	b, _ := RenderRoute(Route{Environment: "prod", Service: "web", ListenPort: 80, HealthPath: "/healthz"})
	files := map[string][]byte{BaseFile: RenderBase(Base{MetricsPort: 8404}), RouteFileName("staging", "web"): a, RouteFileName("prod", "web"): b}
	if got := ListenerOwner(files, 81, RouteFileName("prod", "web")); got != "staging/web" {
		t.Errorf("port 81 is staging's, got %q", got)
	}
	if got := ListenerOwner(files, 80, RouteFileName("prod", "web")); got != "" {
		t.Errorf("a route's own port is not taken, got %q", got)
	}
	if got := ListenerOwner(files, 8404, RouteFileName("prod", "web")); got != "" {
		t.Errorf("the metrics port is not a route's, got %q", got)
	}
}

func TestRouteListenPort(t *testing.T) {
	for _, port := range []int{80, 81, 8080} {
		route, err := RenderRoute(Route{Environment: "staging", Service: "web", ListenPort: port, HealthPath: "/healthz",
			Servers: []Server{{Name: "r1-1", Address: "172.18.0.2:8080", Weight: 100}}})
		if err != nil {
			t.Fatal(err)
		}
		if got := RouteListenPort(route); got != port {
			t.Errorf("RouteListenPort of a route rendered for port %d = %d", port, got)
		}
	}
	for _, empty := range [][]byte{nil, []byte(""), []byte("backend be_x\n    server a 1.2.3.4:80\n")} {
		if got := RouteListenPort(empty); got != 0 {
			t.Errorf("RouteListenPort(%q) = %d, want 0", empty, got)
		}
	}
}

// A canary's route logs each request to its tally; the same route without
// a RequestLog is the route as it always was, line for line.
func TestRenderRouteRequestLog(t *testing.T) {
	r := Route{Environment: "prod", Service: "web", ListenPort: 8080, HealthPath: "/healthz",
		Servers: []Server{{Name: "r1-1", Address: "10.0.0.2:8080", Weight: 200}, {Name: "c2-1", Address: "10.0.0.3:8080", Weight: 56}}}
	plain := mustRenderRoute(t, r)
	r.RequestLog = "127.0.0.1:40123"
	logged := mustRenderRoute(t, r)
	lines := "    log 127.0.0.1:40123 format raw local0\n    log-format \"%b %s %ST %Tr %Ta\"\n"
	if want := strings.Replace(string(plain), "    default_backend", lines+"    default_backend", 1); string(logged) != want {
		t.Errorf("route with a request log:\n%s\nwant:\n%s", logged, want)
	}
	if got := RouteRequestLog(logged); got != "127.0.0.1:40123" {
		t.Errorf("RouteRequestLog = %q", got)
	}
	if got := RouteRequestLog(plain); got != "" {
		t.Errorf("RouteRequestLog of a route without one = %q", got)
	}
	// Weights change at runtime under a request log; adding or moving it reloads.
	r.Servers[1].Weight = 128
	if _, changes, ok := WeightChanges(logged, mustRenderRoute(t, r)); !ok || len(changes) != 1 {
		t.Errorf("a change of weights under a request log: ok %t, %d changes", ok, len(changes))
	}
	if _, ok := PlanRuntime(plain, logged); ok {
		t.Error("adding a request log was planned without a reload")
	}
	// Dropping it (the canary ends) needs none, with its servers gone too.
	ended := r
	ended.RequestLog, ended.Servers = "", r.Servers[:1]
	if plan, ok := PlanRuntime(logged, mustRenderRoute(t, ended)); !ok || len(plan.Remove) != 1 {
		t.Errorf("dropping the request log and the canary: ok %t, plan %+v; want a runtime change", ok, plan)
	}
	r.RequestLog = "127.0.0.1:40124"
	if _, ok := PlanRuntime(logged, mustRenderRoute(t, r)); ok {
		t.Error("moving the request log was planned without a reload")
	}
	for _, bad := range []string{"10.0.0.1:514", "127.0.0.1", "127.0.0.1:0", "127.0.0.1:1 x"} {
		r.RequestLog = bad
		if _, err := RenderRoute(r); err == nil {
			t.Errorf("request log %q accepted", bad)
		}
	}
}
