package rollout

import (
	"context"
	"errors"
	"fmt"

	"github.com/releasekit/terraform-provider-release/internal/docker"
	"github.com/releasekit/terraform-provider-release/internal/failpoint"
	"github.com/releasekit/terraform-provider-release/internal/naming"
	"github.com/releasekit/terraform-provider-release/internal/router"
)

// hardSwitch carries out a first release, a hard switch, a rollback and a
// repair: start (or restart) the containers that will serve, wait until
// every one is healthy, let the router check them, route all traffic to
// them, then retire the rest.
func (d *Deployer) hardSwitch(ctx context.Context, spec Spec, before Status, route []byte, dec Decision) (Result, error) {
	healthy, healthyAfter, err := d.startServing(ctx, spec, before, dec, naming.TrackStable)
	if err != nil {
		return Result{}, err
	}
	res, err := d.promote(ctx, spec, before, healthy, dec.Revision, route, before.Containers, dec.Kind != Repair)
	if err != nil {
		var switchErr *switchError
		if errors.As(err, &switchErr) && dec.Kind != Repair {
			// Traffic never moved: take back what was started.
			err = errors.Join(err, d.undoStart(ctx, spec, dec, healthy))
		}
		return Result{}, err
	}
	d.log("previous revisions retired", "revision", dec.Revision)
	res.HealthyAfter = healthyAfter
	return res, nil
}

// undoStart removes a new revision's containers, or stops a retained one's again.
func (d *Deployer) undoStart(ctx context.Context, spec Spec, dec Decision, started []docker.Container) error {
	ctx = context.WithoutCancel(ctx)
	return parallel(idsOf(started), func(id string) error {
		if dec.Kind == Rollback {
			return d.Host.Stop(ctx, id, spec.StopTimeout)
		}
		return d.Host.Remove(ctx, id)
	})
}

// promote sends all traffic to the serving containers, then stops every
// other revision (the router has drained them), removes baselines and
// revisions that never served, and prunes beyond the history limit.
//
// Nothing is retired before the router itself reports the serving
// containers UP. With checkFirst, the router checks them beside the
// containers serving now, with no traffic, before anyone is sent there.
func (d *Deployer) promote(ctx context.Context, spec Spec, before Status, serving []docker.Container, rev int, previousRoute []byte, others []docker.Container, checkFirst bool) (Result, error) {
	name, cfg, err := routeFor(spec, serving)
	if err != nil {
		return Result{}, &switchError{err}
	}
	t := d.Clock.Now()
	if string(previousRoute) != string(cfg) || before.LiveMismatch {
		if err := d.switchTraffic(ctx, spec, before, serving, rev, name, cfg, previousRoute, checkFirst); err != nil {
			return Result{}, err
		}
	} else if resolvesTasks(serving) && spec.Router.ContainerID != "" {
		// The route names Swarm tasks by their service and stays as it is:
		// tasks started again (a repair) reach the router through its
		// resolvers, within a second. The apply ends once it has them UP.
		if err := d.waitRouterReady(ctx, spec, share{serving, naming.TrackStable, 100}); err != nil {
			return Result{}, &RouterCheckError{Err: err}
		}
	}
	d.log("traffic switched", "revision", rev)
	t = d.phase("switched", t)
	if naming.TrackOf(serving[0].Labels) == naming.TrackCanary {
		failpoint.Hit(failpoint.Promoted)
	} else {
		failpoint.Hit(failpoint.Switched)
	}
	if err := d.recordServed(ctx, spec, rev, serving[0]); err != nil {
		return Result{}, fmt.Errorf("recording that revision %d serves: %w", rev, err)
	}
	t = d.phase("recorded", t)
	if err := d.retire(ctx, spec, before, others, rev); err != nil {
		return Result{}, err
	}
	t = d.phase("retired", t)
	managed, err := ListManaged(ctx, d.Host)
	if err != nil {
		return Result{}, err
	}
	d.phase("listed", t)
	// This environment's route is the one just written; Observe reads no other.
	return Result{Status: Observe(spec.Environment, spec.Service, managed, spec.Router.ContainerID, map[string][]byte{name: cfg})}, nil
}

// switchTraffic loads the route that gives the serving containers all
// traffic and waits until the router reports them UP. A failure leaves
// traffic on the containers that served before (switchError), except once
// the router may have loaded the new route: then nothing it points at may
// be removed (router.ReloadUnconfirmedError is returned as it is).
func (d *Deployer) switchTraffic(ctx context.Context, spec Spec, before Status, serving []docker.Container, rev int, name string, cfg, previous []byte, checkFirst bool) error {
	current := runningOf(before, before.Revision)
	if rev == before.Revision {
		current = nil
	}
	incoming := share{serving, naming.TrackStable, 0}
	if before.LiveMismatch && len(current) > 0 {
		// The file was never loaded: going back means back to what runs.
		if _, running, err := routeFor(spec, current); err == nil {
			previous = running
		}
	}
	live := previous
	if checkFirst && len(current) > 0 {
		d.log("the router checks the new containers", "revision", rev)
		t := d.Clock.Now()
		_, check, err := checkRoute(spec, current, incoming)
		if err == nil {
			err = d.applyRoute(ctx, spec.Router.ContainerID, name, check, live)
		}
		if err != nil {
			return d.unlessLive(err, "letting the router check the new containers")
		}
		live = check
		t = d.phase("check route loaded", t)
		if err := d.waitRouterReady(ctx, spec, incoming); err != nil {
			return d.backToPrevious(ctx, spec, name, previous, live, err)
		}
		t = d.phase("router checked", t)
		// Everyone to the new containers at once, without a reload; the
		// old ones are drained before the route drops them and they stop.
		drained, names, err := d.drain(ctx, spec, live, incoming, share{current, naming.TrackStable, 0})
		if err != nil {
			var unconfirmed *router.ReloadUnconfirmedError
			if errors.As(err, &unconfirmed) {
				return fmt.Errorf("draining the previous revision: %w", err)
			}
			// The check route is live: put back the one that served.
			if perr := d.applyRoute(context.WithoutCancel(ctx), spec.Router.ContainerID, name, previous, live); perr != nil {
				return errors.Join(fmt.Errorf("draining the previous revision: %w", err), fmt.Errorf("putting the previous route back: %w", perr))
			}
			return &switchError{fmt.Errorf("draining the previous revision: %w", err)}
		}
		live = drained
		if err := d.waitDrained(ctx, spec, names); err != nil {
			return fmt.Errorf("draining the previous revision: %w", err)
		}
		d.phase("drained", t)
	}
	t := d.Clock.Now()
	d.log("switching traffic", "revision", rev)
	if len(live) == 0 && len(current) == 0 {
		// A new route: its listener needs a reload, with no server yet;
		// the servers then join through the runtime API, where the router
		// checks them at once (after a reload it checks them within
		// `interval`, and other environments' reloads start that again).
		_, empty, err := renderRoute(spec)
		if err == nil {
			err = d.applyRoute(ctx, spec.Router.ContainerID, name, empty, live)
		}
		if err != nil {
			return d.unlessLive(err, "adding the route")
		}
		live = empty
		t = d.phase("listener loaded", t)
	}
	if err := d.applyRoute(ctx, spec.Router.ContainerID, name, cfg, live); err != nil {
		return d.unlessLive(err, "switching traffic")
	}
	t = d.phase("route loaded", t)
	defer d.phase("router ready", t)
	if err := d.waitRouterReady(ctx, spec, incoming); err != nil {
		if len(current) == 0 {
			return &RouterCheckError{Err: err} // nothing served before to go back to
		}
		return d.backToPrevious(ctx, spec, name, previous, cfg, err)
	}
	return nil
}

// backToPrevious puts the route that served before back after the router's
// check failed. Only once it is back is the failure a switchError, whose
// new containers may be taken away.
func (d *Deployer) backToPrevious(ctx context.Context, spec Spec, name string, previous, live []byte, checkErr error) error {
	if err := d.applyRoute(context.WithoutCancel(ctx), spec.Router.ContainerID, name, previous, live); err != nil {
		return errors.Join(&RouterCheckError{Err: checkErr}, fmt.Errorf("putting the previous route back: %w", err))
	}
	return &switchError{&RouterCheckError{Err: checkErr}}
}

// unlessLive wraps a route error: a switchError (traffic did not move)
// unless the router may have loaded the new route.
func (d *Deployer) unlessLive(err error, doing string) error {
	var unconfirmed *router.ReloadUnconfirmedError
	if errors.As(err, &unconfirmed) {
		return fmt.Errorf("%s: %w", doing, err)
	}
	return &switchError{fmt.Errorf("%s: %w", doing, err)}
}

func idsOf(cs []docker.Container) []string {
	ids := make([]string, 0, len(cs))
	for _, c := range cs {
		ids = append(ids, c.ID)
	}
	return ids
}
