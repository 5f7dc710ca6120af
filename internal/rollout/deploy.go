package rollout

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/releasekit/terraform-provider-release/internal/clock"
	"github.com/releasekit/terraform-provider-release/internal/docker"
	"github.com/releasekit/terraform-provider-release/internal/naming"
	"github.com/releasekit/terraform-provider-release/internal/router"
)

// Deployer carries out rollouts on one Docker host.
type Deployer struct {
	Host   Host
	Routes Routes
	// Clock is read wherever the rollout waits, so tests never sleep.
	Clock clock.Clock
	// Metrics opens what samples a canary; given once, used by every canary.
	Metrics MetricsSource
	// RegistryAuth is the X-Registry-Auth value for pulls, if any.
	RegistryAuth func(image string) string
	// Log reports progress (tflog in the provider).
	Log func(msg string, fields ...any)
}

// Result is the outcome of a deploy.
type Result struct {
	Status Status
	// Decision is what the rollout did.
	Decision Decision
	// HealthyAfter is how long the new containers took to become healthy.
	HealthyAfter time.Duration
	// CanaryReport is the Markdown report of a canary's analyses, if one ran.
	CanaryReport string
	// Held is set when the apply ended at a manual step, the canary held.
	Held *HeldCanary
}

// HeldCanary is a canary an apply left at a manual step on purpose.
type HeldCanary struct {
	Revision, StableRevision int
	// Step is the manual step (1-based) of Steps; Weight its share.
	Step, Steps, Weight int
}

// Deploy makes the environment serve spec: observe, decide, then run the
// executor of the decision's kind. When spec.Planned is set and the host
// no longer leads to that decision, nothing is done.
//
// Environments sharing a router deploy side by side; the router serialises
// only its own configuration changes (Routes.Apply).
func (d *Deployer) Deploy(ctx context.Context, spec Spec) (Result, error) {
	t := d.Clock.Now()
	managed, files, live, err := d.readHost(ctx, spec)
	if err != nil {
		return Result{}, err
	}
	if err := d.ensureNetwork(ctx, spec, managed); err != nil {
		return Result{}, err
	}
	before := ObserveLive(spec.Environment, spec.Service, managed, spec.Router.ContainerID, files, live)
	route := files[router.RouteFileName(spec.Environment, spec.Service)]
	d.phase("observed", t)
	dec := Decide(before, spec)
	if spec.Planned != "" && dec.String() != spec.Planned {
		return Result{Decision: dec}, &PlanChangedError{Planned: spec.Planned, Now: dec.String()}
	}
	d.log("rollout decided", "kind", dec.Kind.String(), "revision", dec.Revision, "rollout", dec.String())

	if dec.Discard != nil || dec.RemoveBaseline {
		if before, route, err = d.settle(ctx, spec, before, route, dec); err != nil {
			return Result{Decision: dec}, err
		}
	}
	if dec.Kind != ResumeCanary && dec.Kind != Blocked && hasCommand(managed, spec) {
		// A command left for a canary that this rollout removes or replaces
		// has no canary to act on any more.
		d.clearCommand(ctx, spec)
	}
	var res Result
	switch dec.Kind {
	case Blocked:
		err = &BlockedError{Reason: dec.Reason}
	case AbortCanary:
		err = d.abortInterrupted(ctx, spec, before, route, dec)
	case ResumeCanary:
		res, err = d.resumeCanary(ctx, spec, before, route, dec)
	case Canary:
		res, err = d.startCanary(ctx, spec, before, route, dec)
	default:
		res, err = d.hardSwitch(ctx, spec, before, route, dec)
	}
	res.Decision = dec
	return res, err
}

// observe reads the environment and its route as the host has them now.
func (d *Deployer) observe(ctx context.Context, spec Spec) (Status, []byte, error) {
	managed, files, live, err := d.readHost(ctx, spec)
	if err != nil {
		return Status{}, nil, err
	}
	st := ObserveLive(spec.Environment, spec.Service, managed, spec.Router.ContainerID, files, live)
	return st, files[router.RouteFileName(spec.Environment, spec.Service)], nil
}

// readHost lists the managed containers and reads the router's files and
// what its running worker serves, the three side by side.
func (d *Deployer) readHost(ctx context.Context, spec Spec) ([]docker.Container, map[string][]byte, map[string]router.ServerState, error) {
	var (
		managed []docker.Container
		files   map[string][]byte
		live    map[string]router.ServerState
	)
	reads := []func() error{func() (err error) {
		managed, err = ListManaged(ctx, d.Host)
		return err
	}}
	if spec.Router.ContainerID != "" {
		reads = append(reads, func() (err error) {
			files, err = d.Routes.Files(ctx, spec.Router.ContainerID)
			return err
		}, func() (err error) {
			live, err = d.Routes.LiveServers(ctx, spec.Router.ContainerID, spec.Router.MetricsPort, router.BackendName(spec.Environment, spec.Service))
			if err != nil {
				err = fmt.Errorf("reading what the router runs: %w", err)
			}
			return err
		})
	}
	names := make([]string, len(reads))
	for i := range names {
		names[i] = strconv.Itoa(i)
	}
	if err := parallel(names, func(i string) error { return reads[atoi(i)]() }); err != nil {
		return nil, nil, nil, err
	}
	return managed, files, live, nil
}

// ensureNetwork creates the environment's network and puts the router on
// it, unless the listing shows it there already (usually, after the first release).
func (d *Deployer) ensureNetwork(ctx context.Context, spec Spec, managed []docker.Container) error {
	for _, c := range managed {
		if c.ID == spec.Router.ContainerID {
			if _, ok := c.IPs[spec.Network()]; ok {
				return nil
			}
		}
	}
	labels := map[string]string{naming.LabelManaged: "true", naming.LabelEnvironment: spec.Environment, naming.LabelService: spec.Service}
	ensure := d.Host.EnsureNetwork
	if spec.Swarm != nil {
		o, ok := d.Host.(overlayHost)
		if !ok {
			return fmt.Errorf("the environment has swarm set, but this Docker connection cannot create overlay networks for Swarm services")
		}
		ensure = o.EnsureOverlay
	}
	if _, err := ensure(ctx, spec.Network(), labels); err != nil {
		return err
	}
	if err := d.Host.ConnectNetwork(ctx, spec.Network(), spec.Router.ContainerID); err != nil {
		return fmt.Errorf("connecting the router to network %s: %w", spec.Network(), err)
	}
	return nil
}

// settle removes what an interrupted canary left before the decision runs,
// then reads the host again: the executors work from what is there now.
func (d *Deployer) settle(ctx context.Context, spec Spec, before Status, route []byte, dec Decision) (Status, []byte, error) {
	if dec.Discard != nil {
		remove := append(containersOf(before, dec.Discard.Revision), before.Baseline...)
		if _, err := d.restoreStable(ctx, spec, runningOf(before, before.Revision), route, remove); err != nil {
			return Status{}, nil, err
		}
	} else {
		d.log("removing the baseline of a finished canary")
		if err := d.removeContainers(ctx, spec, before.Baseline); err != nil {
			return Status{}, nil, fmt.Errorf("removing the baseline of a finished canary: %w", err)
		}
	}
	after, route, err := d.observe(ctx, spec)
	if err != nil {
		return Status{}, nil, err
	}
	if again := Decide(after, spec); again.Kind != dec.Kind || again.Revision != dec.Revision {
		return Status{}, nil, &PlanChangedError{Planned: dec.String(), Now: again.String()}
	}
	return after, route, nil
}

// phase logs how long a step of the rollout took, as "phase created in
// 35ms", for TF_LOG=DEBUG timings; it returns the time now, where the next
// phase starts.
func (d *Deployer) phase(name string, since time.Time, fields ...any) time.Time {
	now := d.Clock.Now()
	d.log(fmt.Sprintf("phase %s in %s", name, now.Sub(since).Round(time.Millisecond)), fields...)
	return now
}

func (d *Deployer) log(msg string, fields ...any) {
	if d.Log != nil {
		d.Log(msg, fields...)
	}
}

func (d *Deployer) registryAuth(image string) string {
	if d.RegistryAuth == nil {
		return ""
	}
	return d.RegistryAuth(image)
}
