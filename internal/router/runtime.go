package router

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"path"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/releasekit/terraform-provider-release/internal/failpoint"
)

// A route whose settings stay the same, and whose servers are only added,
// removed or given new weights (or drained), is applied through HAProxy's
// runtime API: no reload, so no new worker, counters keep counting and no
// connection is handed to a draining worker. The route file is written as
// well, so that a restart or a later reload loads the same route. Any other
// change reloads.

// WeightChange is one server's new weight in a route that otherwise stays.
type WeightChange struct {
	Server string
	Weight int
	Drain  bool
}

// RuntimePlan is a route change the runtime API can apply.
type RuntimePlan struct {
	Backend string
	// Add are servers new to the route. A server at an address that took
	// no traffic before starts DOWN and must pass the router's checks
	// (rise) before it takes any request; one at an address that did (a
	// canary renamed stable) starts UP, as the same container was.
	Add []Server
	// Changes are servers that stay, with a new weight or drain.
	Changes []WeightChange
	// Remove are servers the route drops: put in maintenance, then deleted.
	// One that still has connections (an event stream) stays in
	// maintenance, with weight 0, and is deleted by a later change.
	Remove []string
	// Sticky is set when users start or stop sticking to their server.
	Sticky *bool

	serverArgs string          // the backend's default-server settings, which servers added at runtime do not inherit
	serving    map[string]bool // addresses that took traffic before
}

// Empty says the plan changes nothing.
func (p RuntimePlan) Empty() bool {
	return len(p.Add) == 0 && len(p.Changes) == 0 && len(p.Remove) == 0 && p.Sticky == nil
}

// PlanRuntime says whether next differs from previous only in its servers
// (added, removed, weights, drain) and its sticky switch, and how; ok is
// false when anything else differs (a setting, a server moved to another
// address, a route from an earlier version): only a reload applies that.
// Two identical routes give ok with an empty plan.
//
// A request log that next drops (a canary's, as it ends) is no reason to
// reload: the running workers go on logging to an address where nothing
// listens any more (each line a datagram nobody reads) until the next
// reload by anyone loads the file, as it is, without it. Adding or moving
// a request log takes a reload: nothing else makes HAProxy log there.
func PlanRuntime(previous, next []byte) (plan RuntimePlan, ok bool) {
	if RouteRequestLog(next) == "" {
		previous = withoutRequestLog(previous)
	}
	if len(previous) == 0 || len(next) == 0 || shape(previous) != shape(next) {
		return RuntimePlan{}, false
	}
	plan.Backend = backendOf(next)
	plan.serverArgs = defaultServerArgs(next)
	if plan.Backend == "" || plan.serverArgs == "" {
		return RuntimePlan{}, false
	}
	before := map[string]Server{}
	plan.serving = map[string]bool{}
	for _, s := range ParseRouteServers(previous) {
		before[s.Name] = s
		if s.Weight > 0 && !s.Drain {
			plan.serving[s.Address] = true
		}
	}
	kept := map[string]bool{}
	for _, s := range ParseRouteServers(next) {
		b, found := before[s.Name]
		switch {
		case !found && s.Resolve:
			// A server added at run time never resolves its name (HAProxy 2.6).
			return RuntimePlan{}, false
		case found && b.Resolve != s.Resolve:
			return RuntimePlan{}, false
		case !found:
			plan.Add = append(plan.Add, s)
		case b.Address != s.Address:
			return RuntimePlan{}, false
		case b.Weight != s.Weight || b.Drain != s.Drain:
			plan.Changes = append(plan.Changes, WeightChange{Server: s.Name, Weight: s.Weight, Drain: s.Drain})
		}
		kept[s.Name] = true
	}
	for name, b := range before {
		if !kept[name] {
			if b.Resolve {
				return RuntimePlan{}, false // its resolvers section may go with it: a reload
			}
			plan.Remove = append(plan.Remove, name)
		}
	}
	if was, is := IsSticky(previous), IsSticky(next); was != is {
		plan.Sticky = &is
	}
	sort.Slice(plan.Add, func(i, j int) bool { return plan.Add[i].Name < plan.Add[j].Name })
	sort.Slice(plan.Changes, func(i, j int) bool { return plan.Changes[i].Server < plan.Changes[j].Server })
	sort.Strings(plan.Remove)
	return plan, true
}

// WeightChanges says whether next differs from previous only in the weights
// (and drain) of its servers, and which servers change; ok is false when
// anything else differs (a server added or removed, a setting, stickiness).
// Two identical routes give ok with no changes.
func WeightChanges(previous, next []byte) (backend string, changes []WeightChange, ok bool) {
	plan, ok := PlanRuntime(previous, next)
	if !ok || len(plan.Add) > 0 || len(plan.Remove) > 0 || plan.Sticky != nil {
		return "", nil, false
	}
	return plan.Backend, plan.Changes, true
}

var (
	weightField  = regexp.MustCompile(` weight \d+( disabled)?`)
	switchServer = regexp.MustCompile(`(?m)^(    server ` + stickySwitch + ` \S+ weight 1) disabled$`)
)

// withoutRequestLog is a route with its request log's lines taken out.
func withoutRequestLog(cfg []byte) []byte {
	addr := RouteRequestLog(cfg)
	if addr == "" {
		return cfg
	}
	lines := fmt.Sprintf("    log %s format raw local0\n    log-format \"%s\"\n", addr, RequestLogFormat)
	return []byte(strings.Replace(string(cfg), lines, "", 1))
}

// shape is a route without the server lines of its backend and with its
// sticky switch off: what must stay the same for the runtime API to apply a
// change.
func shape(cfg []byte) string {
	lines := strings.Split(switchServer.ReplaceAllString(string(cfg), "$1"), "\n")
	out := lines[:0]
	switchSection := false
	for _, line := range lines {
		f := strings.Fields(line)
		if len(f) == 2 && f[0] == "backend" {
			switchSection = isStickyBackend(f[1])
		}
		if len(f) > 0 && f[0] == "server" && !switchSection {
			continue
		}
		out = append(out, line)
	}
	return strings.Join(out, "\n")
}

func backendOf(cfg []byte) string {
	for _, line := range strings.Split(string(cfg), "\n") {
		if f := strings.Fields(line); len(f) == 2 && f[0] == "backend" && !isStickyBackend(f[1]) {
			return f[1]
		}
	}
	return ""
}

// defaultServerArgs are the settings of a route's default-server line.
func defaultServerArgs(cfg []byte) string {
	for _, line := range strings.Split(string(cfg), "\n") {
		if f := strings.Fields(line); len(f) > 1 && f[0] == "default-server" {
			return strings.Join(f[1:], " ")
		}
	}
	return ""
}

// Commands renders the runtime API command line that applies the plan,
// then reads the backend and its sticky switch back. HAProxy runs the
// commands of one line in order; the order keeps every request served:
// servers are added (with no weight until they are UP), weights raised,
// then others drained and removed.
func (p RuntimePlan) Commands() string {
	be := p.Backend
	var cmds []string
	for _, s := range p.Add {
		t := be + "/" + s.Name
		// A server of that name left in maintenance by an earlier removal
		// goes first; with none, HAProxy answers "No such server".
		cmds = append(cmds, "del server "+t, "add server "+t+" "+s.Address+" check "+p.serverArgs+" weight 0")
		if s.Drain {
			continue // added in maintenance, where it stays
		}
		cmds = append(cmds, "enable server "+t)
		if !p.serving[s.Address] {
			cmds = append(cmds, "set server "+t+" health down")
		}
		cmds = append(cmds, "enable health "+t)
	}
	if len(p.Add) > 0 {
		cmds = append(cmds, "enable dynamic-cookie backend "+be) // derives the new servers' cookies
	}
	if p.Sticky != nil && *p.Sticky {
		cmds = append(cmds, "set server "+StickyBackend(be)+"/"+stickySwitch+" state ready")
	}
	var drains []string
	for _, s := range p.Add {
		if !s.Drain && s.Weight > 0 {
			cmds = append(cmds, "set server "+be+"/"+s.Name+" weight "+strconv.Itoa(s.Weight))
		}
	}
	for _, c := range p.Changes {
		t := be + "/" + c.Server
		if c.Drain {
			// Weight first: HAProxy's exporter keeps the weight a server has
			// when it enters maintenance.
			drains = append(drains, "set server "+t+" weight 0", "set server "+t+" state maint")
			continue
		}
		cmds = append(cmds, "set server "+t+" weight "+strconv.Itoa(c.Weight), "set server "+t+" state ready")
	}
	cmds = append(cmds, drains...)
	if p.Sticky != nil && !*p.Sticky {
		cmds = append(cmds, "set server "+StickyBackend(be)+"/"+stickySwitch+" state maint")
	}
	for _, name := range p.Remove {
		t := be + "/" + name
		cmds = append(cmds, "set server "+t+" weight 0", "set server "+t+" state maint", "del server "+t)
	}
	cmds = append(cmds, "show servers state "+be, "show servers state "+StickyBackend(be))
	return strings.Join(cmds, "; ")
}

// RuntimeCommands renders the runtime API command line that applies weight
// changes alone.
func RuntimeCommands(backend string, changes []WeightChange) string {
	cmd := RuntimePlan{Backend: backend, Changes: changes}.Commands()
	return strings.TrimSuffix(cmd, "; show servers state "+backend+"; show servers state "+StickyBackend(backend))
}

// RuntimeServer is a server as `show servers state` reports it.
type RuntimeServer struct {
	Address string // srv_addr:srv_port
	Weight  int    // srv_uweight: the weight set by the configuration or the runtime API
	Maint   bool   // forced, inherited or resolver maintenance
}

// ParseServersState reads the servers of one backend from the answer to
// `show servers state`; answers to other commands may come before it.
func ParseServersState(out, backend string) (map[string]RuntimeServer, error) {
	lines := strings.Split(out, "\n")
	var header []string
	col := map[string]int{}
	servers := map[string]RuntimeServer{}
	for _, line := range lines {
		line = strings.TrimSpace(line)
		switch {
		case strings.HasPrefix(line, "# be_id"):
			header = strings.Fields(strings.TrimPrefix(line, "#"))
			for i, h := range header {
				col[h] = i
			}
		case line == "" || strings.HasPrefix(line, "#") || header == nil:
		default:
			f := strings.Fields(line)
			name, be, uw, adm, addr, port := col["srv_name"], col["be_name"], col["srv_uweight"], col["srv_admin_state"], col["srv_addr"], col["srv_port"]
			if len(f) <= max(name, be, uw, adm, addr, port) || f[be] != backend {
				continue
			}
			w, err1 := strconv.Atoi(f[uw])
			a, err2 := strconv.Atoi(f[adm])
			if err1 != nil || err2 != nil {
				return nil, fmt.Errorf("cannot read the server state line %q", line)
			}
			// SRV_ADMF_FMAINT|IMAINT|RMAINT; CMAINT (0x04) only says the configuration started it disabled.
			servers[f[name]] = RuntimeServer{Address: f[addr] + ":" + f[port], Weight: w, Maint: a&0x23 != 0}
		}
	}
	if header == nil {
		return nil, fmt.Errorf("the router answered %q", strings.TrimSpace(out))
	}
	return servers, nil
}

// ErrNoRuntimeAPI is a router whose running configuration has no runtime
// socket (created by an earlier version): its routes change by reloads until
// its base file is rewritten (the next apply of the router).
var ErrNoRuntimeAPI = errors.New("the router has no runtime API socket")

// Runtime runs one command line on the router's runtime API and returns the answer.
func (c *Controller) Runtime(ctx context.Context, routerID, command string) (string, error) {
	code, out, err := c.execProbe(ctx, routerID, "-cli", RuntimeSocket, command)
	switch {
	case err != nil:
		return "", fmt.Errorf("running %q on the router's runtime API: %w", command, err)
	case code == 3:
		return "", fmt.Errorf("%w: %s", ErrNoRuntimeAPI, strings.TrimSpace(out))
	case code != 0:
		return "", fmt.Errorf("running %q on the router's runtime API: %s", command, strings.TrimSpace(out))
	}
	return out, nil
}

// runtimeChange is a route change the runtime API can apply: the one
// route file changes only in its servers and sticky switch, and the base
// file the router runs opens the runtime socket.
func runtimeChange(files, current map[string][]byte) (plan RuntimePlan, next []byte, ok bool) {
	if len(files) != 1 || !strings.Contains(string(current[BaseFile]), "stats socket "+RuntimeSocket+" ") {
		return RuntimePlan{}, nil, false
	}
	for name, cfg := range files {
		if !isRouteFile(name) {
			return RuntimePlan{}, nil, false
		}
		plan, ok = PlanRuntime(current[name], cfg)
		next = cfg
	}
	return plan, next, ok
}

// applyRuntime applies a plan through the runtime API and reads the backend
// back: an error means the running worker does not run exactly the route
// (every server at its address with its weight and drain, the sticky
// switch), which a reload then loads.
func (c *Controller) applyRuntime(ctx context.Context, routerID string, plan RuntimePlan, route []byte) error {
	// One exec: the changes, then the backend as the worker runs it.
	out, err := c.Runtime(ctx, routerID, plan.Commands())
	if err != nil {
		return err
	}
	return c.confirmRuntime(ctx, routerID, plan, route, out)
}

// confirmRuntime reads the answer to a plan's commands: nil when the
// worker runs the route. Servers an earlier removal left in maintenance
// with connections are tried again; those that still have some are left
// for a later change.
func (c *Controller) confirmRuntime(ctx context.Context, routerID string, plan RuntimePlan, route []byte, out string) error {
	leftovers, err := verifyRuntime(out, plan.Backend, route)
	if err != nil {
		return err
	}
	if len(leftovers) > 0 {
		var cmds []string
		for _, name := range leftovers {
			cmds = append(cmds, "del server "+plan.Backend+"/"+name)
		}
		_, _ = c.Runtime(ctx, routerID, strings.Join(cmds, "; "))
	}
	return nil
}

// maxPlaced bounds a route placed with its commands in one exec: the
// content travels base64-encoded as one argument (Linux admits 128 KiB).
const maxPlaced = 96 << 10

// applyPlaced applies a route change the runtime API can apply in one exec
// of the probe, which places the file and sends the commands, when the
// caller knows the route the router has (previous) and this Controller has
// read the router's base file (it opens the socket). done is false, with
// nothing changed, when the change is not one of those: then the full path
// (read, stage, rename, runtime or reload) applies it. An injected fault
// takes the full path, whose steps it stops between.
func (c *Controller) applyPlaced(ctx context.Context, routerID string, files, previous map[string][]byte) (done bool, err error) {
	base := c.knownBase(routerID)
	if failpoint.Armed() || len(files) != 1 || base == nil {
		return false, nil
	}
	var name string
	for n := range files {
		name = n
	}
	plan, next, ok := runtimeChange(files, map[string][]byte{BaseFile: base, name: previous[name]})
	encoded := base64.StdEncoding.EncodeToString(next)
	if !ok || len(encoded) > maxPlaced {
		return false, nil
	}
	code, out, err := c.execProbe(ctx, routerID, "-place", path.Join(ConfigDir, name), encoded, "-cli", RuntimeSocket, plan.Commands())
	switch {
	case err != nil:
		// The probe may have placed the file, and sent the commands, although the answer was lost.
		return true, &ReloadUnconfirmedError{Err: fmt.Errorf("placing the route and applying it through the runtime API: %w", err)}
	case code == placeFailed || code == 2:
		return false, nil
	case code == 0:
		if err = c.confirmRuntime(ctx, routerID, plan, next, out); err == nil {
			return true, nil
		}
	default:
		err = fmt.Errorf("applying the route through the runtime API (exit %d): %s", code, strings.TrimSpace(out))
	}
	// The file is in place: a reload loads it.
	return true, c.reloadPlaced(ctx, routerID, err)
}

// reloadPlaced reloads the router after a route file was placed and the
// runtime API did not apply it (why).
func (c *Controller) reloadPlaced(ctx context.Context, routerID string, why error) error {
	watch, err := c.watchReload(ctx, routerID)
	if err != nil {
		return &ReloadUnconfirmedError{Err: errors.Join(why, err)}
	}
	return c.signalAndConfirm(ctx, routerID, watch)
}

// placeFailed is the probe's exit code for -place when nothing was placed.
const placeFailed = 5

// verifyRuntime compares the running worker's backend (the answer to `show
// servers state` of the backend and its sticky backend) with the route. It
// returns the servers the route no longer has that the worker keeps in
// maintenance with no weight: removed, with connections still open.
func verifyRuntime(out, backend string, route []byte) (leftovers []string, err error) {
	if !strings.Contains(out, "# be_id") {
		return nil, fmt.Errorf("the router refused a change: %s", strings.TrimSpace(out))
	}
	live, err := ParseServersState(out, backend)
	if err != nil {
		return nil, err
	}
	want := map[string]bool{}
	for _, s := range ParseRouteServers(route) {
		want[s.Name] = true
		l, found := live[s.Name]
		if !found || l.Weight != s.Weight || l.Maint != s.Drain || l.Address != s.Address {
			return nil, fmt.Errorf("the router runs server %s at %q with weight %d (maintenance %t), the route says %s with weight %d (drain %t): %s",
				s.Name, l.Address, l.Weight, l.Maint, s.Address, s.Weight, s.Drain, strings.TrimSpace(out[:strings.Index(out, "# be_id")]))
		}
	}
	for name, l := range live {
		if want[name] {
			continue
		}
		if !l.Maint || l.Weight != 0 {
			return nil, fmt.Errorf("the router runs server %s, which the route does not have, with weight %d (maintenance %t)", name, l.Weight, l.Maint)
		}
		leftovers = append(leftovers, name)
	}
	sort.Strings(leftovers)
	switches, err := ParseServersState(out, StickyBackend(backend))
	if err != nil {
		return nil, err
	}
	if sw, found := switches[stickySwitch]; !found || sw.Maint == IsSticky(route) {
		return nil, fmt.Errorf("the router's sticky switch of %s is not what the route says (sticky %t)", backend, IsSticky(route))
	}
	return leftovers, nil
}

// OldWorkersMatter says whether a reload that replaces the files must wait
// for HAProxy's old workers to finish before it is confirmed: only when it
// takes away a server that could still get new requests in the replaced
// configuration (one with weight that was not drained, at an address the
// new one does not route to). A reload that only adds or renames servers,
// or drops servers already drained or without weight, leaves
// the old workers nothing but the connections they have (a WebSocket, an
// event stream), which may last until hard-stop-after; waiting for them
// would hold the apply for nothing. Any file but a route (the base file)
// waits.
func OldWorkersMatter(files, current map[string][]byte) bool {
	for name, next := range files {
		if !isRouteFile(name) {
			return true
		}
		// By address: a server renamed (a canary promoted to stable) is
		// the same container, which old workers may go on using.
		kept := map[string]bool{}
		for _, s := range ParseRouteServers(next) {
			kept[s.Address] = true
		}
		for _, s := range ParseRouteServers(current[name]) {
			if !kept[s.Address] && !s.Drain && s.Weight > 0 {
				return true
			}
		}
	}
	return false
}
