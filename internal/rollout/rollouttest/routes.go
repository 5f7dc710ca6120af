package rollouttest

import (
	"context"
	"strings"
	"sync"
	"time"

	"github.com/releasekit/terraform-provider-release/internal/naming"
	"github.com/releasekit/terraform-provider-release/internal/router"
)

// Routes is an in-memory router (rollout.Routes) that reports every server
// UP at once and passes every probe it runs. It keeps, per route file, the
// servers last applied, so a traffic generator can split requests the way
// the router would. Safe for concurrent use.
type Routes struct {
	// OnApply, if set, is called after every Apply with the files written:
	// a reload of the router (a traffic generator restarts its per-server
	// counters there).
	OnApply func(routerID string, files map[string][]byte)

	mu      sync.Mutex
	files   map[string]map[string][]byte // router ID -> file name -> content
	servers map[string][]router.Server   // route file name -> servers applied last
	applies int
}

// NewRoutes is a router with the base file only.
func NewRoutes() *Routes {
	return &Routes{files: map[string]map[string][]byte{}, servers: map[string][]router.Server{}}
}

// Files returns the router's files.
func (r *Routes) Files(_ context.Context, routerID string) (map[string][]byte, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make(map[string][]byte, len(r.files[routerID])+1)
	out[router.BaseFile] = []byte("# base\n")
	for k, v := range r.files[routerID] {
		out[k] = v
	}
	return out, nil
}

// Apply writes files and "reloads" the router.
func (r *Routes) Apply(_ context.Context, routerID string, files map[string][]byte) error {
	r.mu.Lock()
	if r.files[routerID] == nil {
		r.files[routerID] = map[string][]byte{}
	}
	for name, content := range files {
		r.files[routerID][name] = append([]byte(nil), content...)
		r.servers[name] = router.ParseRouteServers(content)
	}
	r.applies++
	hook := r.OnApply
	r.mu.Unlock()
	if hook != nil {
		hook(routerID, files)
	}
	return nil
}

// Applies is how many times routes were applied.
func (r *Routes) Applies() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.applies
}

// WaitReady reports every server UP at once.
func (r *Routes) WaitReady(context.Context, string, int, string, []string, time.Duration) error {
	return nil
}

// LiveServers is what the route files hold, every server UP.
func (r *Routes) LiveServers(_ context.Context, routerID string, _ int, backend string) (map[string]router.ServerState, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := map[string]router.ServerState{}
	for name, content := range r.files[routerID] {
		if !strings.HasPrefix(name, "route_") || !strings.Contains(string(content), "backend "+backend+"\n") {
			continue
		}
		for _, s := range r.servers[name] {
			out[s.Name] = router.ServerState{Status: "UP", CheckStatus: "L7OK", Weight: s.Weight}
		}
	}
	return out, nil
}

// ProbeFrom passes every health probe (the gate then needs no probe binary in the containers).
func (r *Routes) ProbeFrom(context.Context, string, string, string, time.Duration) (int, string, error) {
	return 0, "200 OK", nil
}

// Servers are the servers of an environment's route as last applied.
func (r *Routes) Servers(environment, service string) []router.Server {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.servers[router.RouteFileName(environment, service)]
}

// Shares is the fraction of new requests each track's servers get from an
// environment's route as last applied: by weight, drained servers none.
func (r *Routes) Shares(environment, service string) map[naming.Track]float64 {
	return SharesOf(r.Servers(environment, service))
}

// SharesOf is the fraction of new requests each track gets from servers.
func SharesOf(servers []router.Server) map[naming.Track]float64 {
	out := map[naming.Track]float64{}
	total := 0
	for _, s := range servers {
		if !s.Drain {
			total += s.Weight
		}
	}
	if total == 0 {
		return out
	}
	for _, s := range servers {
		if sv, ok := naming.ParseServerName(s.Name); ok && !s.Drain && s.Weight > 0 {
			out[sv.Track] += float64(s.Weight) / float64(total)
		}
	}
	return out
}
