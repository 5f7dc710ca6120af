package rollout

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/releasekit/terraform-provider-release/internal/docker"
	"github.com/releasekit/terraform-provider-release/internal/failpoint"
	"github.com/releasekit/terraform-provider-release/internal/naming"
	"github.com/releasekit/terraform-provider-release/internal/probe"
)

// startServing starts the containers a decision serves from: the new
// revision's (created here), or the retained or serving revision's as they
// are. It waits until every one is healthy. On failure nothing is left
// behind: created containers are removed, retained ones stopped again.
func (d *Deployer) startServing(ctx context.Context, spec Spec, before Status, dec Decision, track naming.Track) ([]docker.Container, time.Duration, error) {
	var ids, created []string
	switch dec.Kind {
	case Repair, Rollback:
		if dec.Kind == Rollback {
			d.log("restarting a retained revision", "revision", dec.Revision)
		}
		for _, c := range containersOf(before, dec.Revision) {
			ids = append(ids, c.ID)
		}
	default:
		history := before.History
		if before.Revision > 0 {
			// The new containers carry the history, including the revision they replace.
			history = append([]HistoryEntry{{Revision: before.Revision, Digest: before.Digest, Image: before.Image, DeployedAt: before.DeployedAt}}, history...)
		}
		d.log("starting a new revision", "revision", dec.Revision, "image", spec.Image)
		t := d.Clock.Now()
		var err error
		if created, err = d.createReplicas(ctx, spec, dec.Revision, track, spec.ConfigHash(), history, nil); err != nil {
			return nil, 0, err
		}
		ids = created
		d.phase("created", t, "containers", len(created))
		failpoint.Hit(failpoint.Created)
	}
	undo := func(cause error) error {
		var err error
		switch {
		case created != nil:
			err = d.cleanup(created)
		case dec.Kind == Rollback:
			err = parallel(ids, func(id string) error { return d.Host.Stop(context.WithoutCancel(ctx), id, spec.StopTimeout) })
		}
		var unhealthy *UnhealthyError
		if err != nil && errors.As(cause, &unhealthy) {
			unhealthy.Leftover = err
			return cause
		}
		return errors.Join(cause, err)
	}
	start := d.Clock.Now()
	if err := parallel(ids, func(id string) error { return d.Host.Start(ctx, id) }); err != nil {
		return nil, 0, undo(fmt.Errorf("starting containers: %w", err))
	}
	failpoint.Hit(failpoint.Started)
	t := d.phase("started", start, "containers", len(ids))
	healthy, err := d.waitHealthy(ctx, spec, ids)
	if err != nil {
		return nil, 0, undo(err)
	}
	failpoint.Hit(failpoint.Healthy)
	d.phase("gated", t, "containers", len(ids))
	after := d.Clock.Now().Sub(start)
	d.log("new containers healthy", "revision", dec.Revision, "after", after.String())
	return healthy, after, nil
}

// createReplicas creates a revision's containers side by side. from, when
// set, gives per replica the container whose image, command and env to
// copy (a baseline); otherwise the spec's are used. On failure the ones
// created are removed.
func (d *Deployer) createReplicas(ctx context.Context, spec Spec, rev int, track naming.Track, hash string, history []HistoryEntry, from []docker.Container) ([]string, error) {
	if from == nil { // a baseline runs the stable revision's image, which is here
		if err := d.Host.EnsureImage(ctx, spec.Image, d.registryAuth(spec.Image)); err != nil {
			return nil, err
		}
	}
	// The gate checks from the router when it can (Deployer.probe); only
	// otherwise does a container need a probe of its own.
	var probeBin []byte
	if _, ok := d.Routes.(routerProber); !ok || spec.Router.ContainerID == "" {
		arch, err := d.Host.Architecture(ctx)
		if err != nil {
			return nil, err
		}
		if probeBin, err = probe.Binary(arch); err != nil {
			return nil, err
		}
	}
	n := spec.Replicas
	if from != nil {
		n = len(from)
	}
	ids := make([]string, n)
	idx := make([]string, n)
	for i := range idx {
		idx[i] = strconv.Itoa(i)
	}
	err := parallel(idx, func(s string) error {
		i := atoi(s)
		s2, replica, h := spec, i+1, hash
		if from != nil {
			full, err := d.Host.Inspect(ctx, from[i].ID)
			if err != nil {
				return err
			}
			s2, replica, h = baselineSpec(spec, full), atoi(full.Labels[naming.LabelReplica]), full.Labels[naming.LabelConfigHash]
		}
		cs := d.containerSpec(s2, rev, replica, track, h, history, probeBin)
		if cs.Service != nil {
			cs.Service.Replicas = n // a baseline has as many replicas as stable runs
		}
		id, err := d.Host.Create(ctx, cs)
		ids[i] = id
		return err
	})
	if err != nil {
		return nil, errors.Join(err, d.cleanup(ids))
	}
	return ids, nil
}

func (d *Deployer) containerSpec(spec Spec, rev, replica int, track naming.Track, hash string, history []HistoryEntry, probeBin []byte) docker.ContainerSpec {
	env := appendSorted(make([]string, 0, len(spec.Env)+len(spec.SecretEnv)+3), spec.Env)
	env = appendSorted(env, spec.SecretEnv)
	env = append(env, "RELEASE_ENVIRONMENT="+spec.Environment, "RELEASE_SERVICE="+spec.Service, "RELEASE_REVISION="+strconv.Itoa(rev))
	var files []docker.File
	if probeBin != nil {
		files = []docker.File{{Path: probe.Path, Mode: 0o755, Content: probeBin}}
	}
	var service *docker.ServiceOptions
	if spec.Swarm != nil {
		service = &docker.ServiceOptions{Name: naming.SwarmServiceName(spec.Environment, spec.Service, track, rev), Replica: replica, Replicas: spec.Replicas,
			Constraints: spec.Swarm.Constraints, RegistryAuth: d.registryAuth(spec.Image)}
	}
	return docker.ContainerSpec{
		Service: service,
		Name:    naming.ContainerName(spec.Environment, spec.Service, track, rev, replica),
		Image:   spec.Image,
		Cmd:     spec.Command,
		Env:     env,
		Labels: map[string]string{
			naming.LabelManaged:     "true",
			naming.LabelKind:        string(naming.KindApp),
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
		// No Docker health check, not even the image's own: the provider
		// gates new containers itself (waitHealthy) and the router checks
		// them afterwards, so nothing is exec'd in them at rest.
		Health:      &docker.HealthCheck{Test: []string{"NONE"}},
		StopTimeout: int(spec.StopTimeout / time.Second),
		Files:       files,
	}
}

// appendSorted appends a map's variables as NAME=value, by name.
func appendSorted(env []string, vars map[string]string) []string {
	keys := make([]string, 0, len(vars))
	for k := range vars {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		env = append(env, k+"="+vars[k])
	}
	return env
}

// lastOutput is the last output of a container's Docker health check:
// only containers created before the provider gated by itself have one.
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
