package rollout

import (
	"context"
	"errors"
	"sort"
	"sync"
	"time"

	"github.com/releasekit/terraform-provider-release/internal/docker"
	"github.com/releasekit/terraform-provider-release/internal/failpoint"
	"github.com/releasekit/terraform-provider-release/internal/naming"
)

// retire stops every revision but the serving one, removes baselines and
// revisions that never served (they are no rollback target) and removes
// the oldest stopped revisions beyond the history limit.
func (d *Deployer) retire(ctx context.Context, spec Spec, before Status, containers []docker.Container, serving int) error {
	byRev := map[int][]docker.Container{}
	var remove []string
	seen := map[string]bool{}
	for _, c := range containers {
		if seen[c.ID] {
			continue // a resumed canary's baseline is both observed and carried
		}
		seen[c.ID] = true
		rev := atoi(c.Labels[naming.LabelRevision])
		switch {
		case naming.TrackOf(c.Labels) == naming.TrackBaseline:
			d.log("removing the baseline", "container", c.Name)
			remove = append(remove, c.ID)
		case rev != serving && !before.Served(rev):
			// Never had all traffic (a canary an abort left, containers an
			// interrupted apply created): no rollback target.
			d.log("removing a revision that never served", "revision", rev, "container", c.Name)
			remove = append(remove, c.ID)
		case rev != serving:
			byRev[rev] = append(byRev[rev], c)
		}
	}
	revs := make([]int, 0, len(byRev))
	for rev := range byRev {
		revs = append(revs, rev)
	}
	sort.Sort(sort.Reverse(sort.IntSlice(revs)))
	var stop []string
	for i, rev := range revs {
		keep := i < spec.HistoryLimit
		for _, c := range byRev[rev] {
			switch {
			case !keep:
				d.log("removing a revision beyond the history limit", "revision", rev, "container", c.Name)
				remove = append(remove, c.ID)
			case c.Running():
				d.log("stopping the previous revision", "revision", rev, "container", c.Name)
				stop = append(stop, c.ID)
			}
		}
	}
	// Containers stop side by side, each finishing its own requests, while
	// what goes is removed: neither waits for the other.
	var removeErr error
	removed := make(chan struct{})
	go func() {
		defer close(removed)
		removeErr = errors.Join(d.stopAndRemove(ctx, spec.StopTimeout, remove), d.pruneRecords(ctx, before.records))
	}()
	stopErr := parallel(stop, func(id string) error { return d.Host.Stop(ctx, id, spec.StopTimeout) })
	failpoint.Hit(failpoint.Retiring)
	<-removed
	return errors.Join(stopErr, removeErr)
}

// stopAndRemove stops containers side by side, each finishing its requests
// first, then removes them. Every error is returned: a message may only
// say "removed" when Docker said so.
func (d *Deployer) stopAndRemove(ctx context.Context, timeout time.Duration, ids []string) error {
	stopErr := parallel(ids, func(id string) error {
		if err := d.Host.Stop(ctx, id, timeout); err != nil && !docker.IsNotFound(err) {
			return err
		}
		return nil
	})
	failpoint.Hit(failpoint.AbortRemoving)
	removeErr := parallel(ids, func(id string) error {
		if err := d.Host.Remove(ctx, id); err != nil && !docker.IsNotFound(err) {
			return err
		}
		return nil
	})
	return errors.Join(stopErr, removeErr)
}

// removeContainers stops and removes a canary's containers, even when the
// apply was cancelled: none may be left behind.
func (d *Deployer) removeContainers(ctx context.Context, spec Spec, cs []docker.Container) error {
	ids := make([]string, 0, len(cs))
	for _, c := range cs {
		ids = append(ids, c.ID)
	}
	return d.stopAndRemove(context.WithoutCancel(ctx), spec.StopTimeout, ids)
}

// cleanup removes containers that never served.
func (d *Deployer) cleanup(ids []string) error {
	var present []string
	for _, id := range ids {
		if id != "" {
			present = append(present, id)
		}
	}
	return parallel(present, func(id string) error {
		if err := d.Host.Remove(context.Background(), id); err != nil && !docker.IsNotFound(err) {
			return err
		}
		return nil
	})
}

// parallel runs fn for every id at once and joins the errors.
func parallel(ids []string, fn func(id string) error) error {
	errs := make([]error, len(ids))
	var wg sync.WaitGroup
	for i, id := range ids {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = fn(id)
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}
