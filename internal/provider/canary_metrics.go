package provider

import (
	"context"
	"fmt"

	"github.com/releasekit/terraform-provider-release/internal/canary"
	"github.com/releasekit/terraform-provider-release/internal/rollout"
	"github.com/releasekit/terraform-provider-release/internal/router"
)

// canaryMetricsSource opens what samples a canary: the router's per-server
// counters, read through the Docker API, and Prometheus when the policy
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
	c := &canary.Collector{Policy: p, Target: t, Router: func(ctx context.Context) (map[string]router.ServerCounts, error) {
		return s.data.routes.ScrapeServers(ctx, r.ContainerID, r.MetricsPort, backend)
	}}
	if p.Analysis.Prometheus != nil {
		prom, err := canary.NewPrometheus(*p.Analysis.Prometheus)
		if err != nil {
			return nil, err
		}
		c.Prometheus = prom
	}
	return c, nil
}
