package rollout

import (
	"context"
	"errors"
	"time"

	"github.com/releasekit/terraform-provider-release/internal/docker"
	"github.com/releasekit/terraform-provider-release/internal/naming"
	"github.com/releasekit/terraform-provider-release/internal/router"
)

// Destroy removes an environment's route, containers and network. Other
// environments' routes and containers are not touched.
func (d *Deployer) Destroy(ctx context.Context, environment, service, routerID string, stopTimeout time.Duration) error {
	var errs []error
	if routerID != "" {
		files, err := d.Routes.Files(ctx, routerID)
		if err == nil && len(files[router.RouteFileName(environment, service)]) > 0 {
			// An empty file is an empty configuration: the listener closes.
			errs = append(errs, d.Routes.Apply(ctx, routerID, map[string][]byte{router.RouteFileName(environment, service): {}}))
		} else if err != nil && !docker.IsNotFound(err) {
			errs = append(errs, err)
		}
	}
	managed, err := ListManaged(ctx, d.Host)
	if err != nil {
		return err
	}
	for _, c := range managed {
		if c.Labels[naming.LabelEnvironment] == environment && c.Labels[naming.LabelService] == service && (naming.KindApp.Is(c.Labels) || naming.KindServed.Is(c.Labels) || naming.KindCommand.Is(c.Labels) || naming.KindJudgment.Is(c.Labels)) {
			if c.Running() {
				_ = d.Host.Stop(ctx, c.ID, stopTimeout)
			}
			errs = append(errs, d.Host.Remove(ctx, c.ID))
		}
	}
	// Its own network: a bridge, or an overlay on a swarm (both, when it moved).
	for _, network := range []string{naming.NetworkName(environment, service), naming.OverlayNetworkName(environment, service)} {
		if routerID != "" {
			errs = append(errs, d.Host.DisconnectNetwork(ctx, network, routerID))
		}
		errs = append(errs, d.Host.RemoveNetwork(ctx, network))
	}
	return errors.Join(errs...)
}
