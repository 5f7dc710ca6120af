package rollout

import (
	"context"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/releasekit/terraform-provider-release/internal/docker"
	"github.com/releasekit/terraform-provider-release/internal/naming"
	"github.com/releasekit/terraform-provider-release/internal/router"
)

// share is a group of containers of one track and its percent of traffic.
type share struct {
	containers []docker.Container
	track      naming.Track
	percent    int
}

// renderRoute writes the route that splits traffic between the groups. With
// more than one group, users stick to the server that first answered them,
// so a user on the canary stays on it as its weight grows.
func renderRoute(spec Spec, groups ...share) (string, []byte, error) {
	return renderRouteSticky(spec, len(groups) > 1, groups...)
}

func renderRouteSticky(spec Spec, sticky bool, groups ...share) (string, []byte, error) {
	r := buildRoute(spec, sticky, groups...)
	cfg, err := router.RenderRoute(r)
	return r.FileName(), cfg, err
}

// drainRoute gives the serving group all traffic and drains the others:
// they take no new request, sticky users' included, and keep the
// connections they have. Beside the route it came from (the same servers,
// the same stickiness) only weights change, which the router applies
// without a reload.
// The route keeps its request log (a canary's tally counts the requests
// the drained servers still answer).
func drainRoute(spec Spec, sticky bool, requestLog string, serving share, drained ...share) (string, []byte, error) {
	serving.percent = 100
	groups := []share{serving}
	for _, g := range drained {
		g.percent = 0
		groups = append(groups, g)
	}
	r := buildRoute(spec, sticky, groups...)
	r.RequestLog = requestLog
	for i := range r.Servers {
		if i >= len(serving.containers) {
			r.Servers[i].Drain = true
		}
	}
	cfg, err := router.RenderRoute(r)
	return r.FileName(), cfg, err
}

// isSticky says whether a rendered route pins users with a cookie.
func isSticky(cfg []byte) bool { return router.IsSticky(cfg) }

func buildRoute(spec Spec, sticky bool, groups ...share) router.Route {
	r := router.Route{
		Environment:   spec.Environment,
		Service:       spec.Service,
		ListenPort:    spec.Router.ListenPort,
		HealthPath:    spec.Health.Path,
		CheckInterval: spec.Health.Interval,
		CheckTimeout:  spec.Health.Timeout,
		Sticky:        sticky,
	}
	// HAProxy weights are per server and at most 256: scale so the largest
	// per-server share gets 256 and the ratios between tracks hold. A single
	// group keeps HAProxy's plain weight of 100.
	largest := 0.0
	for _, g := range groups {
		if len(g.containers) > 0 {
			largest = math.Max(largest, float64(g.percent)/float64(len(g.containers)))
		}
	}
	for _, g := range groups {
		for _, c := range g.containers {
			w := 100
			if len(groups) > 1 || g.percent == 0 {
				w = 0
				if g.percent > 0 {
					w = max(1, int(math.Round(float64(g.percent)/float64(len(g.containers))*256/largest)))
				}
			}
			s := router.Server{
				Name:    naming.ServerName(g.track, atoi(c.Labels[naming.LabelRevision]), atoi(c.Labels[naming.LabelReplica])),
				Address: ipOf(c, spec) + ":" + strconv.Itoa(portOf(c, spec)),
				Weight:  w,
				Track:   string(g.track),
			}
			if c.Task != nil && c.Task.Service != "" {
				// A Swarm task: the router finds the service's tasks through
				// Swarm's DNS, wherever Swarm restarts or moves them.
				s.Address, s.Resolve = naming.SwarmTasksName(c.Task.Service)+":"+strconv.Itoa(portOf(c, spec)), true
			}
			r.Servers = append(r.Servers, s)
		}
	}
	return r
}

// ipOf is a container's address where the router reaches it: on the
// environment's network, else on its other network of its own. An
// environment moving between one host and a swarm has its serving
// containers on the bridge while the new revision's tasks start on the
// overlay; the router is on both until the old network is removed.
func ipOf(c docker.Container, spec Spec) string {
	if ip := c.IPs[spec.Network()]; ip != "" {
		return ip
	}
	for _, n := range []string{naming.NetworkName(spec.Environment, spec.Service), naming.OverlayNetworkName(spec.Environment, spec.Service)} {
		if ip := c.IPs[n]; ip != "" {
			return ip
		}
	}
	return ""
}

// resolvesTasks says whether the router finds the containers through
// Swarm's DNS: they are a service's tasks.
func resolvesTasks(cs []docker.Container) bool {
	for _, c := range cs {
		if c.Task != nil && c.Task.Service != "" {
			return true
		}
	}
	return false
}

// routeFor renders the route that sends all traffic to the given containers.
func routeFor(spec Spec, containers []docker.Container) (string, []byte, error) {
	return renderRoute(spec, share{containers: containers, track: naming.TrackStable, percent: 100})
}

// canaryRoute splits traffic: weight percent to the canary, as much to the
// baseline when there is one, the rest to stable.
func canaryRoute(spec Spec, st canaryState, weight int) (string, []byte, error) {
	baseline := 0
	if len(st.baseline) > 0 {
		baseline = weight
	}
	groups := []share{
		{st.stable, naming.TrackStable, 100 - weight - baseline},
		{st.canary, naming.TrackCanary, weight},
		{st.baseline, naming.TrackBaseline, baseline}}
	r := buildRoute(spec, len(groups) > 1, groups...)
	// While the canary runs, its route logs each request to the canary's
	// tally; the routes before and after it do not.
	r.RequestLog = st.requestLog
	cfg, err := router.RenderRoute(r)
	return r.FileName(), cfg, err
}

// portOf is the port a container serves on: its own label, else the spec's
// (containers from before the label existed).
func portOf(c docker.Container, spec Spec) int {
	if p := atoi(c.Labels[naming.LabelPort]); p > 0 {
		return p
	}
	return spec.Port
}

// applyRoute writes one route and reloads the router.
func (d *Deployer) applyRoute(ctx context.Context, routerID, name string, cfg, previous []byte) error {
	if ka, ok := d.Routes.(knownApplier); ok {
		return ka.ApplyKnown(ctx, routerID, map[string][]byte{name: cfg}, map[string][]byte{name: previous})
	}
	return d.Routes.Apply(ctx, routerID, map[string][]byte{name: cfg})
}

// checkRoute keeps traffic where it is and adds the new containers with no
// traffic, so that the router's own checks judge them before anyone is sent
// there.
func checkRoute(spec Spec, serving []docker.Container, incoming ...share) (string, []byte, error) {
	groups := []share{{serving, naming.TrackStable, 100}}
	for _, g := range incoming {
		g.percent = 0
		groups = append(groups, g)
	}
	return renderRouteSticky(spec, false, groups...)
}

// serverNames are the router's names of the containers of a route's group.
func serverNames(g share) []string {
	out := make([]string, 0, len(g.containers))
	for _, c := range g.containers {
		out = append(out, naming.ServerName(g.track, atoi(c.Labels[naming.LabelRevision]), atoi(c.Labels[naming.LabelReplica])))
	}
	return out
}

// readyTimeout bounds the wait for the router's first check of a server:
// checks start spread over one interval and may take the check timeout.
func readyTimeout(spec Spec) time.Duration {
	return 3*spec.Health.Interval + spec.Health.Timeout + 5*time.Second
}

// waitRouterReady waits until the router reports every container UP after
// a check of its own: the gate is the router's own check.
func (d *Deployer) waitRouterReady(ctx context.Context, spec Spec, groups ...share) error {
	var names []string
	for _, g := range groups {
		names = append(names, serverNames(g)...)
	}
	return d.Routes.WaitReady(ctx, spec.Router.ContainerID, spec.Router.MetricsPort, router.BackendName(spec.Environment, spec.Service), names, readyTimeout(spec))
}

// drainer is a Routes that can wait for drained servers' sessions to end
// (router.Controller).
type drainer interface {
	WaitDrained(ctx context.Context, routerID string, metricsPort int, backend string, servers []string, timeout time.Duration) (map[string]int, error)
}

// drain sends every new request to the serving group and drains the
// others, as a change of weights only of the live route (the router applies
// it without a reload, so no connection moves to a draining worker). It
// returns the route now live and the drained servers, for waitDrained: live
// itself and none when the drain would be more than a change of weights
// (the route has other servers).
func (d *Deployer) drain(ctx context.Context, spec Spec, live []byte, serving share, drained ...share) ([]byte, []string, error) {
	name, cfg, err := drainRoute(spec, isSticky(live), router.RouteRequestLog(live), serving, drained...)
	if err != nil {
		return live, nil, err
	}
	if _, changes, ok := router.WeightChanges(live, cfg); !ok || len(changes) == 0 {
		return live, nil, nil
	}
	if err := d.applyRoute(ctx, spec.Router.ContainerID, name, cfg, live); err != nil {
		return live, nil, err
	}
	var names []string
	for _, g := range drained {
		names = append(names, serverNames(g)...)
	}
	return cfg, names, nil
}

// waitDrained waits up to stop_timeout for the sessions of drained servers
// to end (a long download, a WebSocket, an event stream), before the route
// drops them and their containers stop. Sessions left then are logged, not
// an error: the container's own stop_timeout still lets them finish.
func (d *Deployer) waitDrained(ctx context.Context, spec Spec, names []string) error {
	dr, ok := d.Routes.(drainer)
	if !ok || len(names) == 0 {
		return nil
	}
	start := d.Clock.Now()
	left, err := dr.WaitDrained(ctx, spec.Router.ContainerID, spec.Router.MetricsPort, router.BackendName(spec.Environment, spec.Service), names, spec.StopTimeout)
	switch {
	case err != nil && ctx.Err() != nil:
		return err
	case err != nil:
		d.log("the drained servers' sessions cannot be read; going on", "error", err.Error())
	case len(left) > 0:
		d.log("drained servers still have sessions after stop_timeout; going on", "sessions", router.DescribeSessions(left))
	default:
		d.log("drained", "servers", strings.Join(names, ","), "after", d.Clock.Now().Sub(start).String())
	}
	return nil
}

// byTrack groups containers into shares by their track label.
func byTrack(cs []docker.Container) []share {
	var out []share
	index := map[naming.Track]int{}
	for _, c := range cs {
		t := naming.TrackOf(c.Labels)
		i, ok := index[t]
		if !ok {
			i = len(out)
			index[t] = i
			out = append(out, share{track: t})
		}
		out[i].containers = append(out[i].containers, c)
	}
	return out
}
