package router

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/releasekit/terraform-provider-release/internal/failpoint"
)

// Reload tells HAProxy's master to load the configuration again and waits
// until the new worker serves and the old ones have finished. Every error
// once the signal was sent (or may have been) is a *ReloadUnconfirmedError,
// but a *ReloadError when HAProxy said it refused the configuration.
func (c *Controller) Reload(ctx context.Context, routerID string) error {
	w, err := c.watchReload(ctx, routerID)
	if err != nil {
		return err
	}
	return c.signalAndConfirm(ctx, routerID, w)
}

// reloadWatch is where a reload's confirmation will be found in the logs.
type reloadWatch struct {
	// since is the daemon's time before the signal: the logs are stamped by
	// the daemon's clock, which may differ from ours by any amount.
	since time.Time
	// earlier counts the reloads already logged since then (another
	// environment's, just before): only a later one is ours.
	earlier int
	// loadedOnly confirms the reload once HAProxy loaded the new
	// configuration, without waiting for the old workers: nothing they may
	// still route to is taken away (see OldWorkersMatter).
	loadedOnly bool
}

func (c *Controller) watchReload(ctx context.Context, routerID string) (reloadWatch, error) {
	since, err := c.Docker.DaemonTime(ctx)
	if err != nil {
		return reloadWatch{}, fmt.Errorf("reading the Docker daemon's clock: %w", err)
	}
	prior, err := c.Docker.LogsSince(ctx, routerID, since)
	if err != nil {
		return reloadWatch{}, err
	}
	return reloadWatch{since: since, earlier: strings.Count(prior, "Reloading HAProxy")}, nil
}

// signalAndConfirm sends the reload signal and waits for HAProxy to say it
// loaded the configuration, then for the old workers to finish.
func (c *Controller) signalAndConfirm(ctx context.Context, routerID string, w reloadWatch) error {
	poll := c.Poll
	if poll <= 0 {
		poll = 25 * time.Millisecond
	}
	drain := c.DrainTimeout
	if drain <= 0 {
		drain = 30 * time.Second
	}
	clk := c.clock()
	// Readers of the counters read them right before: the old workers'
	// counts, up to what they answer after the signal.
	c.beforeReload(ctx, routerID)
	if err := c.Docker.Signal(ctx, routerID, "SIGUSR2"); err != nil {
		// The daemon may have delivered it before the answer was lost.
		return &ReloadUnconfirmedError{Err: fmt.Errorf("signalling the router to reload: %w", err)}
	}
	failpoint.Hit(failpoint.ReloadSent)
	unconfirmed := func(err error) error { return &ReloadUnconfirmedError{Err: err} }
	deadline := clk.Now().Add(drain)
	loaded := false
	for clk.Now().Before(deadline) {
		logs, err := c.Docker.LogsSince(ctx, routerID, w.since)
		if err != nil {
			return unconfirmed(err)
		}
		// Only what follows our own reload counts.
		if i := strings.LastIndex(logs, "Reloading HAProxy"); i >= 0 && strings.Count(logs, "Reloading HAProxy") > w.earlier {
			logs = logs[i:]
			switch {
			case strings.Contains(logs, "Loading failure"):
				return &ReloadError{Output: logs}
			case strings.Contains(logs, "Loading success"):
				loaded = true
			}
		}
		if loaded && w.loadedOnly {
			return nil
		}
		if loaded {
			procs, err := c.Docker.Processes(ctx, routerID)
			if err != nil {
				return unconfirmed(fmt.Errorf("the router loaded the new configuration; waiting for its old workers: %w", err))
			}
			if countHAProxy(procs) <= 2 { // the master and one worker: old workers are gone
				return nil
			}
		}
		if err := clk.Sleep(ctx, poll); err != nil {
			if loaded {
				err = fmt.Errorf("the router loaded the new configuration; waiting for its old workers: %w", err)
			}
			return unconfirmed(err)
		}
	}
	if !loaded {
		return unconfirmed(fmt.Errorf("the router did not confirm the reload within %s", drain))
	}
	return nil // old workers are past their drain time; hard-stop-after ends them
}

func countHAProxy(procs []string) int {
	n := 0
	for _, p := range procs {
		if strings.Contains(p, "haproxy") {
			n++
		}
	}
	return n
}
