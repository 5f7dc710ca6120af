package router

import (
	"context"
	"errors"
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
	// HardStopAfter and TimeoutTunnel go into the base file (RenderBase's
	// defaults when zero); Observe reads them back from it.
	HardStopAfter time.Duration
	TimeoutTunnel time.Duration
}

// Base is the base file's settings of the router.
func (s Spec) Base() Base {
	return Base{MetricsPort: s.MetricsPort, HardStopAfter: s.HardStopAfter, TimeoutTunnel: s.TimeoutTunnel}
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
	List(ctx context.Context, labels map[string]string) ([]docker.Container, error)
	Inspect(ctx context.Context, id string) (docker.Container, error)
	Create(ctx context.Context, spec docker.ContainerSpec) (string, error)
	Start(ctx context.Context, id string) error
	Remove(ctx context.Context, id string) error
	EnsureImage(ctx context.Context, ref, registryAuth string) error
	EnsureNetwork(ctx context.Context, name string, labels map[string]string) (bool, error)
	NetworkLabels(ctx context.Context, name string) (map[string]string, bool, error)
	ConnectNetwork(ctx context.Context, network, id string) error
	DisconnectNetwork(ctx context.Context, network, id string) error
	RemoveNetwork(ctx context.Context, name string) error
	EnsureVolume(ctx context.Context, name string, labels map[string]string) error
	RemoveVolume(ctx context.Context, name string) error
}

// Create starts a router: network, config volume, container, base config.
// The new container joins the network of every environment still routed
// through a router of this name (a router replaced or recreated serves
// them again at once: their routes are in the volume, which outlives it).
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
		// SIGUSR1 is HAProxy's soft stop: a stopped or restarted router
		// finishes the requests under way instead of resetting them.
		StopSignal:  "SIGUSR1",
		StopTimeout: 30,
		// Reloads are signals, which Docker counts as a manual stop: with
		// unless-stopped a router would stay down after a daemon restart.
		AlwaysRestart: true,
	})
	if err != nil {
		return "", err
	}
	if err := e.CopyFiles(ctx, id, ConfigDir, []docker.File{{Path: BaseFile, Content: RenderBase(s.Base())}}); err != nil {
		_ = e.Remove(ctx, id)
		return "", err
	}
	routed, err := Routed(ctx, e, s.Name)
	if err == nil {
		err = joinNetworks(ctx, e, id, routed.Networks, []string{s.Network})
	}
	if err != nil {
		_ = e.Remove(context.WithoutCancel(ctx), id)
		return "", err
	}
	clk := engineClock(e)
	start := startMark(ctx, e, clk)
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
// configuration volume and the environment networks it had joined (those
// that still exist) and joining those of every environment routed through
// it. Traffic stops for the moment between the two containers.
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
	var kept []string
	for _, network := range old.Networks {
		if strings.HasPrefix(network, "release-") {
			kept = append(kept, network)
		}
	}
	if err := joinNetworks(ctx, e, id, existing(ctx, e, kept), []string{s.Network}); err != nil {
		return id, err
	}
	return id, nil
}

// RoutedSet is what routes through a router, as its application
// containers' labels say.
type RoutedSet struct {
	// Networks the environments' containers run on, sorted.
	Networks []string
	// Routes are the route files of the environments, by file name.
	Routes map[string]bool
}

// Routed reads from the application containers labelled with the router's
// name which environments route through it and on which networks.
func Routed(ctx context.Context, e Engine, name string) (RoutedSet, error) {
	cs, err := e.List(ctx, map[string]string{naming.LabelManaged: "true", naming.LabelKind: string(naming.KindApp), naming.LabelRouter: name})
	if err != nil {
		return RoutedSet{}, err
	}
	set := RoutedSet{Routes: map[string]bool{}}
	seen := map[string]bool{}
	for _, c := range cs {
		set.Routes[RouteFileName(c.Labels[naming.LabelEnvironment], c.Labels[naming.LabelService])] = true
		networks := c.Networks
		if len(networks) == 0 {
			for n := range c.IPs {
				networks = append(networks, n)
			}
		}
		for _, n := range networks {
			if !seen[n] && !builtinNetworks[n] {
				seen[n] = true
				set.Networks = append(set.Networks, n)
			}
		}
	}
	sort.Strings(set.Networks)
	return set, nil
}

// builtinNetworks are Docker's own: a router never joins them for an environment.
var builtinNetworks = map[string]bool{"bridge": true, "host": true, "none": true}

// joinNetworks connects a router container to the given networks, except
// those it is on already (skip) and those that no longer exist.
func joinNetworks(ctx context.Context, e Engine, id string, networks, skip []string) error {
	for _, n := range existing(ctx, e, networks) {
		if contains(skip, n) {
			continue
		}
		if err := e.ConnectNetwork(ctx, n, id); err != nil {
			return fmt.Errorf("connecting the router to network %s: %w", n, err)
		}
	}
	return nil
}

// existing keeps the networks that exist on the host; one that cannot be
// read is kept, so that the connect reports the error.
func existing(ctx context.Context, e Engine, networks []string) []string {
	var out []string
	for _, n := range networks {
		if _, found, err := e.NetworkLabels(ctx, n); err != nil || found {
			out = append(out, n)
		}
	}
	return out
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// ErrRouterRunning is DetachStopped's answer for a router that runs: its
// route is changed with the Controller (check and hitless reload) instead.
var ErrRouterRunning = errors.New("the router runs: change its route with a reload, not while stopped")

// DetachStopped takes an environment off a stopped router: it empties the
// environment's route file and disconnects the router from the
// environment's network, both of which Docker allows on a stopped
// container. Without it, removing the network leaves the stopped router
// referring to a network that no longer exists, and it can never start
// again. A router that is gone is nothing to detach; one that runs
// returns ErrRouterRunning.
func DetachStopped(ctx context.Context, e Detacher, routerID, network, routeFile string) error {
	c, err := e.Inspect(ctx, routerID)
	if docker.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	if c.Running() {
		return ErrRouterRunning
	}
	var errs []error
	if routeFile != "" {
		// An empty file is an empty configuration: the listener is gone when the router starts.
		if err := e.CopyFiles(ctx, c.ID, ConfigDir, []docker.File{{Path: routeFile, Content: []byte{}, Mode: 0o644}}); err != nil {
			errs = append(errs, fmt.Errorf("emptying the route %s in the stopped router: %w", routeFile, err))
		}
	}
	if network != "" && contains(c.Networks, network) {
		if err := e.DisconnectNetwork(ctx, network, c.ID); err != nil {
			errs = append(errs, fmt.Errorf("disconnecting the stopped router from network %s: %w", network, err))
		}
	}
	return errors.Join(errs...)
}

// Detacher is what DetachStopped needs of the Docker host; *docker.Engine
// and every Engine have it.
type Detacher interface {
	Inspect(ctx context.Context, id string) (docker.Container, error)
	CopyFiles(ctx context.Context, id, dir string, files []docker.File) error
	DisconnectNetwork(ctx context.Context, network, id string) error
}

// Destroy removes the router's container, volume and, if the router created
// it, its network. While environments still route through it (a router
// being replaced: Terraform destroys it and creates it again), the volume
// with their routes and the network stay, for the new container.
func Destroy(ctx context.Context, e Engine, name, network string) error {
	if err := e.Remove(ctx, ContainerName(name)); err != nil {
		return err
	}
	routed, err := Routed(ctx, e, name)
	if err != nil {
		return err
	}
	if len(routed.Routes) > 0 {
		return nil
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
	// Networks are the networks the container is attached to.
	Networks []string
	// MissingNetworks are networks the stopped container is attached to
	// that no longer exist: Docker refuses to start it until it leaves them.
	MissingNetworks []string
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
	o := Observed{Found: true, ID: c.ID, Running: c.Running(), Networks: c.Networks}
	o.Spec = Spec{Name: name, Image: c.Image, Network: c.Labels[naming.LabelRouterNetwork], Ports: parsePorts(c.Labels[naming.LabelRouterPorts])}
	o.Spec.MetricsPort, _ = strconv.Atoi(c.Labels[naming.LabelRouterMetricsPort])
	if !o.Running {
		o.Drift = append(o.Drift, "the router container is "+c.State)
		// A running container keeps its networks from being removed; a stopped one does not.
		for _, n := range c.Networks {
			_, found, err := e.NetworkLabels(ctx, n)
			if err != nil {
				return o, err
			}
			if !found {
				o.MissingNetworks = append(o.MissingNetworks, n)
				o.Drift = append(o.Drift, "it is attached to network "+n+", which no longer exists, so Docker cannot start it")
			}
		}
		return o, nil
	}
	files, err := e.ReadDir(ctx, c.ID, ConfigDir)
	if err != nil {
		return o, err
	}
	// The timeouts are read from the base file, as the ports are from the
	// container: a value edited there shows in the plan. Anything else
	// edited, lost, or an earlier version's file (no runtime socket) is drift.
	if b, ok := ParseBase(files[BaseFile]); ok && b.MetricsPort == o.Spec.MetricsPort {
		o.Spec.HardStopAfter, o.Spec.TimeoutTunnel = b.HardStopAfter, b.TimeoutTunnel
	} else {
		o.Drift = append(o.Drift, "the router's base configuration was changed or lost")
	}
	return o, nil
}

// Repair restarts a stopped router and rewrites its base configuration
// from o.Spec (the caller sets the timeouts it wants there).
// Before the start it leaves the networks that no longer exist and joins
// those of the environments routed through it; routes of environments that
// no longer exist on the host are emptied, so that their listeners close.
func Repair(ctx context.Context, e Engine, c *Controller, o Observed) error {
	routed, err := Routed(ctx, e, o.Spec.Name)
	if err != nil {
		return err
	}
	for _, n := range o.MissingNetworks {
		if err := e.DisconnectNetwork(ctx, n, o.ID); err != nil {
			return fmt.Errorf("disconnecting the router from network %s, which no longer exists: %w", n, err)
		}
	}
	if err := joinNetworks(ctx, e, o.ID, routed.Networks, append(o.Networks, o.Spec.Network)); err != nil {
		return err
	}
	if !o.Running {
		clk := engineClock(e)
		start := startMark(ctx, e, clk)
		if err := e.Start(ctx, o.ID); err != nil {
			return err
		}
		if err := waitLoaded(ctx, e, clk, o.ID, start); err != nil {
			return err
		}
	}
	files, err := c.Files(ctx, o.ID)
	if err != nil {
		return fmt.Errorf("reading the router's configuration: %w", err)
	}
	write := map[string][]byte{BaseFile: RenderBase(o.Spec.Base())}
	for name, content := range files {
		if isRouteFile(name) && len(content) > 0 && !routed.Routes[name] {
			write[name] = []byte{}
		}
	}
	return c.ApplyKnown(ctx, o.ID, write, files)
}

func isRouteFile(name string) bool {
	return strings.HasPrefix(name, "route_") && strings.HasSuffix(name, ".cfg")
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

// startMark is the moment before a start, for reading the router's logs
// from: on the daemon's own clock (the logs' times; a remote daemon's clock
// may be behind this one), with a second of slack. The local clock when the
// daemon cannot say.
func startMark(ctx context.Context, e Engine, clk clock.Clock) time.Time {
	if t, err := e.DaemonTime(ctx); err == nil {
		return t.Add(-time.Second)
	}
	return clk.Now().Add(-time.Second)
}
