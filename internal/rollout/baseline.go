package rollout

import (
	"context"
	"errors"
	"strings"

	"github.com/releasekit/terraform-provider-release/internal/docker"
	"github.com/releasekit/terraform-provider-release/internal/naming"
)

// startBaseline starts fresh containers of the stable revision, configured
// as the stable ones are, so the canary is compared with containers of its
// own age.
func (d *Deployer) startBaseline(ctx context.Context, spec Spec, st canaryState) ([]docker.Container, error) {
	ids, err := d.createReplicas(ctx, spec, st.stableRev, naming.TrackBaseline, "", nil, st.stable)
	if err != nil {
		return nil, err
	}
	d.log("starting the baseline", "revision", st.stableRev)
	err = parallel(ids, func(id string) error { return d.Host.Start(ctx, id) })
	var healthy []docker.Container
	if err == nil {
		healthy, err = d.waitHealthy(ctx, spec, ids)
	}
	if err != nil {
		return nil, errors.Join(err, d.cleanup(ids))
	}
	return healthy, nil
}

// baselineSpec is the spec of a stable container, read from the container itself.
func baselineSpec(spec Spec, c docker.Container) Spec {
	s := spec
	s.Image = c.Labels[naming.LabelImage]
	s.Digest = c.Labels[naming.LabelDigest]
	s.Port = portOf(c, spec)
	s.Command = c.Cmd
	s.Env = map[string]string{}
	for _, kv := range c.Env {
		k, v, _ := strings.Cut(kv, "=")
		switch k {
		case "RELEASE_ENVIRONMENT", "RELEASE_SERVICE", "RELEASE_REVISION":
			continue
		}
		s.Env[k] = v
	}
	return s
}
