package rollouttest

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"time"

	cerrdefs "github.com/containerd/errdefs"

	"github.com/releasekit/terraform-provider-release/internal/clock"
	"github.com/releasekit/terraform-provider-release/internal/docker"
)

// Host is an in-memory Docker host (rollout.Host) whose containers are
// healthy as soon as they start: the gate passes at its first checks.
// Safe for concurrent use.
type Host struct {
	Clock clock.Clock

	mu         sync.Mutex
	containers map[string]*docker.Container
	networks   map[string]bool
	nextID     int
	nextIP     int
}

// NewHost is an empty host.
func NewHost(c clock.Clock) *Host {
	return &Host{Clock: c, containers: map[string]*docker.Container{}, networks: map[string]bool{}}
}

// copyOf is the container as a caller may keep it: maps of its own.
func copyOf(c *docker.Container) docker.Container {
	out := *c
	out.Labels = make(map[string]string, len(c.Labels))
	for k, v := range c.Labels {
		out.Labels[k] = v
	}
	out.IPs = make(map[string]string, len(c.IPs))
	for k, v := range c.IPs {
		out.IPs[k] = v
	}
	return out
}

func (h *Host) find(id string) *docker.Container {
	if c, ok := h.containers[id]; ok {
		return c
	}
	for _, c := range h.containers {
		if c.Name == id {
			return c
		}
	}
	return nil
}

// List returns the containers with every label given ("" matches any value).
func (h *Host) List(_ context.Context, labels map[string]string) ([]docker.Container, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []docker.Container
	for _, c := range h.containers {
		match := true
		for k, v := range labels {
			if got, ok := c.Labels[k]; !ok || (v != "" && got != v) {
				match = false
				break
			}
		}
		if match {
			out = append(out, copyOf(c))
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// Containers is every container on the host, by name.
func (h *Host) Containers() []docker.Container {
	out, _ := h.List(context.Background(), nil)
	return out
}

func notFound(id string) error { return cerrdefs.ErrNotFound.WithMessage("no such container: " + id) }

func (h *Host) Inspect(_ context.Context, id string) (docker.Container, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	c := h.find(id)
	if c == nil {
		return docker.Container{}, notFound(id)
	}
	return copyOf(c), nil
}

func (h *Host) Create(_ context.Context, spec docker.ContainerSpec) (string, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, c := range h.containers {
		if c.Name == spec.Name {
			return "", cerrdefs.ErrConflict.WithMessage(fmt.Sprintf("the container name %q is already in use", spec.Name))
		}
	}
	h.nextID++
	id := fmt.Sprintf("c%06d", h.nextID)
	labels := make(map[string]string, len(spec.Labels))
	for k, v := range spec.Labels {
		labels[k] = v
	}
	h.containers[id] = &docker.Container{ID: id, Name: spec.Name, Image: spec.Image, Labels: labels, State: "created",
		Created: h.Clock.Now(), Env: spec.Env, Cmd: spec.Cmd, IPs: map[string]string{}, Networks: []string{spec.Network}}
	return id, nil
}

func (h *Host) Start(_ context.Context, id string) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	c := h.find(id)
	if c == nil {
		return notFound(id)
	}
	if c.State != "running" {
		c.State = "running"
		h.nextIP++
		for _, n := range c.Networks {
			c.IPs[n] = fmt.Sprintf("10.%d.%d.%d", h.nextIP>>16&255, h.nextIP>>8&255, h.nextIP&255)
		}
	}
	return nil
}

func (h *Host) Stop(_ context.Context, id string, _ time.Duration) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	c := h.find(id)
	if c == nil {
		return notFound(id)
	}
	c.State, c.IPs = "exited", map[string]string{}
	return nil
}

func (h *Host) Remove(_ context.Context, id string) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if c := h.find(id); c != nil {
		delete(h.containers, c.ID)
	}
	return nil
}

func (h *Host) Logs(context.Context, string, int) (string, error) { return "", nil }

// Exec passes every probe (the router's probe is used when the Routes is a *Routes).
func (h *Host) Exec(context.Context, string, []string) (int, string, error) { return 0, "200 OK", nil }

func (h *Host) EnsureImage(context.Context, string, string) error { return nil }

func (h *Host) EnsureNetwork(_ context.Context, name string, _ map[string]string) (bool, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	created := !h.networks[name]
	h.networks[name] = true
	return created, nil
}

func (h *Host) ConnectNetwork(context.Context, string, string) error    { return nil }
func (h *Host) DisconnectNetwork(context.Context, string, string) error { return nil }
func (h *Host) RemoveNetwork(_ context.Context, name string) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	delete(h.networks, name)
	return nil
}

func (h *Host) Architecture(context.Context) (string, error) { return "x86_64", nil }
