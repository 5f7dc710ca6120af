package rollout

import (
	"context"
	"fmt"
	"time"

	"github.com/releasekit/terraform-provider-release/internal/analysis"
	"github.com/releasekit/terraform-provider-release/internal/canary"
	"github.com/releasekit/terraform-provider-release/internal/docker"
	"github.com/releasekit/terraform-provider-release/internal/router"
)

// Host is the Docker side of a rollout.
type Host interface {
	List(ctx context.Context, labels map[string]string) ([]docker.Container, error)
	Inspect(ctx context.Context, id string) (docker.Container, error)
	Create(ctx context.Context, spec docker.ContainerSpec) (string, error)
	Start(ctx context.Context, id string) error
	Stop(ctx context.Context, id string, timeout time.Duration) error
	Remove(ctx context.Context, id string) error
	Logs(ctx context.Context, id string, tail int) (string, error)
	// Exec runs a command in a running container: the health gate's probe.
	Exec(ctx context.Context, id string, cmd []string) (int, string, error)
	EnsureImage(ctx context.Context, ref, registryAuth string) error
	EnsureNetwork(ctx context.Context, name string, labels map[string]string) (bool, error)
	ConnectNetwork(ctx context.Context, network, containerID string) error
	DisconnectNetwork(ctx context.Context, network, containerID string) error
	RemoveNetwork(ctx context.Context, name string) error
	Architecture(ctx context.Context) (string, error)
}

// overlayHost is a Host that can create an attachable overlay network for
// Swarm services (docker.Engine can).
type overlayHost interface {
	EnsureOverlay(ctx context.Context, name string, labels map[string]string) (bool, error)
}

// Routes is the router side of a rollout.
type Routes interface {
	Files(ctx context.Context, routerID string) (map[string][]byte, error)
	Apply(ctx context.Context, routerID string, files map[string][]byte) error
	// WaitReady waits until the router itself reports the named servers of
	// a backend UP after a check of its own passed.
	WaitReady(ctx context.Context, routerID string, metricsPort int, backend string, servers []string, timeout time.Duration) error
	// LiveServers is what the router's running worker serves in a backend.
	LiveServers(ctx context.Context, routerID string, metricsPort int, backend string) (map[string]router.ServerState, error)
}

// knownApplier is a Routes that can skip re-reading a file whose previous
// content the caller already holds (router.Controller does).
type knownApplier interface {
	ApplyKnown(ctx context.Context, routerID string, files, previous map[string][]byte) error
}

// routerProber is a Routes that can run the health probe from the router
// against a container's address (router.Controller does): the gate then
// checks a new container from where the router will reach it, without an
// exec in the container.
type routerProber interface {
	ProbeFrom(ctx context.Context, routerID, addr, path string, timeout time.Duration) (int, string, error)
}

// MetricsSource opens what samples a canary: the router's counters, and
// Prometheus when the policy names one.
type MetricsSource interface {
	Open(ctx context.Context, p canary.Policy, t canary.Target, r RouterRef) (CanaryMetrics, error)
}

// CanaryMetrics samples a running canary.
type CanaryMetrics interface {
	// Begin is called once traffic first reaches the canary: counts start there.
	Begin(ctx context.Context) error
	// Sample returns the counts since Begin.
	Sample(ctx context.Context) (analysis.Sample, error)
}

// requestLogger is a CanaryMetrics that counts the requests the canary's
// route logs (canary.Collector with a tally): the route names its address.
type requestLogger interface{ RequestLog() string }

// requestLogOf is where the canary's route logs its requests, "" for nowhere.
func requestLogOf(m CanaryMetrics) string {
	if l, ok := m.(requestLogger); ok {
		return l.RequestLog()
	}
	return ""
}

// closeMetrics ends what a CanaryMetrics keeps open (the tally in the
// router), when it keeps anything.
func closeMetrics(ctx context.Context, m CanaryMetrics) {
	if c, ok := m.(interface{ Close(context.Context) error }); ok {
		_ = c.Close(context.WithoutCancel(ctx))
	}
}

// countsCheck shows a look's request counts and where they came from: a
// row that informs and changes no verdict. Counts that may fall short of
// every request (analysis.Sample.CountsNote) are inconclusive, and say why.
func countsCheck(s analysis.Sample) []analysis.Check {
	c := analysis.Check{Name: "request counts", Verdict: analysis.Pass,
		Canary:   fmt.Sprintf("%d requests, %d 5xx", s.Canary.Requests, s.Canary.Errors),
		Baseline: fmt.Sprintf("%d requests, %d 5xx", s.Baseline.Requests, s.Baseline.Errors),
		Reason:   "every request counted"}
	if s.CountsNote != "" {
		c.Verdict, c.Reason = analysis.Inconclusive, s.CountsNote
	}
	return []analysis.Check{c}
}
