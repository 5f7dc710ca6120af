package rollout

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/releasekit/terraform-provider-release/internal/docker"
	"github.com/releasekit/terraform-provider-release/internal/probe"
)

// The health gate: before a new container gets traffic, the provider runs
// the probe until it passes HealthyThreshold times in a row: in the router
// (its probe session), against the address the route will give the
// container, or, where the router cannot run it, in the container itself
// (a Docker exec of /.release-probe). Only while gating: the containers
// carry no Docker HEALTHCHECK, so at rest nothing is exec'd in them and the
// router's own HTTP checks are the health signal.
//
// The first check runs as soon as the container started; the wait before
// the next one starts at gateFirstPoll and doubles after every check, up to
// the health check's interval, so an app ready in milliseconds is gated in
// milliseconds and a slow one is not exec'd more than once per interval for
// long. The first pass after a failure starts the doubling again, so that
// the passes in a row follow each other quickly.

// gateFirstPoll is the wait after the first check.
const gateFirstPoll = 20 * time.Millisecond

// nextGateWait is the wait before the next check: twice the last one, at
// most interval; gateFirstPoll at the first pass after a failure (or after
// the first check).
func nextGateWait(last, interval time.Duration, passed bool, streak int) time.Duration {
	if interval <= 0 {
		interval = time.Second
	}
	if last <= 0 || (passed && streak == 1) {
		return min(gateFirstPoll, interval)
	}
	return min(2*last, interval)
}

// gated is one container's progress through the gate.
type gated struct {
	id     string
	c      docker.Container
	due    time.Time
	wait   time.Duration
	streak int // passes in a row
	checks int
	last   string // the last check's output
	done   bool
	err    error // set when the container can never pass (it exited)
}

// waitHealthy runs the gate for every container at once and returns them
// as inspected once each passed. A container that exits fails the gate at
// once; one that has not passed by StartTimeout fails it then. Either is an
// *UnhealthyError with the container's last log lines.
func (d *Deployer) waitHealthy(ctx context.Context, spec Spec, ids []string) ([]docker.Container, error) {
	start := d.Clock.Now()
	deadline := start.Add(spec.Health.StartTimeout)
	threshold := max(spec.Health.HealthyThreshold, 1)
	gs := make([]*gated, len(ids))
	for i, id := range ids {
		gs[i] = &gated{id: id, due: start}
	}
	for {
		now := d.Clock.Now()
		var due []*gated
		for _, g := range gs {
			if !g.done && !g.due.After(now) {
				due = append(due, g)
			}
		}
		if err := parallelGated(due, func(g *gated) error { return d.check(ctx, spec, g, threshold, start) }); err != nil {
			return nil, err
		}
		for _, g := range due {
			if g.err != nil {
				return nil, d.unhealthy(ctx, g.c, g.err.Error())
			}
		}
		next, waiting := time.Time{}, false
		for _, g := range gs {
			if !g.done && (!waiting || g.due.Before(next)) {
				next, waiting = g.due, true
			}
		}
		if !waiting {
			out := make([]docker.Container, len(gs))
			for i, g := range gs {
				out[i] = g.c
			}
			return out, nil
		}
		now = d.Clock.Now()
		if !now.Before(deadline) {
			for _, g := range gs {
				if !g.done {
					return nil, d.unhealthy(ctx, g.c, fmt.Sprintf("not healthy after %s; last check: %s", spec.Health.StartTimeout, g.lastOutput()))
				}
			}
		}
		if next.After(deadline) {
			next = deadline
		}
		if err := d.Clock.Sleep(ctx, next.Sub(now)); err != nil {
			return nil, err
		}
	}
}

// check runs one check of one container and schedules its next one.
// Errors are the Docker API's on inspect; a failed exec is a failed check.
func (d *Deployer) check(ctx context.Context, spec Spec, g *gated, threshold int, start time.Time) error {
	c, err := d.Host.Inspect(ctx, g.id)
	if err != nil {
		return err
	}
	g.c = c
	if c.State == "exited" || c.State == "dead" {
		g.err = fmt.Errorf("it exited")
		return nil
	}
	// The probe gives up after the timeout itself; this bounds a stuck exec.
	ectx, cancel := context.WithTimeout(ctx, spec.Health.Timeout+2*time.Second)
	code, out, err := d.probe(ectx, spec, c)
	cancel()
	if ctx.Err() != nil {
		return ctx.Err()
	}
	g.checks++
	passed := err == nil && code == 0
	switch {
	case err != nil:
		g.last = "the check could not run: " + err.Error()
	default:
		g.last = strings.TrimSpace(out)
	}
	if passed {
		g.streak++
	} else {
		g.streak = 0
	}
	if g.streak >= threshold {
		g.done = true
		d.log("container passed the health gate", "container", c.Name, "checks", g.checks, "after", d.Clock.Now().Sub(start).String())
		return nil
	}
	g.wait = nextGateWait(g.wait, spec.Health.Interval, passed, g.streak)
	g.due = d.Clock.Now().Add(g.wait)
	return nil
}

// probe runs one check of a container: from the router, at the address the
// route will give it, when the router can run it; else by an exec of the
// probe in the container, on its own port.
func (d *Deployer) probe(ctx context.Context, spec Spec, c docker.Container) (int, string, error) {
	port := portOf(c, spec)
	if p, ok := d.Routes.(routerProber); ok && spec.Router.ContainerID != "" && c.IPs[spec.Network()] != "" {
		addr := net.JoinHostPort(c.IPs[spec.Network()], strconv.Itoa(port))
		return p.ProbeFrom(ctx, spec.Router.ContainerID, addr, spec.Health.Path, spec.Health.Timeout)
	}
	return d.Host.Exec(ctx, c.ID, probe.Command(port, spec.Health.Path, spec.Health.Timeout)[1:]) // without Docker's "CMD"
}

func (g *gated) lastOutput() string {
	if g.checks == 0 {
		return "no check has run yet"
	}
	if g.last == "" {
		return "no output"
	}
	return g.last
}

// parallelGated runs fn for each container at once and returns the first
// error in their order.
func parallelGated(gs []*gated, fn func(*gated) error) error {
	ids := make([]string, len(gs))
	byID := make(map[string]*gated, len(gs))
	for i, g := range gs {
		ids[i] = g.id
		byID[g.id] = g
	}
	return parallel(ids, func(id string) error { return fn(byID[id]) })
}

// usable says whether a container found on the host can serve as it is:
// it runs, and Docker does not call it unhealthy. Containers the provider
// created since it gates by itself have no Docker health status at all: at
// rest the router's own checks are their health signal. Only containers
// created by earlier versions, which carry a Docker HEALTHCHECK, can be
// "unhealthy".
func usable(c docker.Container) bool {
	return c.Running() && c.Health != "unhealthy"
}
