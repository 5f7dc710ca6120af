package docker

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/swarm"
	"github.com/moby/moby/client"

	"github.com/releasekit/terraform-provider-release/internal/naming"
)

// On a swarm a Swarm service stands in for a revision's replicas: one
// service per revision and track, one task per replica, and each replica
// is listed as a container of its own (ID service:<id>/<replica>), so that
// everything above (the rollout, its history, drift) sees the same objects
// on one host and on a swarm. Swarm places the tasks, spreading them over
// the nodes, restarts them and moves them off a drained node; scaling the
// service to 0 stops the revision and keeps it for a rollback.

// ServiceIDPrefix starts the ID of a Container that is a Swarm service's
// replica (or a job): a service and a container never share an ID space,
// so every call routes by it.
const ServiceIDPrefix = "service:"

// swarmTaskLabel is on the container of every Swarm task: such a container
// is listed through its service.
const swarmTaskLabel = "com.docker.swarm.service.id"

// ServiceOptions asks Create for a replica of a Swarm service instead of a
// container. The service is created with the first of its replicas; the
// others join it.
type ServiceOptions struct {
	// Name is the service's name, shared by its replicas; Replica is the
	// one created (1-based, in naming.LabelReplica) and Replicas how many
	// the service has.
	Name              string
	Replica, Replicas int
	// Constraints are Swarm placement constraints ("node.role==worker").
	Constraints []string
	// Job runs the container's command once, to its end, as a replicated
	// job (a migration): it starts when created, is never restarted, and
	// its one task's exit code is the container's.
	Job bool
	// RegistryAuth is the X-Registry-Auth value the nodes pull with
	// (--with-registry-auth), if any.
	RegistryAuth string
}

// IsService reports whether a container ID names a Swarm service's replica or job.
func IsService(id string) bool { return strings.HasPrefix(id, ServiceIDPrefix) }

// serviceID is the service of a replica's or job's ID.
func serviceID(id string) string {
	sid, _, _ := strings.Cut(strings.TrimPrefix(id, ServiceIDPrefix), "/")
	return sid
}

// replicaOf is the replica (1-based) an ID names; 0 for a job.
func replicaOf(id string) int {
	_, r, _ := strings.Cut(strings.TrimPrefix(id, ServiceIDPrefix), "/")
	n, _ := strconv.Atoi(r)
	return n
}

func replicaID(service string, replica int) string {
	return ServiceIDPrefix + service + "/" + strconv.Itoa(replica)
}

// SwarmManager reports whether the engine is a manager of an active
// swarm. The answer is kept for the engine's life: an engine outside a
// swarm answers every service call with an error.
func (e *Engine) SwarmManager(ctx context.Context) (bool, error) {
	e.swarmMu.Lock()
	defer e.swarmMu.Unlock()
	if e.swarmKnown {
		return e.swarmMgr, nil
	}
	cli, err := e.client(ctx)
	if err != nil {
		return false, err
	}
	info, err := cli.Info(ctx, client.InfoOptions{})
	if err != nil {
		return false, err
	}
	e.swarmKnown = true
	e.swarmMgr = info.Info.Swarm.LocalNodeState == swarm.LocalNodeStateActive && info.Info.Swarm.ControlAvailable
	return e.swarmMgr, nil
}

// listServices returns the services whose labels match, as containers.
func (e *Engine) listServices(ctx context.Context, cli *client.Client, f client.Filters) ([]Container, error) {
	if ok, err := e.SwarmManager(ctx); err != nil || !ok {
		return nil, err
	}
	res, err := cli.ServiceList(ctx, client.ServiceListOptions{Filters: f})
	if err != nil {
		return nil, fmt.Errorf("listing services on %s: %w", e.Host(), err)
	}
	if len(res.Items) == 0 {
		return nil, nil
	}
	tasks, err := cli.TaskList(ctx, client.TaskListOptions{Filters: client.Filters{}.Add("desired-state", "running")})
	if err != nil {
		return nil, fmt.Errorf("listing tasks on %s: %w", e.Host(), err)
	}
	byService := map[string][]swarm.Task{}
	for _, t := range tasks.Items {
		byService[t.ServiceID] = append(byService[t.ServiceID], t)
	}
	var out []Container
	for _, s := range res.Items {
		if s.Spec.Mode.ReplicatedJob != nil {
			// A finished job's task no longer wants to run: read all of its tasks.
			all, err := cli.TaskList(ctx, client.TaskListOptions{Filters: client.Filters{}.Add("service", s.ID)})
			if err != nil {
				return nil, fmt.Errorf("listing tasks on %s: %w", e.Host(), err)
			}
			out = append(out, jobContainer(s, all.Items))
			continue
		}
		out = append(out, serviceReplicas(s, byService[s.ID])...)
	}
	return out, nil
}

// serviceReplicas describes a service's replicas as containers. Replica k
// is the service's k-th running task (by slot): running while it runs;
// created until the service was first scaled up; exited when the service
// is scaled below k; restarting while Swarm looks for a task that runs.
// Swarm may give a restarted task another slot and address, so a replica
// is the place in the service, not one task.
func serviceReplicas(s swarm.Service, tasks []swarm.Task) []Container {
	n, _ := strconv.Atoi(s.Spec.Labels[naming.LabelReplicas])
	desired := 0
	if r := s.Spec.Mode.Replicated; r != nil && r.Replicas != nil {
		desired = int(*r.Replicas)
	}
	var running, pending []swarm.Task
	for _, t := range tasks {
		if t.DesiredState != swarm.TaskStateRunning {
			continue
		}
		if t.Status.State == swarm.TaskStateRunning {
			running = append(running, t)
		} else {
			pending = append(pending, t)
		}
	}
	sort.Slice(running, func(i, j int) bool { return running[i].Slot < running[j].Slot })
	sort.Slice(pending, func(i, j int) bool { return pending[i].Slot < pending[j].Slot })
	out := make([]Container, 0, n)
	for k := 1; k <= n; k++ {
		c := Container{ID: replicaID(s.ID, k), Name: naming.ReplicaName(s.Spec.Name, k), Created: s.CreatedAt,
			Labels: map[string]string{}, IPs: map[string]string{}, Task: &TaskInfo{Service: s.Spec.Name, Replicas: desired}}
		for key, v := range s.Spec.Labels {
			c.Labels[key] = v
		}
		c.Labels[naming.LabelReplica] = strconv.Itoa(k)
		if cs := s.Spec.TaskTemplate.ContainerSpec; cs != nil {
			c.Image, c.Env, c.Cmd = cs.Image, cs.Env, cs.Args
		}
		for _, a := range s.Spec.TaskTemplate.Networks {
			c.Networks = append(c.Networks, a.Target)
		}
		switch {
		case k <= len(running):
			t := running[k-1]
			c.State, c.Task.Node, c.Networks = "running", t.NodeID, nil
			for _, a := range t.NetworksAttachments {
				name := a.Network.Spec.Name
				if name == "" || name == "ingress" {
					continue
				}
				c.Networks = append(c.Networks, name)
				if len(a.Addresses) > 0 {
					c.IPs[name] = a.Addresses[0].Addr().String()
				}
			}
		case k <= desired:
			c.State = "restarting"
			if i := k - len(running) - 1; i < len(pending) {
				c.Task.Node = pending[i].NodeID
			}
		case s.PreviousSpec == nil && desired == 0:
			c.State = "created"
		default:
			c.State = "exited"
		}
		sort.Strings(c.Networks)
		out = append(out, c)
	}
	return out
}

// jobContainer describes a replicated job as a container: running until its
// task has ended, then exited.
func jobContainer(s swarm.Service, tasks []swarm.Task) Container {
	c := Container{ID: ServiceIDPrefix + s.ID, Name: s.Spec.Name, Labels: s.Spec.Labels, Created: s.CreatedAt,
		IPs: map[string]string{}, Task: &TaskInfo{Replicas: 1}, State: "running"}
	if cs := s.Spec.TaskTemplate.ContainerSpec; cs != nil {
		c.Image, c.Env, c.Cmd = cs.Image, cs.Env, cs.Args
	}
	if t, ok := lastTask(tasks); ok {
		c.Task.Node = t.NodeID
		if taskEnded(t.Status.State) {
			c.State = "exited"
		}
	}
	return c
}

// lastTask is the newest of a service's tasks.
func lastTask(tasks []swarm.Task) (swarm.Task, bool) {
	if len(tasks) == 0 {
		return swarm.Task{}, false
	}
	last := tasks[0]
	for _, t := range tasks[1:] {
		if t.CreatedAt.After(last.CreatedAt) {
			last = t
		}
	}
	return last, true
}

// jobResult waits until a job's task has ended and returns its exit code
// and when it started and ended (wait false: as it is now, -1 while it runs).
func (e *Engine) jobResult(ctx context.Context, id string, wait bool) (int, time.Time, time.Time, error) {
	cli, err := e.client(ctx)
	if err != nil {
		return 0, time.Time{}, time.Time{}, err
	}
	for {
		res, err := cli.ServiceInspect(ctx, serviceID(id), client.ServiceInspectOptions{})
		if err != nil {
			return 0, time.Time{}, time.Time{}, err
		}
		tasks, err := cli.TaskList(ctx, client.TaskListOptions{Filters: client.Filters{}.Add("service", serviceID(id))})
		if err != nil {
			return 0, time.Time{}, time.Time{}, err
		}
		if t, ok := lastTask(tasks.Items); ok && taskEnded(t.Status.State) {
			code := 0
			if t.Status.ContainerStatus != nil {
				code = t.Status.ContainerStatus.ExitCode
			}
			if code == 0 && t.Status.State != swarm.TaskStateComplete {
				code = -1 // rejected, or failed before its container ran: no exit code of its own
			}
			return code, res.Service.CreatedAt, t.Status.Timestamp, nil
		}
		if !wait {
			return -1, res.Service.CreatedAt, time.Time{}, nil
		}
		select {
		case <-ctx.Done():
			return 0, time.Time{}, time.Time{}, ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// TaskInfo is what a Container that is a Swarm service's replica adds.
type TaskInfo struct {
	// Service names the Swarm service; Replicas is its replica count now.
	Service  string
	Replicas int
	// Node is the ID of the node the replica's task runs on, if any.
	Node string
}

func (e *Engine) inspectService(ctx context.Context, cli *client.Client, id string) (Container, error) {
	res, err := cli.ServiceInspect(ctx, serviceID(id), client.ServiceInspectOptions{})
	if err != nil {
		return Container{}, err
	}
	tasks, err := cli.TaskList(ctx, client.TaskListOptions{Filters: client.Filters{}.Add("service", res.Service.ID)})
	if err != nil {
		return Container{}, err
	}
	if res.Service.Spec.Mode.ReplicatedJob != nil {
		return jobContainer(res.Service, tasks.Items), nil
	}
	k := replicaOf(id)
	replicas := serviceReplicas(res.Service, tasks.Items)
	if k < 1 || k > len(replicas) {
		return Container{}, cerrdefs.ErrNotFound.WithMessage(fmt.Sprintf("service %s has no replica %d", res.Service.Spec.Name, k))
	}
	return replicas[k-1], nil
}

// createService creates a replica of a service: the service, of no task
// yet, when it is the first (Start scales it); otherwise it joins the
// service its first replica created.
func (e *Engine) createService(ctx context.Context, cli *client.Client, spec ContainerSpec) (string, error) {
	if ok, err := e.SwarmManager(ctx); err != nil {
		return "", err
	} else if !ok {
		return "", fmt.Errorf("creating service %s: the Docker host %s is not a swarm manager: run `docker swarm init` there, or talk to a manager", spec.Name, e.Host())
	}
	if len(spec.Files) > 0 || len(spec.Ports) > 0 || len(spec.Volumes) > 0 {
		return "", fmt.Errorf("creating service %s: files, published ports and volumes are for containers only", spec.Name)
	}
	o := spec.Service
	name := spec.Name
	labels := map[string]string{}
	for k, v := range spec.Labels {
		labels[k] = v
	}
	if !o.Job {
		name = o.Name
		// The replica is the place in the service: the service carries how many.
		delete(labels, naming.LabelReplica)
		labels[naming.LabelReplicas] = strconv.Itoa(o.Replicas)
	}
	zero := uint64(0)
	cs := &swarm.ContainerSpec{
		Image:      spec.Image,
		Labels:     labels,
		Command:    spec.Entrypoint,
		Args:       spec.Cmd,
		Env:        spec.Env,
		StopSignal: spec.StopSignal,
	}
	if spec.StopTimeout > 0 {
		grace := time.Duration(spec.StopTimeout) * time.Second
		cs.StopGracePeriod = &grace
	}
	if h := spec.Health; h != nil {
		cs.Healthcheck = &container.HealthConfig{Test: h.Test, Interval: h.Interval, Timeout: h.Timeout, Retries: h.Retries, StartPeriod: h.StartPeriod}
	}
	svc := swarm.ServiceSpec{
		Annotations: swarm.Annotations{Name: name, Labels: labels},
		TaskTemplate: swarm.TaskSpec{
			ContainerSpec: cs,
			// Swarm restarts a task that exits, as unless-stopped does a container.
			RestartPolicy: &swarm.RestartPolicy{Condition: swarm.RestartPolicyConditionAny},
			// Spread over the nodes: Swarm's default, said out loud.
			Placement: &swarm.Placement{Constraints: o.Constraints, Preferences: []swarm.PlacementPreference{{Spread: &swarm.SpreadOver{SpreadDescriptor: "node.id"}}}},
		},
		Mode:         swarm.ServiceMode{Replicated: &swarm.ReplicatedService{Replicas: &zero}},
		EndpointSpec: &swarm.EndpointSpec{Mode: swarm.ResolutionModeDNSRR},
	}
	if o.Job {
		one := uint64(1)
		svc.Mode = swarm.ServiceMode{ReplicatedJob: &swarm.ReplicatedJob{MaxConcurrent: &one, TotalCompletions: &one}}
		svc.TaskTemplate.RestartPolicy = &swarm.RestartPolicy{Condition: swarm.RestartPolicyConditionNone}
		svc.TaskTemplate.Placement.Preferences = nil
	}
	if spec.Network != "" {
		svc.TaskTemplate.Networks = []swarm.NetworkAttachmentConfig{{Target: spec.Network, Aliases: spec.Aliases}}
	}
	// QueryRegistry stays off: the image is pinned by digest already, and a
	// query would fail where the manager cannot reach the registry.
	res, err := cli.ServiceCreate(ctx, client.ServiceCreateOptions{Spec: svc, EncodedRegistryAuth: o.RegistryAuth})
	switch {
	case err == nil && o.Job:
		return ServiceIDPrefix + res.ID, nil
	case err == nil:
		return replicaID(res.ID, o.Replica), nil
	case !o.Job && (cerrdefs.IsConflict(err) || strings.Contains(err.Error(), "already exists")):
		// Another replica created it: join it.
		got, ierr := cli.ServiceInspect(ctx, name, client.ServiceInspectOptions{})
		if ierr != nil {
			return "", fmt.Errorf("creating service %s: %w", name, err)
		}
		if got.Service.Spec.Labels[naming.LabelConfigHash] != labels[naming.LabelConfigHash] || got.Service.Spec.Labels[naming.LabelDigest] != labels[naming.LabelDigest] {
			return "", fmt.Errorf("creating service %s: a service of that name runs something else (digest %s)", name, got.Service.Spec.Labels[naming.LabelDigest])
		}
		return replicaID(got.Service.ID, o.Replica), nil
	default:
		return "", fmt.Errorf("creating service %s: %w", name, err)
	}
}

// scaleService moves a service's replica count to what next says of the
// current one, retrying when another writer changed the service meanwhile
// (replicas start and stop side by side).
func scaleService(ctx context.Context, cli *client.Client, id string, next func(current uint64) uint64) error {
	for attempt := 0; ; attempt++ {
		res, err := cli.ServiceInspect(ctx, serviceID(id), client.ServiceInspectOptions{})
		if err != nil {
			return err
		}
		spec := res.Service.Spec
		current := uint64(0)
		if r := spec.Mode.Replicated; r != nil && r.Replicas != nil {
			current = *r.Replicas
		}
		want := next(current)
		if want == current && res.Service.PreviousSpec != nil {
			return nil
		}
		spec.Mode = swarm.ServiceMode{Replicated: &swarm.ReplicatedService{Replicas: &want}}
		_, err = cli.ServiceUpdate(ctx, res.Service.ID, client.ServiceUpdateOptions{Version: res.Service.Version, Spec: spec})
		if err != nil && strings.Contains(err.Error(), "out of sequence") && attempt < 20 {
			continue
		}
		return err
	}
}

// startService scales a service to at least the replica's number and waits
// until that many of its tasks run. A task that fails to start is an error
// with Swarm's reason.
func (e *Engine) startService(ctx context.Context, cli *client.Client, id string) error {
	res, err := cli.ServiceInspect(ctx, serviceID(id), client.ServiceInspectOptions{})
	if err != nil {
		return err
	}
	if res.Service.Spec.Mode.ReplicatedJob != nil {
		return nil // a job starts when it is created: Wait follows it
	}
	k := uint64(replicaOf(id))
	since := time.Now().Add(-2 * time.Second)
	if err := scaleService(ctx, cli, id, func(current uint64) uint64 { return max(current, k) }); err != nil {
		return err
	}
	for {
		tasks, err := cli.TaskList(ctx, client.TaskListOptions{Filters: client.Filters{}.Add("service", serviceID(id))})
		if err != nil {
			return err
		}
		running := uint64(0)
		for _, t := range tasks.Items {
			if t.DesiredState == swarm.TaskStateRunning && t.Status.State == swarm.TaskStateRunning {
				running++
			}
		}
		if running >= k {
			return nil
		}
		for _, t := range tasks.Items {
			switch t.Status.State {
			case swarm.TaskStateFailed, swarm.TaskStateRejected:
				if t.CreatedAt.After(since) {
					return fmt.Errorf("a task of service %s %s: %s", res.Service.Spec.Name, t.Status.State, strings.TrimSpace(t.Status.Err))
				}
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// stopService scales a service below the replica's number (stopping every
// replica scales it to 0) and waits until no more tasks than that run:
// Swarm gives each the stop grace period, then kills it.
func (e *Engine) stopService(ctx context.Context, cli *client.Client, id string, timeout time.Duration) error {
	keep := uint64(max(replicaOf(id)-1, 0))
	if err := scaleService(ctx, cli, id, func(current uint64) uint64 { return min(current, keep) }); err != nil {
		if cerrdefs.IsNotFound(err) {
			return nil
		}
		return err
	}
	return waitTasksEnd(ctx, cli, id, int(keep), timeout+10*time.Second)
}

// waitTasksEnd waits until at most keep tasks of a service run or start.
func waitTasksEnd(ctx context.Context, cli *client.Client, id string, keep int, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		tasks, err := cli.TaskList(ctx, client.TaskListOptions{Filters: client.Filters{}.Add("service", serviceID(id))})
		if err != nil {
			return err
		}
		live := 0
		for _, t := range tasks.Items {
			if !taskEnded(t.Status.State) {
				live++
			}
		}
		if live <= keep {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("service %s still has %d task(s) after %s, want %d", serviceID(id), live, timeout, keep)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func taskEnded(s swarm.TaskState) bool {
	switch s {
	case swarm.TaskStateComplete, swarm.TaskStateShutdown, swarm.TaskStateFailed, swarm.TaskStateRejected, swarm.TaskStateOrphaned, swarm.TaskStateRemove:
		return true
	}
	return false
}

// removeService removes a service and waits until its tasks are gone, so
// that the network they were on can be removed after it.
func (e *Engine) removeService(ctx context.Context, cli *client.Client, id string) error {
	if _, err := cli.ServiceRemove(ctx, serviceID(id), client.ServiceRemoveOptions{}); err != nil {
		if cerrdefs.IsNotFound(err) {
			return nil
		}
		return err
	}
	for deadline := time.Now().Add(30 * time.Second); ; {
		tasks, err := cli.TaskList(ctx, client.TaskListOptions{Filters: client.Filters{}.Add("service", serviceID(id))})
		if err != nil || len(tasks.Items) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return nil // the service is gone; Swarm removes its tasks in its own time
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func (e *Engine) serviceLogs(ctx context.Context, cli *client.Client, id string, tail int) (string, error) {
	rc, err := cli.ServiceLogs(ctx, serviceID(id), client.ServiceLogsOptions{ShowStdout: true, ShowStderr: true, Tail: strconv.Itoa(tail)})
	if err != nil {
		return "", err
	}
	defer rc.Close()
	raw, err := io.ReadAll(io.LimitReader(rc, 1<<20))
	if err != nil && !errors.Is(err, io.EOF) {
		return "", err
	}
	return demux(raw), nil
}

// EnsureOverlay creates an attachable overlay network unless one of that
// name exists: services join it, and so can the router's container. It
// reports whether it created it. A bridge network of that name is an error.
func (e *Engine) EnsureOverlay(ctx context.Context, name string, labels map[string]string) (bool, error) {
	cli, err := e.client(ctx)
	if err != nil {
		return false, err
	}
	if res, err := cli.NetworkInspect(ctx, name, client.NetworkInspectOptions{}); err == nil {
		if res.Network.Driver != "overlay" {
			return false, fmt.Errorf("network %s is a %s network: services need an overlay; remove it, or name another network", name, res.Network.Driver)
		}
		return false, nil
	} else if !IsNotFound(err) {
		return false, err
	}
	if _, err := cli.NetworkCreate(ctx, name, client.NetworkCreateOptions{Driver: "overlay", Attachable: true, Labels: labels}); err != nil {
		return false, fmt.Errorf("creating overlay network %s: %w", name, err)
	}
	return true, nil
}
