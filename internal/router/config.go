// Package router renders the HAProxy configuration of a release router: one
// base file (global settings, defaults, the metrics and health endpoints) and
// one file per environment route, so that each environment changes only its
// own file. It holds no Docker or Terraform code.
package router

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"net/netip"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/cespare/xxhash/v2"
)

// ConfigDir is where the router container reads its configuration files,
// all of them, in lexical order (HAProxy's -f <dir>).
const ConfigDir = "/usr/local/etc/haproxy/release"

// BaseFile is the first file HAProxy loads.
const BaseFile = "00-base.cfg"

// namePattern admits the names that may appear in HAProxy configuration:
// lowercase letters, digits and inner dashes. No spaces, quotes, newlines or
// underscores (the separator of generated names) can get through.
var namePattern = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,30}[a-z0-9])?$`)

// ValidateName checks an environment, service or router name.
func ValidateName(s string) error {
	if !namePattern.MatchString(s) {
		return fmt.Errorf("%q is not a valid name: use 1 to 32 lowercase letters, digits and dashes, starting and ending with a letter or digit", s)
	}
	return nil
}

// ValidateHealthPath checks an HTTP path for health checks, which ends up in
// the configuration: a plain absolute path, no spaces or control characters.
func ValidateHealthPath(s string) error {
	if !strings.HasPrefix(s, "/") {
		return fmt.Errorf("%q must start with /", s)
	}
	for _, r := range s {
		if r <= ' ' || r == 0x7f || r == '"' || r == '\'' || r == '\\' || r == '#' || r > 0x7e {
			return fmt.Errorf("%q contains %q; use a plain URL path such as /healthz", s, r)
		}
	}
	return nil
}

// Base is the router-wide part of the configuration.
type Base struct {
	MetricsPort int
	// HardStopAfter bounds how long an old worker may drain after a reload
	// (DefaultHardStopAfter when zero).
	HardStopAfter time.Duration
	// TimeoutTunnel bounds how long a tunnel (a WebSocket) may stay idle
	// (DefaultTimeoutTunnel when zero).
	TimeoutTunnel time.Duration
}

// Defaults of the router's timeouts for long-lived connections.
const (
	// DefaultHardStopAfter is at least the default stop_timeout (10s) of an
	// environment many times over: a reload never cuts a connection that a
	// retirement would still let finish.
	DefaultHardStopAfter = 5 * time.Minute
	// DefaultTimeoutTunnel keeps an idle WebSocket open for an hour.
	DefaultTimeoutTunnel = time.Hour
)

// RuntimeSocket is HAProxy's runtime API (admin level) inside the router
// container: weights change through it without a reload. /tmp exists and is
// writable in the official image (which runs as user haproxy) and in a
// FROM scratch one.
const RuntimeSocket = "/tmp/release-haproxy.sock"

// RenderBase renders the global section, defaults and the metrics frontend.
func RenderBase(b Base) []byte {
	if b.HardStopAfter <= 0 {
		b.HardStopAfter = DefaultHardStopAfter
	}
	if b.TimeoutTunnel <= 0 {
		b.TimeoutTunnel = DefaultTimeoutTunnel
	}
	var buf bytes.Buffer
	fmt.Fprintf(&buf, `# Written by terraform-provider-release. Changes by hand are reverted on the next apply.
global
    hard-stop-after %s
    stats socket %s mode 600 level admin

defaults
    mode http
    option redispatch
    retries 3
    timeout connect 5s
    timeout client 60s
    timeout server 60s
    timeout http-keep-alive 10s
    timeout tunnel %s
    timeout check 2s

frontend release-metrics
    bind :%d
    http-request use-service prometheus-exporter if { path /metrics }
    http-request return status 200 content-type text/plain string "ok\n" if { path /healthz }
    http-request return status 404
`, haproxyDuration(b.HardStopAfter), RuntimeSocket, haproxyDuration(b.TimeoutTunnel), b.MetricsPort)
	return buf.Bytes()
}

// Server is one container behind a route.
type Server struct {
	Name    string // unique in the route, e.g. r7-1
	Address string // ip:port on the router's network
	Weight  int    // 0-256; 0 receives no new traffic
	Track   string // stable, canary, baseline: for metrics and reports
	// Drain puts the server in maintenance (weight 0): no new request
	// reaches it, not even a user's sticky one, while the connections it
	// has go on until they end; a retired revision is drained so.
	Drain bool
	// Resolve says Address is host:port, resolved through Docker's DNS
	// while the router runs: a Swarm service's tasks ("tasks.<service>"),
	// whose addresses change as Swarm restarts and moves them. Servers of
	// one host name each take another of its addresses.
	Resolve bool
}

// Route sends one listener port of the router to one environment's service.
type Route struct {
	Environment string
	Service     string
	ListenPort  int
	HealthPath  string
	// CheckInterval is how often the router checks each server once it is routed.
	CheckInterval time.Duration
	// CheckTimeout bounds one check, as the environment's own health check
	// does (2s when zero): the router passes only what that check passes.
	CheckTimeout time.Duration
	Servers      []Server
	// Sticky keeps each user on the server that first answered them (a
	// cookie), so a user on the canary stays there as its weight grows.
	Sticky bool
	// RequestLog, when set (127.0.0.1:port in the router), makes the route
	// log one line per request there in RequestLogFormat: a canary's tally
	// (Controller.OpenTally) counts them. Set only while a canary runs; a
	// route without it renders as it always did.
	RequestLog string
}

// RequestLogFormat is the line a route with a RequestLog sends per request:
// backend, server, status, the server's response time and the request's
// whole time, in ms (-1 when there was none). cmd/release-probe's tally
// reads it.
const RequestLogFormat = "%b %s %ST %Tr %Ta"

// FileName is the route's file in ConfigDir.
func (r Route) FileName() string { return RouteFileName(r.Environment, r.Service) }

// RouteFileName names the file that holds an environment's route.
func RouteFileName(environment, service string) string {
	return "route_" + environment + "_" + service + ".cfg"
}

// BackendName is the HAProxy backend of a route, as it appears in metrics.
func BackendName(environment, service string) string {
	return "be_" + environment + "_" + service
}

// Validate checks every value that is written into the configuration.
func (r Route) Validate() error {
	if err := ValidateName(r.Environment); err != nil {
		return fmt.Errorf("environment: %w", err)
	}
	if err := ValidateName(r.Service); err != nil {
		return fmt.Errorf("service: %w", err)
	}
	if r.ListenPort < 1 || r.ListenPort > 65535 {
		return fmt.Errorf("listen port %d is out of range", r.ListenPort)
	}
	if err := ValidateHealthPath(r.HealthPath); err != nil {
		return fmt.Errorf("health check path: %w", err)
	}
	if r.RequestLog != "" && !loopbackPattern.MatchString(r.RequestLog) {
		return fmt.Errorf("request log %q is not 127.0.0.1:port", r.RequestLog)
	}
	seen := map[string]bool{}
	for _, s := range r.Servers {
		if !serverNamePattern.MatchString(s.Name) || seen[s.Name] {
			return fmt.Errorf("server name %q is invalid or repeated", s.Name)
		}
		seen[s.Name] = true
		if s.Resolve && !hostPortPattern.MatchString(s.Address) {
			return fmt.Errorf("server address %q is not host:port", s.Address)
		}
		if !s.Resolve && !addressPattern.MatchString(s.Address) {
			return fmt.Errorf("server address %q is not ip:port", s.Address)
		}
		if s.Weight < 0 || s.Weight > 256 {
			return fmt.Errorf("server weight %d is out of range 0-256", s.Weight)
		}
	}
	return nil
}

var (
	serverNamePattern = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,62}$`)
	addressPattern    = regexp.MustCompile(`^(\d{1,3}\.){3}\d{1,3}:\d{1,5}$`)
	hostPortPattern   = regexp.MustCompile(`^[a-z0-9][a-z0-9.-]{0,252}:\d{1,5}$`)
	loopbackPattern   = regexp.MustCompile(`^127\.0\.0\.1:[1-9]\d{0,4}$`)
)

// RenderRoute renders a route's frontend and backend.
func RenderRoute(r Route) ([]byte, error) {
	if err := r.Validate(); err != nil {
		return nil, err
	}
	interval := r.CheckInterval
	if interval <= 0 {
		interval = 2 * time.Second
	}
	timeout := r.CheckTimeout
	if timeout <= 0 {
		timeout = 2 * time.Second
	}
	servers := append([]Server(nil), r.Servers...)
	sort.Slice(servers, func(i, j int) bool { return servers[i].Name < servers[j].Name })

	var buf bytes.Buffer
	fe := "fe_" + r.Environment + "_" + r.Service
	be := BackendName(r.Environment, r.Service)
	fmt.Fprintf(&buf, "# Route of environment %s, service %s. Written by terraform-provider-release.\n", r.Environment, r.Service)
	fmt.Fprintf(&buf, "frontend %s\n    bind :%d\n", fe, r.ListenPort)
	if r.RequestLog != "" {
		// raw: the line alone, no syslog header. Workers a reload stops
		// keep logging to the same address until their last request.
		fmt.Fprintf(&buf, "    log %s format raw local0\n    log-format \"%s\"\n", r.RequestLog, RequestLogFormat)
	}
	fmt.Fprintf(&buf, "    default_backend %s\n\n", be)
	// Any 2xx passes, as the environment's health gate (release-probe) passes it.
	fmt.Fprintf(&buf, "backend %s\n    balance roundrobin\n    option httpchk GET %s\n    http-check expect rstatus ^2[0-9][0-9]$\n", be, r.HealthPath)
	fmt.Fprintf(&buf, "    timeout check %s\n", haproxyDuration(timeout))
	// fastinter: a server whose health is in transition (one that failed
	// a check) is checked every 50ms at most, so a failing one is DOWN in
	// a fraction of the interval (fall 3).
	// downinter: a server added at runtime starts DOWN (see RuntimePlan);
	// its first check comes a downinter after it was added, and one pass
	// brings it UP (rise 1: the provider's gate passed it already; this is
	// the router's own confirmation), so a new container is routed about
	// 15ms after its gate. A server that stays DOWN costs one HTTP request
	// every 10ms until it is removed.
	fmt.Fprintf(&buf, "    default-server inter %s fastinter %s downinter %s fall 3 rise 1\n",
		haproxyDuration(interval), haproxyDuration(min(interval, fastInter)), haproxyDuration(min(interval, downInter)))
	// Dynamic cookies: each server's cookie is derived from the key and its
	// address, so servers added at runtime have one, and a canary promoted
	// under the stable name keeps its users. The cookie is set, and honoured,
	// only while the sticky switch below is on.
	sticky := StickyBackend(be)
	fmt.Fprintf(&buf, "    cookie %s insert indirect nocache dynamic\n", CookieName(r.Environment, r.Service))
	fmt.Fprintf(&buf, "    dynamic-cookie-key %s\n", be)
	fmt.Fprintf(&buf, "    ignore-persist unless { nbsrv(%s) gt 0 }\n", sticky)
	// With no server that can take a request (none yet, or none UP) the
	// route answers 503 itself. The rule is there with or without servers,
	// so that servers join a new route through the runtime API. Not in a
	// worker that a reload is stopping: its stopped backend counts no
	// server (nbsrv is 0), and the requests it still takes on kept-alive
	// connections must go to the servers it has (measured with 2.6: 3
	// answers of 503 in 19,576 over three reloads, none with the guard;
	// TestReloadUnderKeepAliveRealHAProxy).
	buf.WriteString("    http-request return status 503 content-type text/plain string \"no healthy release\\n\" if { nbsrv lt 1 } !{ stopping }\n")
	resolves := false
	for _, s := range servers {
		weight := fmt.Sprintf("weight %d", s.Weight)
		if s.Drain {
			weight = "weight 0 disabled"
		}
		resolve := ""
		if s.Resolve {
			// The worker a reload starts asks the system's resolver (Docker's
			// DNS) as it starts: without an address the backend would answer
			// 503 until its first answer (measured: 4 of 1,248 requests in a
			// switch under load). Its own resolvers then give each server
			// another of the name's addresses, within a second; a name with
			// no task leaves the server in maintenance.
			resolve = " resolvers " + ResolversName(r.Environment, r.Service) + " init-addr libc,none resolve-prefer ipv4"
			resolves = true
		}
		fmt.Fprintf(&buf, "    server %s %s check%s %s\n", s.Name, s.Address, resolve, weight)
	}
	// The sticky switch: a backend no frontend uses, whose one server is
	// ready while users stick to their server. The runtime API turns it on
	// and off, so a canary begins and ends without a reload.
	switchState := ""
	if !r.Sticky {
		switchState = " disabled"
	}
	fmt.Fprintf(&buf, "\nbackend %s\n    server %s 127.0.0.1:1 weight 1%s\n", sticky, stickySwitch, switchState)
	if resolves {
		// Docker's embedded DNS, in every container on a user-defined
		// network: a task that Swarm restarts or moves is found again
		// within a second, with no reload and no apply. One failed answer
		// takes no server out (hold: a valid one came within 3s); a name
		// with no task for 3s does.
		fmt.Fprintf(&buf, "\nresolvers %s\n    nameserver docker %s\n    accepted_payload_size 8192\n"+
			"    timeout resolve 1s\n    timeout retry 1s\n    resolve_retries 3\n    hold nx 3s\n    hold other 3s\n    hold refused 3s\n    hold timeout 3s\n",
			ResolversName(r.Environment, r.Service), dockerDNS)
	}
	return buf.Bytes(), nil
}

// dockerDNS is Docker's embedded DNS server, as containers reach it.
const dockerDNS = "127.0.0.11:53"

// ResolversName is the resolvers section of a route whose servers resolve.
func ResolversName(environment, service string) string {
	return "rs_" + environment + "_" + service
}

// CookieName is the cookie that pins a route's users to a server.
func CookieName(environment, service string) string { return "rls_" + environment + "_" + service }

// ServerCookie is the value of a route's cookie that pins a user to the
// server at address (ip:port): HAProxy's dynamic cookie, XXH64 of the
// backend's key (its name), the IPv4 address and the port as four bytes in
// network order (srv_set_dyncookie in HAProxy 2.6).
func ServerCookie(environment, service, address string) (string, error) {
	return dynamicCookie(BackendName(environment, service), address)
}

func dynamicCookie(key, address string) (string, error) {
	ap, err := netip.ParseAddrPort(address)
	if err != nil || !ap.Addr().Is4() {
		return "", fmt.Errorf("server address %q is not ip:port", address)
	}
	ip := ap.Addr().As4()
	buf := append([]byte(key), ip[:]...)
	buf = binary.BigEndian.AppendUint32(buf, uint32(ap.Port()))
	return fmt.Sprintf("%016x", xxhash.Sum64(buf)), nil
}

// stickySwitch is the one server of a route's sticky backend.
const stickySwitch = "sticky"

// StickyBackend is the backend whose server says whether a route's users
// stick to their server.
func StickyBackend(backend string) string { return backend + stickySuffix }

const stickySuffix = "_sticky"

// isStickyBackend tells a sticky backend (be_<env>_<service>_sticky) from a
// route's own (be_<env>_<service>, where the service may be "sticky"):
// names hold no underscores.
func isStickyBackend(name string) bool {
	return strings.HasSuffix(name, stickySuffix) && strings.Count(name, "_") == 3
}

// IsSticky says whether a rendered route pins users with a cookie.
func IsSticky(cfg []byte) bool {
	in := false
	for _, line := range strings.Split(string(cfg), "\n") {
		f := strings.Fields(line)
		switch {
		case len(f) == 2 && f[0] == "backend":
			in = isStickyBackend(f[1])
		case in && len(f) >= 3 && f[0] == "server" && f[1] == stickySwitch:
			return f[len(f)-1] != "disabled"
		}
	}
	return false
}

// ParseBase reads the router-wide settings back from a rendered base file;
// ok is false when the file is not one RenderBase wrote with them.
func ParseBase(cfg []byte) (b Base, ok bool) {
	var seen int
	for _, line := range strings.Split(string(cfg), "\n") {
		f := strings.Fields(line)
		switch {
		case len(f) == 2 && f[0] == "hard-stop-after":
			if d, err := time.ParseDuration(f[1]); err == nil {
				b.HardStopAfter, seen = d, seen|1
			}
		case len(f) == 3 && f[0] == "timeout" && f[1] == "tunnel":
			if d, err := time.ParseDuration(f[2]); err == nil {
				b.TimeoutTunnel, seen = d, seen|2
			}
		case len(f) == 2 && f[0] == "bind" && strings.HasPrefix(f[1], ":") && b.MetricsPort == 0:
			fmt.Sscanf(f[1][1:], "%d", &b.MetricsPort)
		}
	}
	if seen != 3 {
		return Base{}, false
	}
	return b, string(RenderBase(b)) == string(cfg)
}

// fastInter is how often a server in transition is checked (HAProxy's
// fastinter), and downInter how often one that is DOWN is (downinter),
// unless the interval is shorter.
const (
	fastInter = 50 * time.Millisecond
	downInter = 10 * time.Millisecond
)

func haproxyDuration(d time.Duration) string {
	if d%time.Second == 0 {
		return fmt.Sprintf("%ds", int(d/time.Second))
	}
	return fmt.Sprintf("%dms", d.Milliseconds())
}

// ParseRouteServers reads the servers back from a rendered route, so that
// drift (a route edited or lost) can be compared with what should be there.
func ParseRouteServers(cfg []byte) []Server {
	var out []Server
	switchSection := false
	for _, line := range strings.Split(string(cfg), "\n") {
		f := strings.Fields(line)
		if len(f) == 2 && f[0] == "backend" {
			switchSection = isStickyBackend(f[1])
		}
		if len(f) < 3 || f[0] != "server" || switchSection {
			continue
		}
		s := Server{Name: f[1], Address: f[2]}
		for i := 3; i < len(f); i++ {
			switch {
			case f[i] == "weight" && i+1 < len(f):
				fmt.Sscanf(f[i+1], "%d", &s.Weight)
			case f[i] == "disabled":
				s.Drain = true
			case f[i] == "resolvers":
				s.Resolve = true
			}
		}
		out = append(out, s)
	}
	return out
}

// RouteRequestLog is where a rendered route logs its requests
// (Route.RequestLog); "" when it does not.
func RouteRequestLog(route []byte) string {
	for _, line := range strings.Split(string(route), "\n") {
		f := strings.Fields(line)
		if len(f) == 5 && f[0] == "log" && f[2] == "format" && f[3] == "raw" && loopbackPattern.MatchString(f[1]) {
			return f[1]
		}
	}
	return ""
}

// RouteListenPort is the listener a rendered route binds (its frontend's
// `bind :<port>`); 0 for an empty file or one without a listener.
func RouteListenPort(route []byte) int {
	for _, line := range strings.Split(string(route), "\n") {
		f := strings.Fields(line)
		if len(f) == 2 && f[0] == "bind" && strings.HasPrefix(f[1], ":") {
			if port, err := strconv.Atoi(f[1][1:]); err == nil && port > 0 && port <= 65535 {
				return port
			}
		}
	}
	return 0
}

// ListenerOwner names the route, other than own, that already binds port;
// "" when the port is free. Each route binds one listener of its own.
func ListenerOwner(files map[string][]byte, port int, own string) string {
	bind := fmt.Sprintf("bind :%d\n", port)
	for name, content := range files {
		if name == own || !strings.HasPrefix(name, "route_") {
			continue
		}
		if strings.Contains(string(content), bind) {
			// route_<env>_<service>.cfg; names hold no underscores.
			return strings.Replace(strings.TrimSuffix(strings.TrimPrefix(name, "route_"), ".cfg"), "_", "/", 1)
		}
	}
	return ""
}
