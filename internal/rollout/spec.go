package rollout

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"sort"
	"time"

	"github.com/releasekit/terraform-provider-release/internal/docker"
	"github.com/releasekit/terraform-provider-release/internal/naming"
	"github.com/releasekit/terraform-provider-release/internal/router"
)

// Spec is what an environment should run.
type Spec struct {
	Environment  string
	Service      string
	Image        string // repository@sha256:…
	Digest       string
	Replicas     int
	Port         int
	Env          map[string]string
	Command      []string
	Health       Health
	Router       RouterRef
	HistoryLimit int
	// StopTimeout is how long a stopping container may finish its requests.
	StopTimeout time.Duration
	// SharedNetwork, when set, is a network the containers join instead of
	// one of the environment's own (Docker's default address pools run out
	// at about 30 networks per host).
	SharedNetwork string
	// Canary, when set, releases a new revision as a canary whenever a
	// stable revision serves (a first release is a hard switch).
	Canary *CanaryRun
}

// Health is the gate a new container passes before it gets traffic.
type Health struct {
	Path             string
	Interval         time.Duration
	Timeout          time.Duration
	HealthyThreshold int
	// StartTimeout bounds the wait for a new container to become healthy.
	StartTimeout time.Duration
}

// RouterRef names the router an environment is served by.
type RouterRef struct {
	Name        string
	ContainerID string
	ListenPort  int
}

// Network is the network the containers run on, which the router joins.
func (s Spec) Network() string {
	if s.SharedNetwork != "" {
		return s.SharedNetwork
	}
	return naming.NetworkName(s.Environment, s.Service)
}

// ConfigHash identifies how containers are run, apart from their revision:
// containers with the same hash and digest can be reused for a rollback.
func (s Spec) ConfigHash() string {
	keys := make([]string, 0, len(s.Env))
	for k := range s.Env {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	env := make([][2]string, 0, len(keys))
	for _, k := range keys {
		env = append(env, [2]string{k, s.Env[k]})
	}
	b, _ := json.Marshal(struct {
		Image   string
		Port    int
		Env     [][2]string
		Command []string
		Health  Health
		Network string `json:",omitempty"`
	}{s.Image, s.Port, env, s.Command, s.Health, s.SharedNetwork})
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:8])
}

// Host is the Docker side of a rollout.
type Host interface {
	List(ctx context.Context, labels map[string]string) ([]docker.Container, error)
	Inspect(ctx context.Context, id string) (docker.Container, error)
	Create(ctx context.Context, spec docker.ContainerSpec) (string, error)
	Start(ctx context.Context, id string) error
	Stop(ctx context.Context, id string, timeout time.Duration) error
	Remove(ctx context.Context, id string) error
	Logs(ctx context.Context, id string, tail int) (string, error)
	EnsureImage(ctx context.Context, ref, registryAuth string) error
	EnsureNetwork(ctx context.Context, name string, labels map[string]string) (bool, error)
	ConnectNetwork(ctx context.Context, network, containerID string) error
	DisconnectNetwork(ctx context.Context, network, containerID string) error
	RemoveNetwork(ctx context.Context, name string) error
	Architecture(ctx context.Context) (string, error)
}

// Routes is the router side of a rollout.
type Routes interface {
	Files(ctx context.Context, routerID string) (map[string][]byte, error)
	Apply(ctx context.Context, routerID string, files map[string][]byte) error
}

// Clock lets tests drive time.
type Clock interface {
	Now() time.Time
	Sleep(ctx context.Context, d time.Duration) error
}

// RealClock is the wall clock.
type RealClock struct{}

func (RealClock) Now() time.Time { return time.Now() }

func (RealClock) Sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// routeFor renders the route that sends traffic to the given containers.
func routeFor(s Spec, containers []docker.Container) (string, []byte, error) {
	r := router.Route{
		Environment:   s.Environment,
		Service:       s.Service,
		ListenPort:    s.Router.ListenPort,
		HealthPath:    s.Health.Path,
		CheckInterval: s.Health.Interval,
	}
	for _, c := range containers {
		r.Servers = append(r.Servers, router.Server{
			Name:    naming.ServerName(naming.TrackStable, atoi(c.Labels[naming.LabelRevision]), atoi(c.Labels[naming.LabelReplica])),
			Address: c.IPs[s.Network()] + ":" + itoa(portOf(c, s)),
			Weight:  100,
			Track:   c.Labels[naming.LabelTrack],
		})
	}
	cfg, err := router.RenderRoute(r)
	return r.FileName(), cfg, err
}
