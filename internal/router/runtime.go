package router

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

// A route whose servers and settings stay the same and only their weights
// (or drain) change is applied through HAProxy's runtime API: no reload, so
// no new worker, counters keep counting and no connection is handed to a
// draining worker. The route file is written as well, so that a restart or
// a later reload loads the same split. Any other change reloads.

// WeightChange is one server's new weight in a route that otherwise stays.
type WeightChange struct {
	Server string
	Weight int
	Drain  bool
}

// WeightChanges says whether next differs from previous only in the weights
// (and drain) of its servers, and which servers change; ok is false when
// anything else differs (a server added, removed or moved, a setting, the
// sticky cookie): then the set of servers changes and only a reload applies it.
// Two identical routes give ok with no changes.
func WeightChanges(previous, next []byte) (backend string, changes []WeightChange, ok bool) {
	if len(previous) == 0 || len(next) == 0 || shape(previous) != shape(next) {
		return "", nil, false
	}
	backend = backendOf(next)
	if backend == "" {
		return "", nil, false
	}
	before := map[string]Server{}
	for _, s := range ParseRouteServers(previous) {
		before[s.Name] = s
	}
	for _, s := range ParseRouteServers(next) {
		if b := before[s.Name]; b.Weight != s.Weight || b.Drain != s.Drain {
			changes = append(changes, WeightChange{Server: s.Name, Weight: s.Weight, Drain: s.Drain})
		}
	}
	sort.Slice(changes, func(i, j int) bool { return changes[i].Server < changes[j].Server })
	return backend, changes, true
}

var weightField = regexp.MustCompile(` weight \d+( disabled)?`)

// shape is a route with the weights of its server lines taken out.
func shape(cfg []byte) string {
	lines := strings.Split(string(cfg), "\n")
	for i, line := range lines {
		if f := strings.Fields(line); len(f) > 0 && f[0] == "server" {
			lines[i] = weightField.ReplaceAllString(line, "")
		}
	}
	return strings.Join(lines, "\n")
}

func backendOf(cfg []byte) string {
	for _, line := range strings.Split(string(cfg), "\n") {
		if f := strings.Fields(line); len(f) == 2 && f[0] == "backend" {
			return f[1]
		}
	}
	return ""
}

// RuntimeCommands renders the runtime API command line that applies the
// changes: weights, and the maintenance state of servers drained or taken
// back. HAProxy runs the commands of one line in order.
func RuntimeCommands(backend string, changes []WeightChange) string {
	var cmds []string
	for _, c := range changes {
		target := backend + "/" + c.Server
		if c.Drain {
			cmds = append(cmds, "set server "+target+" state maint", "set server "+target+" weight 0")
			continue
		}
		cmds = append(cmds, "set server "+target+" weight "+strconv.Itoa(c.Weight), "set server "+target+" state ready")
	}
	return strings.Join(cmds, "; ")
}

// RuntimeServer is a server as `show servers state` reports it.
type RuntimeServer struct {
	Weight int  // srv_uweight: the weight set by the configuration or the runtime API
	Maint  bool // forced, inherited or resolver maintenance
}

// ParseServersState reads the answer to `show servers state <backend>`.
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
			if header == nil && line != "" && line != "1" {
				// The format version comes first, then the header: anything else is a complaint.
				return nil, fmt.Errorf("the router answered %q", strings.TrimSpace(out))
			}
		default:
			f := strings.Fields(line)
			name, be, uw, adm := col["srv_name"], col["be_name"], col["srv_uweight"], col["srv_admin_state"]
			if len(f) <= max(name, be, uw, adm) || f[be] != backend {
				continue
			}
			w, err1 := strconv.Atoi(f[uw])
			a, err2 := strconv.Atoi(f[adm])
			if err1 != nil || err2 != nil {
				return nil, fmt.Errorf("cannot read the server state line %q", line)
			}
			// SRV_ADMF_FMAINT|IMAINT|RMAINT; CMAINT (0x04) only says the configuration started it disabled.
			servers[f[name]] = RuntimeServer{Weight: w, Maint: a&0x23 != 0}
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
// route file changes only in its weights, and the base file the router
// runs opens the runtime socket.
func runtimeChange(files, current map[string][]byte) (backend string, changes []WeightChange, next []byte, ok bool) {
	if len(files) != 1 || !strings.Contains(string(current[BaseFile]), "stats socket "+RuntimeSocket+" ") {
		return "", nil, nil, false
	}
	for name, cfg := range files {
		if !isRouteFile(name) {
			return "", nil, nil, false
		}
		backend, changes, ok = WeightChanges(current[name], cfg)
		next = cfg
	}
	return backend, changes, next, ok
}

// setWeights applies weight changes through the runtime API and reads the
// backend back: an error means the running worker does not run exactly the
// route (every server with its weight and drain), which a reload then loads.
func (c *Controller) setWeights(ctx context.Context, routerID, backend string, changes []WeightChange, route []byte) error {
	// One exec: the changes, then the backend as the worker runs it. Each
	// change answers nothing when it succeeds; the state comes last.
	command := "show servers state " + backend
	if len(changes) > 0 {
		command = RuntimeCommands(backend, changes) + "; " + command
	}
	out, err := c.Runtime(ctx, routerID, command)
	if err != nil {
		return err
	}
	if i := strings.Index(out, "# be_id"); i < 0 || strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(out[:i]), "1")) != "" {
		return fmt.Errorf("the router refused a weight change: %s", strings.TrimSpace(out))
	}
	live, err := ParseServersState(out, backend)
	if err != nil {
		return err
	}
	want := ParseRouteServers(route)
	if len(want) != len(live) {
		return fmt.Errorf("the router runs %d servers in %s, the route has %d", len(live), backend, len(want))
	}
	for _, s := range want {
		l, found := live[s.Name]
		if !found || l.Weight != s.Weight || l.Maint != s.Drain {
			return fmt.Errorf("the router runs server %s with weight %d (maintenance %t), the route says weight %d (drain %t)", s.Name, l.Weight, l.Maint, s.Weight, s.Drain)
		}
	}
	return nil
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
