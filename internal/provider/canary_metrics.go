package provider

import (
	"context"
	"fmt"

	"github.com/releasekit/terraform-provider-release/internal/analysis"
	"github.com/releasekit/terraform-provider-release/internal/canary"
	"github.com/releasekit/terraform-provider-release/internal/rollout"
	"github.com/releasekit/terraform-provider-release/internal/router"
)

// canaryMetricsSource opens what samples a canary: the tally of the
// canary route's request log in the router (else the router's per-server
// counters), read through the Docker API, and Prometheus when the policy
// names one. The provider gives it to the deployer once.
type canaryMetricsSource struct{ data *providerData }

func (s canaryMetricsSource) Open(ctx context.Context, p canary.Policy, t canary.Target, r rollout.RouterRef) (rollout.CanaryMetrics, error) {
	arch, err := s.data.engine.Architecture(ctx)
	if err != nil {
		return nil, err
	}
	if err := s.data.routes.InstallProbe(ctx, r.ContainerID, arch); err != nil {
		return nil, fmt.Errorf("placing the metrics reader in the router: %w", err)
	}
	backend := router.BackendName(t.Environment, t.Service)
	c := &canary.Collector{Policy: p, Target: t, Router: func(ctx context.Context) (router.ServerScrape, error) {
		return s.data.routes.ScrapeWorker(ctx, r.ContainerID, r.MetricsPort, backend)
	}}
	// The canary's counts come from the route's request log, counted in the
	// router for as long as this provider process runs (a resumed canary
	// starts a new tally); without one, from the router's counters.
	if tally, err := s.data.routes.OpenTally(ctx, r.ContainerID, analysis.LatencyBounds); err == nil {
		c.Tally = tally
	} else {
		c.NoTally = "the request tally could not start: " + err.Error()
		// The counters, then, are read right before each reload this
		// provider makes too: only what old workers answer after it is lost.
		c.Stop = s.data.routes.BeforeReload(r.ContainerID, c.ScrapeNow)
	}
	if p.Analysis.Prometheus != nil {
		prom, err := canary.NewPrometheus(*p.Analysis.Prometheus)
		if err != nil {
			_ = c.Close(ctx)
			return nil, err
		}
		c.Prometheus = prom
	}
	return c, nil
}
