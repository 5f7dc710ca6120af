package rollout

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/releasekit/terraform-provider-release/internal/docker"
	"github.com/releasekit/terraform-provider-release/internal/naming"
	"github.com/releasekit/terraform-provider-release/internal/probe"
	"github.com/releasekit/terraform-provider-release/internal/router"
)

// Deployer carries out hard switches.
type Deployer struct {
	Host   Host
	Routes Routes
	Clock  Clock
	// RegistryAuth is the X-Registry-Auth value for pulls, if any.
	RegistryAuth func(image string) string
	// Log reports progress (tflog in the provider).
	Log func(msg string, fields ...any)
}

// Result is the outcome of a deploy.
type Result struct {
	Status Status
	// Reused is true when a retained revision was started again (a rollback without a pull).
	Reused bool
	// HealthyAfter is how long the new containers took to become healthy.
	HealthyAfter time.Duration
	// CanaryReport is the Markdown report of a canary's analyses, if one ran.
	CanaryReport string
}

// UnhealthyError says new containers never became healthy; traffic was not moved.
type UnhealthyError struct {
	Container string
	Reason    string
	Logs      string
}

func (e *UnhealthyError) Error() string {
	return fmt.Sprintf("container %s did not become healthy: %s", e.Container, e.Reason)
}

func (d *Deployer) log(msg string, fields ...any) {
	if d.Log != nil {
		d.Log(msg, fields...)
	}
}

// Deploy makes the environment serve spec with a hard switch: start, wait
// healthy, route, drain, stop, prune. When the serving revision already
// matches, it only repairs drift.
//
// Environments sharing a router deploy side by side; the router serialises
// only its own configuration changes (Routes.Apply).
func (d *Deployer) Deploy(ctx context.Context, spec Spec) (Result, error) {
	managed, err := ListManaged(ctx, d.Host)
	if err != nil {
		return Result{}, err
	}
	// The environment's own network, with the router on it (the listing tells, so a switch usually skips this).
	if !routerOnNetwork(managed, spec) {
		if _, err := d.Host.EnsureNetwork(ctx, spec.Network(), map[string]string{naming.LabelManaged: "true", naming.LabelEnvironment: spec.Environment, naming.LabelService: spec.Service}); err != nil {
			return Result{}, err
		}
		if err := d.Host.ConnectNetwork(ctx, spec.Network(), spec.Router.ContainerID); err != nil {
			return Result{}, fmt.Errorf("connecting the router to network %s: %w", spec.Network(), err)
		}
	}
	files, err := d.Routes.Files(ctx, spec.Router.ContainerID)
	if err != nil {
		return Result{}, err
	}
	before := Observe(spec.Environment, spec.Service, managed, spec.Router.ContainerID, files)
	if before.Canary != nil || len(before.Baseline) > 0 {
		resume, err := d.settleInterrupted(ctx, spec, before, files[router.RouteFileName(spec.Environment, spec.Service)])
		if err != nil {
			return Result{}, err
		}
		if resume != nil {
			return d.runCanary(ctx, spec, spec.Canary, *resume)
		}
		if managed, err = ListManaged(ctx, d.Host); err != nil {
			return Result{}, err
		}
		if files, err = d.Routes.Files(ctx, spec.Router.ContainerID); err != nil {
			return Result{}, err
		}
		before = Observe(spec.Environment, spec.Service, managed, spec.Router.ContainerID, files)
	}
	hash := spec.ConfigHash()

	byRev := map[int][]docker.Container{}
	maxRev := 0
	for _, c := range before.Containers {
		rev := atoi(c.Labels[naming.LabelRevision])
		byRev[rev] = append(byRev[rev], c)
		if rev > maxRev {
			maxRev = rev
		}
	}
	for _, h := range before.History {
		if h.Revision > maxRev {
			maxRev = h.Revision
		}
	}

	// Choose the containers that will serve.
	var target []docker.Container
	var targetRev int
	reused := false
	switch {
	case before.Revision > 0 && before.Digest == spec.Digest && before.ConfigHash == hash && len(byRev[before.Revision]) == spec.Replicas:
		// Same release: repair what drifted in place.
		targetRev = before.Revision
		target = byRev[targetRev]
	default:
		for _, rev := range before.Retained {
			cs := byRev[rev]
			if len(cs) == spec.Replicas && cs[0].Labels[naming.LabelDigest] == spec.Digest && cs[0].Labels[naming.LabelConfigHash] == hash {
				targetRev, target, reused = rev, cs, true
				break
			}
		}
	}

	// The new containers carry the history, including the revision they replace.
	history := before.History
	if before.Revision > 0 {
		history = append([]HistoryEntry{{Revision: before.Revision, Digest: before.Digest, Image: before.Image, DeployedAt: before.DeployedAt}}, history...)
	}

	// A new revision beside a serving one goes through the canary, if the
	// environment has one. A rollback to a retained revision does not: it
	// served before, and a rollback should be quick.
	asCanary := spec.Canary != nil && target == nil && before.Revision > 0 && before.Running > 0
	track := naming.TrackStable
	if asCanary {
		track = naming.TrackCanary
	}

	var created []string
	if target == nil {
		targetRev = maxRev + 1
		d.log("starting a new revision", "revision", targetRev, "image", spec.Image)
		if err := d.Host.EnsureImage(ctx, spec.Image, d.registryAuth(spec.Image)); err != nil {
			return Result{}, err
		}
		arch, err := d.Host.Architecture(ctx)
		if err != nil {
			return Result{}, err
		}
		probeBin, err := probe.Binary(arch)
		if err != nil {
			return Result{}, err
		}
		created = make([]string, spec.Replicas)
		replicas := make([]string, spec.Replicas)
		for i := range replicas {
			replicas[i] = strconv.Itoa(i)
		}
		err = parallel(replicas, func(i string) error {
			n := atoi(i)
			id, err := d.Host.Create(ctx, d.containerSpec(spec, targetRev, n+1, track, hash, history, probeBin))
			created[n] = id
			return err
		})
		if err != nil {
			d.cleanup(created)
			return Result{}, err
		}
	} else if reused {
		d.log("restarting a retained revision", "revision", targetRev)
	}

	// Start what is not running and wait until every one is healthy.
	start := d.Clock.Now()
	var ids []string
	if created != nil {
		ids = created
	} else {
		for _, c := range target {
			ids = append(ids, c.ID)
		}
	}
	if err := parallel(ids, func(id string) error { return d.Host.Start(ctx, id) }); err != nil {
		d.abort(ctx, created, reused, ids, spec)
		return Result{}, fmt.Errorf("starting containers: %w", err)
	}
	healthy, err := d.waitHealthy(ctx, spec, ids)
	if err != nil {
		d.abort(ctx, created, reused, ids, spec)
		return Result{}, err
	}
	healthyAfter := d.Clock.Now().Sub(start)
	d.log("new containers healthy", "revision", targetRev, "after", healthyAfter.String())

	routeName := router.RouteFileName(spec.Environment, spec.Service)
	if asCanary {
		var stable []docker.Container
		for _, c := range byRev[before.Revision] {
			if c.Running() {
				stable = append(stable, c)
			}
		}
		res, err := d.runCanary(ctx, spec, spec.Canary, canaryState{
			stable: stable, canary: healthy, stableRev: before.Revision, canaryRev: targetRev,
			stableDigest: before.Digest, route: files[routeName], before: before,
		})
		res.HealthyAfter = healthyAfter
		return res, err
	}
	res, err := d.promote(ctx, spec, before, healthy, targetRev, files[routeName], before.Containers)
	if err != nil {
		var switchErr *switchError
		if errors.As(err, &switchErr) {
			d.abort(ctx, created, reused, ids, spec)
		}
		return Result{}, err
	}
	d.log("previous revisions retired", "revision", targetRev, "since_healthy", d.Clock.Now().Sub(start).String())
	res.Reused, res.HealthyAfter = reused, healthyAfter
	return res, nil
}

// switchError says the route to a new revision could not be written; traffic did not move.
type switchError struct{ err error }

func (e *switchError) Error() string { return e.err.Error() }
func (e *switchError) Unwrap() error { return e.err }

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
	if err := d.retire(ctx, spec, others, rev); err != nil {
		return Result{}, err
	}
	managed, err := ListManaged(ctx, d.Host)
	if err != nil {
		return Result{}, err
	}
	// This environment's route is the one just written; Observe reads no other.
	return Result{Status: Observe(spec.Environment, spec.Service, managed, spec.Router.ContainerID, map[string][]byte{name: cfg})}, nil
}

func (d *Deployer) registryAuth(image string) string {
	if d.RegistryAuth == nil {
		return ""
	}
	return d.RegistryAuth(image)
}

func (d *Deployer) containerSpec(spec Spec, rev, replica int, track naming.Track, hash string, history []HistoryEntry, probeBin []byte) docker.ContainerSpec {
	env := make([]string, 0, len(spec.Env)+3)
	keys := make([]string, 0, len(spec.Env))
	for k := range spec.Env {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		env = append(env, k+"="+spec.Env[k])
	}
	env = append(env, "RELEASE_ENVIRONMENT="+spec.Environment, "RELEASE_SERVICE="+spec.Service, "RELEASE_REVISION="+strconv.Itoa(rev))
	name := naming.ContainerName(spec.Environment, spec.Service, track, rev, replica)
	return docker.ContainerSpec{
		Name:  name,
		Image: spec.Image,
		Cmd:   spec.Command,
		Env:   env,
		Labels: map[string]string{
			naming.LabelManaged:     "true",
			naming.LabelKind:        "app",
			naming.LabelEnvironment: spec.Environment,
			naming.LabelService:     spec.Service,
			naming.LabelImage:       spec.Image,
			naming.LabelDigest:      spec.Digest,
			naming.LabelRevision:    strconv.Itoa(rev),
			naming.LabelReplica:     strconv.Itoa(replica),
			naming.LabelTrack:       string(track),
			naming.LabelPort:        strconv.Itoa(spec.Port),
			naming.LabelDeployedAt:  strconv.FormatInt(d.Clock.Now().Unix(), 10),
			naming.LabelConfigHash:  hash,
			naming.LabelRouter:      spec.Router.Name,
			naming.LabelHistory:     encodeHistory(history),
		},
		Network: spec.Network(),
		Health: &docker.HealthCheck{
			Test:        probe.Command(spec.Port, spec.Health.Path, spec.Health.Timeout),
			Interval:    spec.Health.Interval,
			Timeout:     spec.Health.Timeout + time.Second,
			Retries:     3,
			StartPeriod: spec.Health.StartTimeout,
		},
		StopTimeout: int(spec.StopTimeout / time.Second),
		Files:       []docker.File{{Path: probe.Path, Mode: 0o755, Content: probeBin}},
	}
}

// waitHealthy waits until every container passed HealthyThreshold checks in a row.
func (d *Deployer) waitHealthy(ctx context.Context, spec Spec, ids []string) ([]docker.Container, error) {
	deadline := d.Clock.Now().Add(spec.Health.StartTimeout)
	threshold := spec.Health.HealthyThreshold
	if threshold < 1 {
		threshold = 1
	}
	// Inspecting is cheap; polling often keeps the switch close behind the health check.
	const poll = 50 * time.Millisecond
	done := map[string]docker.Container{}
	for {
		for _, id := range ids {
			if _, ok := done[id]; ok {
				continue
			}
			c, err := d.Host.Inspect(ctx, id)
			if err != nil {
				return nil, err
			}
			if c.State == "exited" || c.State == "dead" {
				return nil, d.unhealthy(ctx, c, "it exited")
			}
			if c.Health == "unhealthy" {
				return nil, d.unhealthy(ctx, c, "its health check failed: "+lastOutput(c))
			}
			if c.Health == "healthy" && passedInARow(c.HealthLog, threshold) {
				done[id] = c
			}
		}
		if len(done) == len(ids) {
			out := make([]docker.Container, 0, len(ids))
			for _, id := range ids {
				out = append(out, done[id])
			}
			return out, nil
		}
		if d.Clock.Now().After(deadline) {
			for _, id := range ids {
				if _, ok := done[id]; !ok {
					c, _ := d.Host.Inspect(ctx, id)
					return nil, d.unhealthy(ctx, c, fmt.Sprintf("not healthy after %s; last check: %s", spec.Health.StartTimeout, lastOutput(c)))
				}
			}
		}
		if err := d.Clock.Sleep(ctx, poll); err != nil {
			return nil, err
		}
	}
}

func passedInARow(log []docker.HealthResult, n int) bool {
	if len(log) < n {
		return false
	}
	for _, r := range log[len(log)-n:] {
		if r.ExitCode != 0 {
			return false
		}
	}
	return true
}

func lastOutput(c docker.Container) string {
	if len(c.HealthLog) == 0 {
		return "no check has run yet"
	}
	return strings.TrimSpace(c.HealthLog[len(c.HealthLog)-1].Output)
}

func (d *Deployer) unhealthy(ctx context.Context, c docker.Container, reason string) error {
	logs, _ := d.Host.Logs(ctx, c.ID, 20)
	return &UnhealthyError{Container: c.Name, Reason: reason, Logs: strings.TrimSpace(logs)}
}

// abort undoes a failed start: new containers are removed, retained ones
// stopped again. The route was not touched, so traffic never moved.
func (d *Deployer) abort(ctx context.Context, created []string, reused bool, ids []string, spec Spec) {
	ctx = context.WithoutCancel(ctx)
	if created != nil {
		d.cleanup(created)
		return
	}
	if reused {
		for _, id := range ids {
			_ = d.Host.Stop(ctx, id, spec.StopTimeout)
		}
	}
}

func (d *Deployer) cleanup(ids []string) {
	ctx := context.Background()
	for _, id := range ids {
		if id != "" {
			_ = d.Host.Remove(ctx, id)
		}
	}
}

// retire stops every revision but the serving one, removes baselines (they
// are no rollback target) and removes the oldest stopped revisions beyond
// the history limit.
func (d *Deployer) retire(ctx context.Context, spec Spec, containers []docker.Container, serving int) error {
	byRev := map[int][]docker.Container{}
	var remove []string
	seen := map[string]bool{}
	for _, c := range containers {
		if seen[c.ID] {
			continue // a resumed canary's baseline is both observed and carried
		}
		seen[c.ID] = true
		rev := atoi(c.Labels[naming.LabelRevision])
		switch {
		case naming.TrackOf(c.Labels) == naming.TrackBaseline:
			d.log("removing the baseline", "container", c.Name)
			remove = append(remove, c.ID)
		case rev != serving:
			byRev[rev] = append(byRev[rev], c)
		}
	}
	revs := make([]int, 0, len(byRev))
	for rev := range byRev {
		revs = append(revs, rev)
	}
	sort.Sort(sort.Reverse(sort.IntSlice(revs)))
	var stop []string
	for i, rev := range revs {
		keep := i < spec.HistoryLimit
		for _, c := range byRev[rev] {
			switch {
			case !keep:
				d.log("removing a revision beyond the history limit", "revision", rev, "container", c.Name)
				remove = append(remove, c.ID)
			case c.Running():
				d.log("stopping the previous revision", "revision", rev, "container", c.Name)
				stop = append(stop, c.ID)
			}
		}
	}
	// Containers stop side by side: each finishes its own requests.
	return errors.Join(
		parallel(stop, func(id string) error { return d.Host.Stop(ctx, id, spec.StopTimeout) }),
		d.stopAndRemove(ctx, spec.StopTimeout, remove),
	)
}

// stopAndRemove stops containers side by side, each finishing its requests
// first, and removes them.
func (d *Deployer) stopAndRemove(ctx context.Context, timeout time.Duration, ids []string) error {
	return parallel(ids, func(id string) error {
		_ = d.Host.Stop(ctx, id, timeout)
		return d.Host.Remove(ctx, id)
	})
}

// knownApplier is a Routes that can skip re-reading a file whose previous
// content the caller already holds (router.Controller does).
type knownApplier interface {
	ApplyKnown(ctx context.Context, routerID string, files, previous map[string][]byte) error
}

func (d *Deployer) applyRoute(ctx context.Context, routerID, name string, cfg, previous []byte) error {
	if ka, ok := d.Routes.(knownApplier); ok {
		return ka.ApplyKnown(ctx, routerID, map[string][]byte{name: cfg}, map[string][]byte{name: previous})
	}
	return d.Routes.Apply(ctx, routerID, map[string][]byte{name: cfg})
}

// parallel runs fn for every id at once and joins the errors.
func parallel(ids []string, fn func(id string) error) error {
	errs := make([]error, len(ids))
	var wg sync.WaitGroup
	for i, id := range ids {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = fn(id)
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// routerOnNetwork reports whether the listing shows the router attached to the environment's network.
func routerOnNetwork(managed []docker.Container, spec Spec) bool {
	for _, c := range managed {
		if c.ID == spec.Router.ContainerID {
			_, ok := c.IPs[spec.Network()]
			return ok
		}
	}
	return false
}

// Destroy removes an environment's route, containers and network. Other
// environments' routes and containers are not touched.
func (d *Deployer) Destroy(ctx context.Context, environment, service, routerID string, stopTimeout time.Duration) error {
	var errs []error
	if routerID != "" {
		files, err := d.Routes.Files(ctx, routerID)
		if err == nil && len(files[router.RouteFileName(environment, service)]) > 0 {
			// An empty file is an empty configuration: the listener closes.
			errs = append(errs, d.Routes.Apply(ctx, routerID, map[string][]byte{router.RouteFileName(environment, service): {}}))
		} else if err != nil && !docker.IsNotFound(err) {
			errs = append(errs, err)
		}
	}
	managed, err := ListManaged(ctx, d.Host)
	if err != nil {
		return err
	}
	for _, c := range managed {
		if c.Labels[naming.LabelEnvironment] == environment && c.Labels[naming.LabelService] == service && c.Labels[naming.LabelKind] == "app" {
			if c.Running() {
				_ = d.Host.Stop(ctx, c.ID, stopTimeout)
			}
			errs = append(errs, d.Host.Remove(ctx, c.ID))
		}
	}
	if routerID != "" {
		errs = append(errs, d.Host.DisconnectNetwork(ctx, naming.NetworkName(environment, service), routerID))
	}
	errs = append(errs, d.Host.RemoveNetwork(ctx, naming.NetworkName(environment, service)))
	return errors.Join(errs...)
}
