package docker

import (
	"archive/tar"
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net/netip"
	"path"
	"sort"
	"strings"
	"sync"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/pkg/stdcopy"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/mount"
	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/client"
)

// Engine is the set of Docker operations a release needs, over one Engine
// connection, with domain types instead of the API's.
type Engine struct {
	conn *Connector

	archMu sync.Mutex
	arch   string

	swarmMu    sync.Mutex
	swarmKnown bool // whether swarmManager was read
	swarmMgr   bool
}

// NewEngine wraps a connector; nothing is dialled until the first call.
func NewEngine(conn *Connector) *Engine { return &Engine{conn: conn} }

// Host names the daemon for messages.
func (e *Engine) Host() string { return HostForDisplay(e.conn.Config.Host) }

// Container is what the release logic knows of a container.
type Container struct {
	ID     string
	Name   string
	Image  string
	Labels map[string]string
	State  string // created, running, exited, …
	Health string // healthy, unhealthy, starting; "" when unknown or none
	IPs    map[string]string
	// Networks lists every network the container is attached to, with or
	// without an address: a stopped container keeps its attachments but
	// has no address on them.
	Networks []string
	Created  time.Time
	// HealthLog holds the exit codes and outputs of the last health checks, oldest first (inspect only).
	HealthLog []HealthResult
	// Env and Cmd are the container's configuration (inspect only), so
	// that a fresh copy of it can be started.
	Env []string
	Cmd []string
	// Task is set when the container is a replica of a Swarm service.
	Task *TaskInfo
}

// HealthResult is one health check run.
type HealthResult struct {
	ExitCode int
	Output   string
}

// Running reports whether the container runs.
func (c Container) Running() bool { return c.State == "running" }

// File is a file to place in a container before it starts.
type File struct {
	Path    string
	Mode    int64
	Content []byte
}

// Port publishes a container port on the host.
type Port struct {
	Internal int
	External int
	HostIP   string
}

// HealthCheck is a Docker health check.
type HealthCheck struct {
	Test        []string
	Interval    time.Duration
	Timeout     time.Duration
	Retries     int
	StartPeriod time.Duration
}

// ContainerSpec describes a container to create.
type ContainerSpec struct {
	Name        string
	Image       string
	Entrypoint  []string
	Cmd         []string
	Env         []string
	Labels      map[string]string
	Network     string
	Aliases     []string
	Ports       []Port
	Volumes     map[string]string // volume name -> target path
	Health      *HealthCheck
	StopTimeout int
	// StopSignal replaces SIGTERM when the container is stopped (docker stop, restart).
	StopSignal string
	Files      []File
	// NoRestart runs the container once: no restart policy (one-off commands).
	NoRestart bool
	// AlwaysRestart restarts the container whenever it stops and after a
	// daemon restart, even once it was sent a signal: Docker counts any
	// signal sent through its API (a reload) as a manual stop, after which
	// unless-stopped leaves the container down when the daemon restarts.
	AlwaysRestart bool
	// Service, when set, runs the container as a replica of a Swarm service
	// on the swarm the engine manages (see ServiceIDPrefix).
	Service *ServiceOptions
}

// IsNotFound reports whether the Engine said the object does not exist.
func IsNotFound(err error) bool { return cerrdefs.IsNotFound(err) }

// IsConflict reports whether the Engine refused because the object exists
// already, such as a second container of the same name.
func IsConflict(err error) bool { return cerrdefs.IsConflict(err) }

func (e *Engine) client(ctx context.Context) (*client.Client, error) { return e.conn.Client(ctx) }

// List returns the containers whose labels match all of the given ones, in one call.
func (e *Engine) List(ctx context.Context, labels map[string]string) ([]Container, error) {
	cli, err := e.client(ctx)
	if err != nil {
		return nil, err
	}
	f := client.Filters{}
	keys := make([]string, 0, len(labels))
	for k := range labels {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if labels[k] == "" {
			f.Add("label", k)
		} else {
			f.Add("label", k+"="+labels[k])
		}
	}
	res, err := cli.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: f})
	if err != nil {
		return nil, fmt.Errorf("listing containers on %s: %w", e.Host(), err)
	}
	services, err := e.listServices(ctx, cli, f)
	if err != nil {
		return nil, err
	}
	out := make([]Container, 0, len(res.Items)+len(services))
	out = append(out, services...)
	for _, s := range res.Items {
		if s.Labels[swarmTaskLabel] != "" {
			continue // a task's container: its service stands for it
		}
		c := Container{ID: s.ID, Image: s.Image, Labels: s.Labels, State: string(s.State), Created: time.Unix(s.Created, 0), IPs: map[string]string{}}
		if len(s.Names) > 0 {
			c.Name = strings.TrimPrefix(s.Names[0], "/")
		}
		if s.NetworkSettings != nil {
			for name, ep := range s.NetworkSettings.Networks {
				c.Networks = append(c.Networks, name)
				if ep != nil && ep.IPAddress.IsValid() {
					c.IPs[name] = ep.IPAddress.String()
				}
			}
			sort.Strings(c.Networks)
		}
		if s.Health != nil {
			c.Health = string(s.Health.Status)
		} else if i := strings.Index(s.Status, "("); i >= 0 {
			// Engines before API 1.52 put the health in the status text.
			c.Health = strings.TrimSuffix(strings.TrimPrefix(s.Status[i:], "("), ")")
			c.Health = strings.TrimPrefix(c.Health, "health: ")
		}
		out = append(out, c)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// Inspect returns one container, with its health log.
func (e *Engine) Inspect(ctx context.Context, id string) (Container, error) {
	cli, err := e.client(ctx)
	if err != nil {
		return Container{}, err
	}
	if IsService(id) {
		return e.inspectService(ctx, cli, id)
	}
	res, err := cli.ContainerInspect(ctx, id, client.ContainerInspectOptions{})
	if err != nil {
		return Container{}, err
	}
	r := res.Container
	c := Container{ID: r.ID, Name: strings.TrimPrefix(r.Name, "/"), IPs: map[string]string{}}
	if r.Config != nil {
		c.Labels = r.Config.Labels
		c.Image = r.Config.Image
		c.Env = r.Config.Env
		c.Cmd = r.Config.Cmd
	}
	if t, err := time.Parse(time.RFC3339Nano, r.Created); err == nil {
		c.Created = t
	}
	if r.State != nil {
		c.State = string(r.State.Status)
		if r.State.Health != nil {
			c.Health = string(r.State.Health.Status)
			for _, l := range r.State.Health.Log {
				if l != nil {
					c.HealthLog = append(c.HealthLog, HealthResult{ExitCode: l.ExitCode, Output: l.Output})
				}
			}
		}
	}
	if r.NetworkSettings != nil {
		for name, ep := range r.NetworkSettings.Networks {
			c.Networks = append(c.Networks, name)
			if ep != nil && ep.IPAddress.IsValid() {
				c.IPs[name] = ep.IPAddress.String()
			}
		}
		sort.Strings(c.Networks)
	}
	return c, nil
}

// Create creates a container and places its files; it does not start it.
func (e *Engine) Create(ctx context.Context, spec ContainerSpec) (string, error) {
	cli, err := e.client(ctx)
	if err != nil {
		return "", err
	}
	if spec.Service != nil {
		return e.createService(ctx, cli, spec)
	}
	cfg := &container.Config{
		Image:      spec.Image,
		Entrypoint: spec.Entrypoint,
		Cmd:        spec.Cmd,
		Env:        spec.Env,
		Labels:     spec.Labels,
	}
	if spec.StopTimeout > 0 {
		t := spec.StopTimeout
		cfg.StopTimeout = &t
	}
	cfg.StopSignal = spec.StopSignal
	if h := spec.Health; h != nil {
		cfg.Healthcheck = &container.HealthConfig{Test: h.Test, Interval: h.Interval, Timeout: h.Timeout, Retries: h.Retries, StartPeriod: h.StartPeriod}
	}
	host := &container.HostConfig{RestartPolicy: container.RestartPolicy{Name: container.RestartPolicyUnlessStopped}}
	if spec.NoRestart {
		host.RestartPolicy = container.RestartPolicy{Name: container.RestartPolicyDisabled}
	}
	if spec.AlwaysRestart {
		host.RestartPolicy = container.RestartPolicy{Name: container.RestartPolicyAlways}
	}
	if len(spec.Ports) > 0 {
		cfg.ExposedPorts = network.PortSet{}
		host.PortBindings = network.PortMap{}
		for _, p := range spec.Ports {
			port, err := network.ParsePort(fmt.Sprintf("%d/tcp", p.Internal))
			if err != nil {
				return "", err
			}
			cfg.ExposedPorts[port] = struct{}{}
			b := network.PortBinding{HostPort: fmt.Sprint(p.External)}
			if p.HostIP != "" {
				// Docker would drop a host name and publish on every address.
				ip, err := parseAddr(p.HostIP)
				if err != nil {
					return "", fmt.Errorf("creating container %s: the host address %q of port %d is not an IP address", spec.Name, p.HostIP, p.External)
				}
				b.HostIP = ip
			}
			host.PortBindings[port] = append(host.PortBindings[port], b)
		}
	}
	for name, target := range spec.Volumes {
		host.Mounts = append(host.Mounts, mount.Mount{Type: mount.TypeVolume, Source: name, Target: target})
	}
	var netCfg *network.NetworkingConfig
	if spec.Network != "" {
		host.NetworkMode = container.NetworkMode(spec.Network)
		netCfg = &network.NetworkingConfig{EndpointsConfig: map[string]*network.EndpointSettings{spec.Network: {Aliases: spec.Aliases}}}
	}
	res, err := cli.ContainerCreate(ctx, client.ContainerCreateOptions{Name: spec.Name, Config: cfg, HostConfig: host, NetworkingConfig: netCfg})
	if err != nil {
		return "", fmt.Errorf("creating container %s: %w", spec.Name, err)
	}
	if len(spec.Files) > 0 {
		if err := e.CopyFiles(ctx, res.ID, "/", spec.Files); err != nil {
			_ = e.Remove(ctx, res.ID)
			return "", err
		}
	}
	return res.ID, nil
}

// Start starts a container.
func (e *Engine) Start(ctx context.Context, id string) error {
	cli, err := e.client(ctx)
	if err != nil {
		return err
	}
	if IsService(id) {
		return e.startService(ctx, cli, id)
	}
	_, err = cli.ContainerStart(ctx, id, client.ContainerStartOptions{})
	return err
}

// Stop stops a container gracefully, killing it after timeout.
func (e *Engine) Stop(ctx context.Context, id string, timeout time.Duration) error {
	cli, err := e.client(ctx)
	if err != nil {
		return err
	}
	if IsService(id) {
		return e.stopService(ctx, cli, id, timeout)
	}
	secs := int(timeout / time.Second)
	_, err = cli.ContainerStop(ctx, id, client.ContainerStopOptions{Timeout: &secs})
	if IsNotFound(err) {
		return nil
	}
	return err
}

// Remove removes a container, stopping it if it runs.
func (e *Engine) Remove(ctx context.Context, id string) error {
	cli, err := e.client(ctx)
	if err != nil {
		return err
	}
	if IsService(id) {
		return e.removeService(ctx, cli, id)
	}
	_, err = cli.ContainerRemove(ctx, id, client.ContainerRemoveOptions{Force: true, RemoveVolumes: true})
	if IsNotFound(err) {
		return nil
	}
	return err
}

// Signal sends a signal to a container's main process.
func (e *Engine) Signal(ctx context.Context, id, signal string) error {
	cli, err := e.client(ctx)
	if err != nil {
		return err
	}
	_, err = cli.ContainerKill(ctx, id, client.ContainerKillOptions{Signal: signal})
	return err
}

// Processes lists a container's processes as the daemon's ps shows them: the command lines.
func (e *Engine) Processes(ctx context.Context, id string) ([]string, error) {
	cli, err := e.client(ctx)
	if err != nil {
		return nil, err
	}
	res, err := cli.ContainerTop(ctx, id, client.ContainerTopOptions{})
	if err != nil {
		return nil, err
	}
	col := len(res.Titles) - 1
	for i, t := range res.Titles {
		if t == "CMD" || t == "COMMAND" {
			col = i
		}
	}
	var out []string
	for _, p := range res.Processes {
		if col >= 0 && col < len(p) {
			out = append(out, p[col])
		}
	}
	return out, nil
}

// Logs returns the last lines of a container's output.
func (e *Engine) Logs(ctx context.Context, id string, tail int) (string, error) {
	if IsService(id) {
		cli, err := e.client(ctx)
		if err != nil {
			return "", err
		}
		return e.serviceLogs(ctx, cli, id, tail)
	}
	return e.logs(ctx, id, client.ContainerLogsOptions{ShowStdout: true, ShowStderr: true, Tail: fmt.Sprint(tail)})
}

// LogsSince returns output written since a time, for watching a reload.
func (e *Engine) LogsSince(ctx context.Context, id string, since time.Time) (string, error) {
	return e.logs(ctx, id, client.ContainerLogsOptions{ShowStdout: true, ShowStderr: true, Since: fmt.Sprintf("%d.%09d", since.Unix(), since.Nanosecond())})
}

func (e *Engine) logs(ctx context.Context, id string, opts client.ContainerLogsOptions) (string, error) {
	cli, err := e.client(ctx)
	if err != nil {
		return "", err
	}
	rc, err := cli.ContainerLogs(ctx, id, opts)
	if err != nil {
		return "", err
	}
	defer rc.Close()
	raw, err := io.ReadAll(io.LimitReader(rc, 1<<20))
	if err != nil {
		return "", err
	}
	return demux(raw), nil
}

// demux strips the stream headers of a non-TTY container's log stream.
func demux(raw []byte) string {
	var out bytes.Buffer
	for len(raw) >= 8 && (raw[0] == 0 || raw[0] == 1 || raw[0] == 2) && raw[1] == 0 && raw[2] == 0 && raw[3] == 0 {
		n := int(binary.BigEndian.Uint32(raw[4:8]))
		raw = raw[8:]
		if n > len(raw) {
			n = len(raw)
		}
		out.Write(raw[:n])
		raw = raw[n:]
	}
	out.Write(raw)
	return out.String()
}

// ExecOutputLimit bounds what Exec reads of a command's output (with
// Docker's framing): a router's metrics for hundreds of servers run to a few
// MiB.
const ExecOutputLimit = 64 << 20

// Exec runs a command in a running container and returns its exit code and output.
func (e *Engine) Exec(ctx context.Context, id string, cmd []string) (int, string, error) {
	cli, err := e.client(ctx)
	if err != nil {
		return 0, "", err
	}
	created, err := cli.ExecCreate(ctx, id, client.ExecCreateOptions{Cmd: cmd, AttachStdout: true, AttachStderr: true})
	if err != nil {
		return 0, "", err
	}
	att, err := cli.ExecAttach(ctx, created.ID, client.ExecAttachOptions{})
	if err != nil {
		return 0, "", err
	}
	raw, _ := io.ReadAll(io.LimitReader(att.Reader, ExecOutputLimit))
	att.Close()
	// The output ends as the command exits; the daemon records the exit
	// a moment later. Ask again soon, then every 20ms, for up to 2s.
	wait, waited := time.Millisecond, time.Duration(0)
	for waited < 2*time.Second {
		st, err := cli.ExecInspect(ctx, created.ID, client.ExecInspectOptions{})
		if err != nil {
			return 0, "", err
		}
		if !st.Running {
			return st.ExitCode, demux(raw), nil
		}
		time.Sleep(wait)
		waited += wait
		wait = min(2*wait, 20*time.Millisecond)
	}
	return 0, demux(raw), fmt.Errorf("the command %v in %s did not finish", cmd, id)
}

// ExecStream is a command running in a container with its standard input
// open: what is written to In reaches the command, Out reads its stdout and
// stderr as one stream, and Close ends both (the command sees its input end).
type ExecStream struct {
	In    io.Writer
	Out   *bufio.Reader
	close func()
	ended chan struct{}
}

// Ended says whether the command's output has ended (it exited, or the
// container stopped): nothing written to it will be answered.
func (s *ExecStream) Ended() bool {
	select {
	case <-s.ended:
		return true
	default:
		return false
	}
}

// Close hangs up: the command's input ends and Out returns an error.
func (s *ExecStream) Close() { s.close() }

// ExecStream starts a command in a running container and keeps its streams
// open, independently of ctx once started, until Close.
func (e *Engine) ExecStream(ctx context.Context, id string, cmd []string) (*ExecStream, error) {
	cli, err := e.client(ctx)
	if err != nil {
		return nil, err
	}
	created, err := cli.ExecCreate(ctx, id, client.ExecCreateOptions{Cmd: cmd, AttachStdin: true, AttachStdout: true, AttachStderr: true})
	if err != nil {
		return nil, err
	}
	att, err := cli.ExecAttach(ctx, created.ID, client.ExecAttachOptions{})
	if err != nil {
		return nil, err
	}
	pr, pw := io.Pipe()
	ended := make(chan struct{})
	go func() {
		// stdout and stderr as one stream, as Exec returns them; a nil
		// error means the command's output ended.
		_, err := stdcopy.StdCopy(pw, pw, att.Reader)
		close(ended)
		pw.CloseWithError(err)
	}()
	return &ExecStream{In: att.Conn, Out: bufio.NewReader(pr), close: func() { att.Close(); pr.Close() }, ended: ended}, nil
}

// CopyFiles writes files under dir in a container (created or running).
func (e *Engine) CopyFiles(ctx context.Context, id, dir string, files []File) error {
	cli, err := e.client(ctx)
	if err != nil {
		return err
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	now := time.Now()
	for _, f := range files {
		name := strings.TrimPrefix(path.Clean("/"+f.Path), "/")
		mode := f.Mode
		if mode == 0 {
			mode = 0o644
		}
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: mode, Size: int64(len(f.Content)), ModTime: now, Typeflag: tar.TypeReg}); err != nil {
			return err
		}
		if _, err := tw.Write(f.Content); err != nil {
			return err
		}
	}
	if err := tw.Close(); err != nil {
		return err
	}
	_, err = cli.CopyToContainer(ctx, id, client.CopyToContainerOptions{DestinationPath: dir, Content: &buf})
	if err != nil {
		return fmt.Errorf("copying files into container %s: %w", id, err)
	}
	return nil
}

// ReadDir returns the regular files directly under dir in a container, by name.
// A missing directory is an empty result.
func (e *Engine) ReadDir(ctx context.Context, id, dir string) (map[string][]byte, error) {
	cli, err := e.client(ctx)
	if err != nil {
		return nil, err
	}
	res, err := cli.CopyFromContainer(ctx, id, client.CopyFromContainerOptions{SourcePath: dir})
	if err != nil {
		if IsNotFound(err) && isMissingPath(err) {
			return map[string][]byte{}, nil
		}
		return nil, err
	}
	defer res.Content.Close()
	out := map[string][]byte{}
	tr := tar.NewReader(res.Content)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, err
		}
		if h.Typeflag != tar.TypeReg {
			continue
		}
		parts := strings.Split(strings.Trim(h.Name, "/"), "/")
		if len(parts) != 2 {
			continue // the directory itself is the first component
		}
		data, err := io.ReadAll(io.LimitReader(tr, 4<<20))
		if err != nil {
			return nil, err
		}
		out[parts[1]] = data
	}
	return out, nil
}

// isMissingPath tells a missing path in a container from a missing
// container, both of which the archive API answers with 404: the daemon
// says "Could not find the file … in container …" for the path and "No
// such container" for the container (older clients replaced both with
// "No such container:path", taken as before for a missing path).
func isMissingPath(err error) bool {
	msg := err.Error()
	return strings.Contains(msg, "Could not find the file") || strings.Contains(msg, "container:path")
}

// EnsureImage pulls an image unless the daemon has it already.
func (e *Engine) EnsureImage(ctx context.Context, ref, registryAuth string) error {
	cli, err := e.client(ctx)
	if err != nil {
		return err
	}
	if res, err := cli.ImageInspect(ctx, ref); err == nil {
		e.archMu.Lock()
		if e.arch == "" && res.Architecture != "" {
			e.arch = res.Architecture // spares an Info call: containers run the image's architecture
		}
		e.archMu.Unlock()
		return nil
	} else if !IsNotFound(err) {
		return fmt.Errorf("inspecting image %s: %w", ref, err)
	}
	resp, err := cli.ImagePull(ctx, ref, client.ImagePullOptions{RegistryAuth: registryAuth})
	if err != nil {
		return fmt.Errorf("pulling %s: %w", ref, err)
	}
	defer resp.Close()
	if err := resp.Wait(ctx); err != nil {
		return fmt.Errorf("pulling %s: %w", ref, err)
	}
	return nil
}

// EnsureNetwork creates a bridge network unless it exists; it reports whether it created it.
func (e *Engine) EnsureNetwork(ctx context.Context, name string, labels map[string]string) (bool, error) {
	cli, err := e.client(ctx)
	if err != nil {
		return false, err
	}
	if _, err := cli.NetworkInspect(ctx, name, client.NetworkInspectOptions{}); err == nil {
		return false, nil
	} else if !IsNotFound(err) {
		return false, err
	}
	if _, err := cli.NetworkCreate(ctx, name, client.NetworkCreateOptions{Driver: "bridge", Labels: labels}); err != nil {
		return false, fmt.Errorf("creating network %s: %w", name, err)
	}
	return true, nil
}

// NetworkLabels returns a network's labels, or found=false.
func (e *Engine) NetworkLabels(ctx context.Context, name string) (map[string]string, bool, error) {
	cli, err := e.client(ctx)
	if err != nil {
		return nil, false, err
	}
	res, err := cli.NetworkInspect(ctx, name, client.NetworkInspectOptions{})
	if IsNotFound(err) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	return res.Network.Labels, true, nil
}

// RemoveNetwork removes a network; a missing one is no error.
func (e *Engine) RemoveNetwork(ctx context.Context, name string) error {
	cli, err := e.client(ctx)
	if err != nil {
		return err
	}
	_, err = cli.NetworkRemove(ctx, name, client.NetworkRemoveOptions{})
	if IsNotFound(err) {
		return nil
	}
	return err
}

// EnsureVolume creates a named volume unless it exists.
func (e *Engine) EnsureVolume(ctx context.Context, name string, labels map[string]string) error {
	cli, err := e.client(ctx)
	if err != nil {
		return err
	}
	_, err = cli.VolumeCreate(ctx, client.VolumeCreateOptions{Name: name, Labels: labels})
	return err
}

// RemoveVolume removes a named volume; a missing one is no error.
func (e *Engine) RemoveVolume(ctx context.Context, name string) error {
	cli, err := e.client(ctx)
	if err != nil {
		return err
	}
	_, err = cli.VolumeRemove(ctx, name, client.VolumeRemoveOptions{Force: true})
	if IsNotFound(err) {
		return nil
	}
	return err
}

func parseAddr(s string) (netip.Addr, error) { return netip.ParseAddr(s) }

// ConnectNetwork attaches a container to a network; being attached already is no error.
func (e *Engine) ConnectNetwork(ctx context.Context, networkName, id string) error {
	cli, err := e.client(ctx)
	if err != nil {
		return err
	}
	_, err = cli.NetworkConnect(ctx, networkName, client.NetworkConnectOptions{Container: id})
	if err != nil && strings.Contains(err.Error(), "already exists") {
		return nil
	}
	return err
}

// DisconnectNetwork detaches a container from a network; not being attached is no error.
func (e *Engine) DisconnectNetwork(ctx context.Context, networkName, id string) error {
	cli, err := e.client(ctx)
	if err != nil {
		return err
	}
	_, err = cli.NetworkDisconnect(ctx, networkName, client.NetworkDisconnectOptions{Container: id, Force: true})
	if err != nil && (IsNotFound(err) || strings.Contains(err.Error(), "is not connected")) {
		return nil
	}
	return err
}

// Architecture is the daemon's CPU architecture, such as x86_64.
func (e *Engine) Architecture(ctx context.Context) (string, error) {
	e.archMu.Lock()
	defer e.archMu.Unlock()
	if e.arch != "" {
		return e.arch, nil
	}
	cli, err := e.client(ctx)
	if err != nil {
		return "", err
	}
	res, err := cli.Info(ctx, client.InfoOptions{})
	if err != nil {
		return "", err
	}
	e.arch = res.Info.Architecture
	return e.arch, nil
}

// DaemonTime is the daemon's own clock now, from the Engine's system info:
// the clock its log timestamps come from, which need not be this machine's.
func (e *Engine) DaemonTime(ctx context.Context) (time.Time, error) {
	cli, err := e.client(ctx)
	if err != nil {
		return time.Time{}, err
	}
	res, err := cli.Info(ctx, client.InfoOptions{})
	if err != nil {
		return time.Time{}, err
	}
	t, err := time.Parse(time.RFC3339Nano, res.Info.SystemTime)
	if err != nil {
		return time.Time{}, fmt.Errorf("the Docker daemon's system time %q: %w", res.Info.SystemTime, err)
	}
	return t, nil
}

// Wait blocks until a container stops and returns its exit code.
func (e *Engine) Wait(ctx context.Context, id string) (int, error) {
	if IsService(id) {
		code, _, _, err := e.jobResult(ctx, id, true)
		return code, err
	}
	cli, err := e.client(ctx)
	if err != nil {
		return 0, err
	}
	res := cli.ContainerWait(ctx, id, client.ContainerWaitOptions{Condition: container.WaitConditionNotRunning})
	select {
	case r := <-res.Result:
		if r.Error != nil && r.Error.Message != "" {
			return int(r.StatusCode), fmt.Errorf("waiting for %s: %s", id, r.Error.Message)
		}
		return int(r.StatusCode), nil
	case err := <-res.Error:
		return 0, err
	case <-ctx.Done():
		return 0, ctx.Err()
	}
}

// ExitCode returns a stopped container's exit code and when it started and finished.
func (e *Engine) ExitCode(ctx context.Context, id string) (int, time.Time, time.Time, error) {
	if IsService(id) {
		return e.jobResult(ctx, id, false)
	}
	cli, err := e.client(ctx)
	if err != nil {
		return 0, time.Time{}, time.Time{}, err
	}
	res, err := cli.ContainerInspect(ctx, id, client.ContainerInspectOptions{})
	if err != nil {
		return 0, time.Time{}, time.Time{}, err
	}
	st := res.Container.State
	started, _ := time.Parse(time.RFC3339Nano, st.StartedAt)
	finished, _ := time.Parse(time.RFC3339Nano, st.FinishedAt)
	return st.ExitCode, started, finished, nil
}
