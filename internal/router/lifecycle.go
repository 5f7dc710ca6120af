package router

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/releasekit/terraform-provider-release/internal/clock"
	"github.com/releasekit/terraform-provider-release/internal/docker"
	"github.com/releasekit/terraform-provider-release/internal/naming"
)

// Spec is a router container.
type Spec struct {
	Name        string
	Image       string
	Network     string
	Ports       []docker.Port
	MetricsPort int
}

// ContainerName is the router's container.
func ContainerName(name string) string { return "release-router-" + name }

// VolumeName holds the router's configuration files, so they outlive the container.
func VolumeName(name string) string { return "release-router-" + name + "-config" }

// Engine is the Docker side of a router's lifecycle. An Engine that also has
// a method Clock() clock.Clock is timed by that clock (a test's engine brings
// a fake one); any other runs on the wall clock, so callers need not care.
type Engine interface {
	Container
	Inspect(ctx context.Context, id string) (docker.Container, error)
	Create(ctx context.Context, spec docker.ContainerSpec) (string, error)
	Start(ctx context.Context, id string) error
	Remove(ctx context.Context, id string) error
	EnsureImage(ctx context.Context, ref, registryAuth string) error
	EnsureNetwork(ctx context.Context, name string, labels map[string]string) (bool, error)
	NetworkLabels(ctx context.Context, name string) (map[string]string, bool, error)
	ConnectNetwork(ctx context.Context, network, id string) error
	RemoveNetwork(ctx context.Context, name string) error
	EnsureVolume(ctx context.Context, name string, labels map[string]string) error
	RemoveVolume(ctx context.Context, name string) error
}

// Create starts a router: network, config volume, container, base config.
// A router's own start is checked like a reload: HAProxy must say it loaded.
func Create(ctx context.Context, e Engine, s Spec, registryAuth string) (string, error) {
	if err := e.EnsureImage(ctx, s.Image, registryAuth); err != nil {
		return "", err
	}
	labels := map[string]string{naming.LabelManaged: "true", naming.LabelKind: string(naming.KindRouter), naming.LabelRouter: s.Name}
	if _, err := e.EnsureNetwork(ctx, s.Network, labels); err != nil {
		return "", err
	}
	if err := e.EnsureVolume(ctx, VolumeName(s.Name), labels); err != nil {
		return "", err
	}
	for k, v := range map[string]string{naming.LabelRouterPorts: formatPorts(s.Ports), naming.LabelRouterMetricsPort: strconv.Itoa(s.MetricsPort), naming.LabelRouterNetwork: s.Network} {
		labels[k] = v
	}
	id, err := e.Create(ctx, docker.ContainerSpec{
		Name:       ContainerName(s.Name),
		Image:      s.Image,
		Entrypoint: []string{"haproxy"},
		Cmd:        []string{"-W", "-db", "-f", ConfigDir},
		Labels:     labels,
		Network:    s.Network,
		Ports:      s.Ports,
		Volumes:    map[string]string{VolumeName(s.Name): ConfigDir},
		// SIGUSR1 is HAProxy's soft stop: workers finish their requests.
		StopTimeout: 30,
	})
	if err != nil {
		return "", err
	}
	if err := e.CopyFiles(ctx, id, ConfigDir, []docker.File{{Path: BaseFile, Content: RenderBase(Base{MetricsPort: s.MetricsPort})}}); err != nil {
		_ = e.Remove(ctx, id)
		return "", err
	}
	clk := engineClock(e)
	start := clk.Now().Add(-time.Second)
	if err := e.Start(ctx, id); err != nil {
		_ = e.Remove(ctx, id)
		return "", fmt.Errorf("starting router %s: %w", s.Name, err)
	}
	if err := waitLoaded(ctx, e, clk, id, start); err != nil {
		// A router that never loaded is no router: leave nothing behind, so the next apply can create it again.
		_ = e.Remove(context.WithoutCancel(ctx), id)
		return "", err
	}
	return id, nil
}

// waitLoaded waits for HAProxy's "Loading success." after a start.
func waitLoaded(ctx context.Context, e Engine, clk clock.Clock, id string, since time.Time) error {
	deadline := clk.Now().Add(30 * time.Second)
	for clk.Now().Before(deadline) {
		logs, err := e.LogsSince(ctx, id, since)
		if err != nil {
			return err
		}
		if strings.Contains(logs, "Loading success") {
			return nil
		}
		c, err := e.Inspect(ctx, id)
		if err != nil {
			return err
		}
		if c.State == "exited" || c.State == "dead" {
			return fmt.Errorf("the router container exited at start: %s", strings.TrimSpace(lastLines(logs, 15)))
		}
		if err := clk.Sleep(ctx, 100*time.Millisecond); err != nil {
			return err
		}
	}
	return fmt.Errorf("the router did not report a successful start within 30s")
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// Recreate replaces the router container (new image or ports), keeping the
// configuration volume and the environment networks it had joined. Traffic
// stops for the moment between the two containers.
func Recreate(ctx context.Context, e Engine, s Spec, registryAuth string) (string, error) {
	old, err := e.Inspect(ctx, ContainerName(s.Name))
	if err != nil && !docker.IsNotFound(err) {
		return "", err
	}
	if err := e.EnsureImage(ctx, s.Image, registryAuth); err != nil {
		return "", err
	}
	if err == nil {
		if err := e.Remove(ctx, old.ID); err != nil {
			return "", err
		}
	}
	id, err := Create(ctx, e, s, registryAuth)
	if err != nil {
		return "", err
	}
	for network := range old.IPs {
		if network != s.Network && strings.HasPrefix(network, "release-") {
			if err := e.ConnectNetwork(ctx, network, id); err != nil {
				return id, err
			}
		}
	}
	return id, nil
}

// Destroy removes the router's container, volume and, if the router created
// it, its network.
func Destroy(ctx context.Context, e Engine, name, network string) error {
	if err := e.Remove(ctx, ContainerName(name)); err != nil {
		return err
	}
	if err := e.RemoveVolume(ctx, VolumeName(name)); err != nil {
		return err
	}
	labels, found, err := e.NetworkLabels(ctx, network)
	if err != nil || !found {
		return err
	}
	if labels[naming.LabelRouter] == name {
		return e.RemoveNetwork(ctx, network)
	}
	return nil
}

// Observed is a router as found on the host.
type Observed struct {
	Found   bool
	ID      string
	Spec    Spec
	Running bool
	Drift   []string
}

// Observe reads a router back from its container and files.
func Observe(ctx context.Context, e Engine, name string) (Observed, error) {
	c, err := e.Inspect(ctx, ContainerName(name))
	if docker.IsNotFound(err) {
		return Observed{}, nil
	}
	if err != nil {
		return Observed{}, err
	}
	o := Observed{Found: true, ID: c.ID, Running: c.Running()}
	o.Spec = Spec{Name: name, Image: c.Image, Network: c.Labels[naming.LabelRouterNetwork], Ports: parsePorts(c.Labels[naming.LabelRouterPorts])}
	o.Spec.MetricsPort, _ = strconv.Atoi(c.Labels[naming.LabelRouterMetricsPort])
	if !o.Running {
		o.Drift = append(o.Drift, "the router container is "+c.State)
		return o, nil
	}
	files, err := e.ReadDir(ctx, c.ID, ConfigDir)
	if err != nil {
		return o, err
	}
	if string(files[BaseFile]) != string(RenderBase(Base{MetricsPort: o.Spec.MetricsPort})) {
		o.Drift = append(o.Drift, "the router's base configuration was changed or lost")
	}
	return o, nil
}

// Repair restarts a stopped router and rewrites its base configuration.
func Repair(ctx context.Context, e Engine, c *Controller, o Observed) error {
	if !o.Running {
		clk := engineClock(e)
		start := clk.Now().Add(-time.Second)
		if err := e.Start(ctx, o.ID); err != nil {
			return err
		}
		if err := waitLoaded(ctx, e, clk, o.ID, start); err != nil {
			return err
		}
	}
	return c.Apply(ctx, o.ID, map[string][]byte{BaseFile: RenderBase(Base{MetricsPort: o.Spec.MetricsPort})})
}

// engineClock is the clock the lifecycle of a router on e runs on.
func engineClock(e Engine) clock.Clock {
	if c, ok := e.(interface{ Clock() clock.Clock }); ok && c.Clock() != nil {
		return c.Clock()
	}
	return clock.Real{}
}

func formatPorts(ps []docker.Port) string {
	parts := make([]string, 0, len(ps))
	for _, p := range ps {
		parts = append(parts, fmt.Sprintf("%d:%d@%s", p.Internal, p.External, p.HostIP))
	}
	sort.Strings(parts)
	return strings.Join(parts, ",")
}

func parsePorts(s string) []docker.Port {
	var out []docker.Port
	for _, p := range strings.Split(s, ",") {
		ports, ip, _ := strings.Cut(p, "@")
		in, ext, ok := strings.Cut(ports, ":")
		if !ok {
			continue
		}
		i, _ := strconv.Atoi(in)
		x, _ := strconv.Atoi(ext)
		out = append(out, docker.Port{Internal: i, External: x, HostIP: ip})
	}
	return out
}
