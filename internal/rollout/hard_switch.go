package rollout

import (
	"context"
	"errors"
	"fmt"

	"github.com/releasekit/terraform-provider-release/internal/docker"
	"github.com/releasekit/terraform-provider-release/internal/failpoint"
	"github.com/releasekit/terraform-provider-release/internal/naming"
)

// hardSwitch carries out a first release, a hard switch, a rollback and a
// repair: start (or restart) the containers that will serve, wait until
// every one is healthy, route all traffic to them, then retire the rest.
func (d *Deployer) hardSwitch(ctx context.Context, spec Spec, before Status, route []byte, dec Decision) (Result, error) {
	healthy, healthyAfter, err := d.startServing(ctx, spec, before, dec, naming.TrackStable)
	if err != nil {
		return Result{}, err
	}
	res, err := d.promote(ctx, spec, before, healthy, dec.Revision, route, before.Containers)
	if err != nil {
		var switchErr *switchError
		if errors.As(err, &switchErr) && dec.Kind != Repair {
			// Traffic never moved: take back what was started.
			d.undoStart(ctx, spec, dec, healthy)
		}
		return Result{}, err
	}
	d.log("previous revisions retired", "revision", dec.Revision)
	res.HealthyAfter = healthyAfter
	return res, nil
}

// undoStart removes a new revision's containers, or stops a retained one's again.
func (d *Deployer) undoStart(ctx context.Context, spec Spec, dec Decision, started []docker.Container) {
	ctx = context.WithoutCancel(ctx)
	for _, c := range started {
		if dec.Kind == Rollback {
			_ = d.Host.Stop(ctx, c.ID, spec.StopTimeout)
		} else {
			_ = d.Host.Remove(ctx, c.ID)
		}
	}
}

// promote sends all traffic to the serving containers, then stops every
// other revision (the router has drained them), removes baselines and prunes
// beyond the history limit.
func (d *Deployer) promote(ctx context.Context, spec Spec, before Status, serving []docker.Container, rev int, previousRoute []byte, others []docker.Container) (Result, error) {
	name, cfg, err := routeFor(spec, serving)
	if err != nil {
		return Result{}, &switchError{err}
	}
	if string(previousRoute) != string(cfg) {
		d.log("switching traffic", "revision", rev)
		if err := d.applyRoute(ctx, spec.Router.ContainerID, name, cfg, previousRoute); err != nil {
			return Result{}, &switchError{fmt.Errorf("switching traffic: %w", err)}
		}
	}
	d.log("traffic switched", "revision", rev)
	if naming.TrackOf(serving[0].Labels) == naming.TrackCanary {
		failpoint.Hit(failpoint.Promoted)
	} else {
		failpoint.Hit(failpoint.Switched)
	}
	if err := d.recordServed(ctx, spec, rev, serving[0]); err != nil {
		return Result{}, fmt.Errorf("recording that revision %d serves: %w", rev, err)
	}
	if err := d.retire(ctx, spec, before, others, rev); err != nil {
		return Result{}, err
	}
	managed, err := ListManaged(ctx, d.Host)
	if err != nil {
		return Result{}, err
	}
	// This environment's route is the one just written; Observe reads no other.
	return Result{Status: Observe(spec.Environment, spec.Service, managed, spec.Router.ContainerID, map[string][]byte{name: cfg})}, nil
}
