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
)

// A Swarm service stands in for a container when the engine is a swarm
// manager and a ContainerSpec asks for one: one service of one task per
// replica, so that everything above (the rollout, its history, drift) sees
// the same objects on one host and on a swarm. Swarm places the task,
// restarts it and moves it off a drained node; scaling the service to 0
// stops it and keeps it for a rollback.

// ServiceIDPrefix starts the ID of a Container that is a Swarm service: a
// service and a container never share an ID space, so every call routes by it.
const ServiceIDPrefix = "service:"

// swarmTaskLabel is on the container of every Swarm task: such a container
// is listed as its service.
const swarmTaskLabel = "com.docker.swarm.service.id"

// ServiceOptions asks Create for a Swarm service instead of a container.
type ServiceOptions struct {
	// Constraints are Swarm placement constraints ("node.role==worker").
	// Each replica is a service of its own, so Swarm's spread preferences,
	// which act within one service, would place nothing: its scheduler
	// puts a new task on the eligible node with the fewest tasks.
	Constraints []string
	// Job runs the container's command once, to its end, as a replicated
	// job (a migration): it starts when created, is never restarted, and
	// its one task's exit code is the container's.
	Job bool
	// RegistryAuth is the X-Registry-Auth value the nodes pull with
	// (--with-registry-auth), if any.
	RegistryAuth string
}

// IsService reports whether a container ID names a Swarm service.
func IsService(id string) bool { return strings.HasPrefix(id, ServiceIDPrefix) }

func serviceID(id string) string { return strings.TrimPrefix(id, ServiceIDPrefix) }

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
	out := make([]Container, 0, len(res.Items))
	for _, s := range res.Items {
		if s.Spec.Mode.ReplicatedJob != nil {
			// A finished job's task no longer wants to run: read all of its tasks.
			all, err := cli.TaskList(ctx, client.TaskListOptions{Filters: client.Filters{}.Add("service", s.ID)})
			if err != nil {
				return nil, fmt.Errorf("listing tasks on %s: %w", e.Host(), err)
			}
			byService[s.ID] = all.Items
		}
		out = append(out, serviceContainer(s, byService[s.ID]))
	}
	return out, nil
}

// serviceContainer describes a service of one task as a container: running
// while its task runs; created until first scaled up; exited once scaled to
// 0; restarting while Swarm looks for a task that runs.
func serviceContainer(s swarm.Service, tasks []swarm.Task) Container {
	if s.Spec.Mode.ReplicatedJob != nil {
		return jobContainer(s, tasks)
	}
	c := Container{ID: ServiceIDPrefix + s.ID, Name: s.Spec.Name, Labels: s.Spec.Labels, Created: s.CreatedAt,
		IPs: map[string]string{}, Task: &TaskInfo{}}
	if cs := s.Spec.TaskTemplate.ContainerSpec; cs != nil {
		c.Image, c.Env, c.Cmd = cs.Image, cs.Env, cs.Args
	}
	for _, n := range s.Spec.TaskTemplate.Networks {
		c.Networks = append(c.Networks, n.Target)
	}
	replicas := uint64(0)
	if r := s.Spec.Mode.Replicated; r != nil && r.Replicas != nil {
		replicas = *r.Replicas
	}
	c.Task.Replicas = int(replicas)
	switch {
	case replicas == 0 && s.PreviousSpec == nil:
		c.State = "created"
	case replicas == 0:
		c.State = "exited"
	default:
		c.State = "restarting"
	}
	for _, t := range tasks {
		if t.DesiredState != swarm.TaskStateRunning {
			continue
		}
		c.Task.Node = t.NodeID
		if t.Status.State != swarm.TaskStateRunning {
			continue
		}
		c.State = "running"
		c.Networks = c.Networks[:0]
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
	}
	sort.Strings(c.Networks)
	return c
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

// TaskInfo is what a Container that is a Swarm service adds.
type TaskInfo struct {
	// Replicas is the service's replica count (0 or 1).
	Replicas int
	// Node is the ID of the node its task runs on, if any.
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
	return serviceContainer(res.Service, tasks.Items), nil
}

// createService creates a service of no task yet: Start scales it to one.
func (e *Engine) createService(ctx context.Context, cli *client.Client, spec ContainerSpec) (string, error) {
	if ok, err := e.SwarmManager(ctx); err != nil {
		return "", err
	} else if !ok {
		return "", fmt.Errorf("creating service %s: the Docker host %s is not a swarm manager: run `docker swarm init` there, or talk to a manager", spec.Name, e.Host())
	}
	if len(spec.Files) > 0 || len(spec.Ports) > 0 || len(spec.Volumes) > 0 {
		return "", fmt.Errorf("creating service %s: files, published ports and volumes are for containers only", spec.Name)
	}
	zero := uint64(0)
	cs := &swarm.ContainerSpec{
		Image:      spec.Image,
		Labels:     spec.Labels,
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
	placement := &swarm.Placement{Constraints: spec.Service.Constraints}
	svc := swarm.ServiceSpec{
		Annotations: swarm.Annotations{Name: spec.Name, Labels: spec.Labels},
		TaskTemplate: swarm.TaskSpec{
			ContainerSpec: cs,
			// Swarm restarts a task that exits, as unless-stopped does a container.
			RestartPolicy: &swarm.RestartPolicy{Condition: swarm.RestartPolicyConditionAny},
			Placement:     placement,
		},
		Mode:         swarm.ServiceMode{Replicated: &swarm.ReplicatedService{Replicas: &zero}},
		EndpointSpec: &swarm.EndpointSpec{Mode: swarm.ResolutionModeDNSRR},
	}
	if spec.Service.Job {
		one := uint64(1)
		svc.Mode = swarm.ServiceMode{ReplicatedJob: &swarm.ReplicatedJob{MaxConcurrent: &one, TotalCompletions: &one}}
		svc.TaskTemplate.RestartPolicy = &swarm.RestartPolicy{Condition: swarm.RestartPolicyConditionNone}
	}
	if spec.Network != "" {
		svc.TaskTemplate.Networks = []swarm.NetworkAttachmentConfig{{Target: spec.Network, Aliases: spec.Aliases}}
	}
	// The image is pinned by digest already: no registry query, which would
	// rewrite the reference and fail where the manager cannot reach the registry.
	res, err := cli.ServiceCreate(ctx, client.ServiceCreateOptions{Spec: svc, EncodedRegistryAuth: spec.Service.RegistryAuth})
	if err != nil {
		return "", fmt.Errorf("creating service %s: %w", spec.Name, err)
	}
	return ServiceIDPrefix + res.ID, nil
}

// scaleService sets a service's replica count.
func scaleService(ctx context.Context, cli *client.Client, id string, replicas uint64) error {
	for attempt := 0; ; attempt++ {
		res, err := cli.ServiceInspect(ctx, serviceID(id), client.ServiceInspectOptions{})
		if err != nil {
			return err
		}
		spec := res.Service.Spec
		if r := spec.Mode.Replicated; r != nil && r.Replicas != nil && *r.Replicas == replicas && res.Service.PreviousSpec != nil {
			return nil
		}
		spec.Mode = swarm.ServiceMode{Replicated: &swarm.ReplicatedService{Replicas: &replicas}}
		_, err = cli.ServiceUpdate(ctx, res.Service.ID, client.ServiceUpdateOptions{Version: res.Service.Version, Spec: spec})
		// Another writer (Swarm itself) moved the version on: read it again.
		if err != nil && strings.Contains(err.Error(), "out of sequence") && attempt < 5 {
			continue
		}
		return err
	}
}

// startService scales a service to one task and waits until it runs. A
// task that fails to start is an error with Swarm's reason.
func (e *Engine) startService(ctx context.Context, cli *client.Client, id string) error {
	res, err := cli.ServiceInspect(ctx, serviceID(id), client.ServiceInspectOptions{})
	if err != nil {
		return err
	}
	if res.Service.Spec.Mode.ReplicatedJob != nil {
		return nil // a job starts when it is created: Wait follows it
	}
	if err := scaleService(ctx, cli, id, 1); err != nil {
		return err
	}
	for {
		tasks, err := cli.TaskList(ctx, client.TaskListOptions{Filters: client.Filters{}.Add("service", serviceID(id))})
		if err != nil {
			return err
		}
		for _, t := range tasks.Items {
			if t.DesiredState == swarm.TaskStateRunning && t.Status.State == swarm.TaskStateRunning {
				return nil
			}
		}
		for _, t := range tasks.Items {
			switch t.Status.State {
			case swarm.TaskStateFailed, swarm.TaskStateRejected:
				return fmt.Errorf("the task of service %s %s: %s", serviceID(id), t.Status.State, strings.TrimSpace(t.Status.Err))
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// stopService scales a service to 0 and waits until its task has stopped:
// Swarm gives it the stop grace period, then kills it.
func (e *Engine) stopService(ctx context.Context, cli *client.Client, id string, timeout time.Duration) error {
	if err := scaleService(ctx, cli, id, 0); err != nil {
		if cerrdefs.IsNotFound(err) {
			return nil
		}
		return err
	}
	return waitTasksEnd(ctx, cli, id, timeout+10*time.Second)
}

// waitTasksEnd waits until no task of a service is running or starting.
func waitTasksEnd(ctx context.Context, cli *client.Client, id string, timeout time.Duration) error {
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
		if live == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("service %s still has %d task(s) after %s", serviceID(id), live, timeout)
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

// TaskNodes returns the nodes, by hostname, whose tasks of a service run.
func (e *Engine) TaskNodes(ctx context.Context, id string) ([]string, error) {
	cli, err := e.client(ctx)
	if err != nil {
		return nil, err
	}
	tasks, err := cli.TaskList(ctx, client.TaskListOptions{Filters: client.Filters{}.Add("service", serviceID(id)).Add("desired-state", "running")})
	if err != nil {
		return nil, err
	}
	var out []string
	for _, t := range tasks.Items {
		if t.Status.State != swarm.TaskStateRunning {
			continue
		}
		n, err := cli.NodeInspect(ctx, t.NodeID, client.NodeInspectOptions{})
		if err != nil {
			return nil, err
		}
		out = append(out, n.Node.Description.Hostname)
	}
	return out, nil
}
