package rollout

import (
	"context"
	"errors"
	"sort"

	"github.com/releasekit/terraform-provider-release/internal/docker"
	"github.com/releasekit/terraform-provider-release/internal/naming"
)

// A revision counts as served (verified, history, a rollback target) only
// once it had all of the environment's traffic. Container labels cannot
// change after creation, so the record is a container of its own, created
// and never started (no process, no cost): its labels say which revision
// of which digest served. Docker creates names atomically, so writing a
// record twice is harmless.

// recordServed writes the record that rev served, from one of its containers.
func (d *Deployer) recordServed(ctx context.Context, spec Spec, rev int, c docker.Container) error {
	l := c.Labels
	err := createMarker(ctx, d.Host, naming.ServedRecordName(spec.Environment, spec.Service, rev), l[naming.LabelImage],
		naming.KindServed, spec.Environment, spec.Service, rev, map[string]string{
			naming.LabelImage:      l[naming.LabelImage],
			naming.LabelDigest:     l[naming.LabelDigest],
			naming.LabelDeployedAt: l[naming.LabelDeployedAt],
			naming.LabelRouter:     spec.Router.Name,
		})
	if err != nil && !docker.IsConflict(err) {
		return err
	}
	return nil
}

// servedRecords reads the records of an environment's service from a listing.
func servedRecords(environment, service string, managed []docker.Container) map[int]docker.Container {
	out := map[int]docker.Container{}
	for _, c := range managed {
		l := c.Labels
		if naming.KindServed.Is(l) && l[naming.LabelEnvironment] == environment && l[naming.LabelService] == service {
			out[atoi(l[naming.LabelRevision])] = c
		}
	}
	return out
}

// pruneRecords removes the records beyond the history kept.
func (d *Deployer) pruneRecords(ctx context.Context, records map[int]docker.Container) error {
	revs := make([]int, 0, len(records))
	for rev := range records {
		revs = append(revs, rev)
	}
	sort.Sort(sort.Reverse(sort.IntSlice(revs)))
	var errs []error
	for i, rev := range revs {
		if i > maxHistory {
			errs = append(errs, d.Host.Remove(ctx, records[rev].ID))
		}
	}
	return errors.Join(errs...)
}
