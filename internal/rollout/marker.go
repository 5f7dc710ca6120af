package rollout

import (
	"context"
	"strconv"

	"github.com/releasekit/terraform-provider-release/internal/docker"
	"github.com/releasekit/terraform-provider-release/internal/naming"
)

// createMarker creates a record of kind for a revision of an environment's
// service: a container created from image and never started, whose labels
// (the common ones and extra) are the record. Docker labels cannot change,
// so a record that changes is a new container.
func createMarker(ctx context.Context, host Host, name, image string, kind naming.Kind, environment, service string, revision int, extra map[string]string) error {
	labels := map[string]string{
		naming.LabelManaged:     "true",
		naming.LabelKind:        string(kind),
		naming.LabelEnvironment: environment,
		naming.LabelService:     service,
		naming.LabelRevision:    strconv.Itoa(revision),
	}
	for k, v := range extra {
		labels[k] = v
	}
	_, err := host.Create(ctx, docker.ContainerSpec{Name: name, Image: image, Cmd: []string{string(kind)}, Labels: labels, NoRestart: true})
	return err
}
