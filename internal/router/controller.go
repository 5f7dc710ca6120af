package router

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/releasekit/terraform-provider-release/internal/clock"
	"github.com/releasekit/terraform-provider-release/internal/docker"
)

// Container is what the controller needs of the router's container: files,
// a command, a signal and its output, all through the Docker API, so that it
// works over any Docker connection and needs no port of its own.
type Container interface {
	CopyFiles(ctx context.Context, id, dir string, files []docker.File) error
	ReadDir(ctx context.Context, id, dir string) (map[string][]byte, error)
	Exec(ctx context.Context, id string, cmd []string) (int, string, error)
	Signal(ctx context.Context, id, signal string) error
	Processes(ctx context.Context, id string) ([]string, error)
	LogsSince(ctx context.Context, id string, since time.Time) (string, error)
	// Architecture is the Docker host's, for the probe placed in the router.
	Architecture(ctx context.Context) (string, error)
}

// Controller changes a running router's configuration without dropping a
// connection: files are checked with `haproxy -c` first, then the master
// process is told to reload (SIGUSR2); it starts new workers on the same
// listening sockets and lets the old ones finish their requests.
type Controller struct {
	Docker Container
	// DrainTimeout bounds the wait for old workers after a reload.
	DrainTimeout time.Duration
	Poll         time.Duration
	// ReadyPoll is how often WaitReady reads the servers' states; 250ms when zero.
	ReadyPoll time.Duration
	// Clock times the wait for a reload; nil is the wall clock.
	Clock clock.Clock

	probeMu sync.Mutex
	probed  map[string]bool // routers this Controller placed the probe in
}

func (c *Controller) clock() clock.Clock {
	if c.Clock == nil {
		return clock.Real{}
	}
	return c.Clock
}

// Router-wide locks: environments applied in parallel share a router.
var (
	locksMu sync.Mutex
	locks   = map[string]*sync.Mutex{}
)

// Lock serialises changes to one router container.
func Lock(routerID string) func() {
	locksMu.Lock()
	l, ok := locks[routerID]
	if !ok {
		l = &sync.Mutex{}
		locks[routerID] = l
	}
	locksMu.Unlock()
	l.Lock()
	return l.Unlock
}

// ReloadError is a configuration the router refused; nothing was applied.
type ReloadError struct {
	Output string
}

func (e *ReloadError) Error() string {
	return "the router refused the configuration: " + strings.TrimSpace(e.Output)
}

// Files returns the configuration files in the router, by name.
func (c *Controller) Files(ctx context.Context, routerID string) (map[string][]byte, error) {
	return c.Docker.ReadDir(ctx, routerID, ConfigDir)
}

// Apply writes the given files (a nil content removes the file by emptying
// it), checks the whole configuration and reloads. If the check fails, the
// previous contents are put back and the router keeps serving as before.
//
// Changes to one router are serialised: environments applied in parallel
// each write their own file, but the check and reload cover all files.
func (c *Controller) Apply(ctx context.Context, routerID string, files map[string][]byte) error {
	unlock := Lock(routerID)
	defer unlock()
	before, err := c.Docker.ReadDir(ctx, routerID, ConfigDir)
	if err != nil {
		return fmt.Errorf("reading the router's configuration: %w", err)
	}
	return c.apply(ctx, routerID, files, before)
}

// ApplyKnown is Apply for a caller that already holds the previous contents
// of the files it changes (files only it writes), sparing one read.
func (c *Controller) ApplyKnown(ctx context.Context, routerID string, files, previous map[string][]byte) error {
	unlock := Lock(routerID)
	defer unlock()
	return c.apply(ctx, routerID, files, previous)
}

func (c *Controller) apply(ctx context.Context, routerID string, files, before map[string][]byte) error {
	var write []docker.File
	for name, content := range files {
		write = append(write, docker.File{Path: name, Content: content, Mode: 0o644})
	}
	if err := c.Docker.CopyFiles(ctx, routerID, ConfigDir, write); err != nil {
		return err
	}
	code, out, err := c.Docker.Exec(ctx, routerID, []string{"haproxy", "-c", "-q", "-f", ConfigDir})
	if err != nil || code != 0 {
		var restore []docker.File
		for name := range files {
			restore = append(restore, docker.File{Path: name, Content: before[name], Mode: 0o644})
		}
		if rerr := c.Docker.CopyFiles(ctx, routerID, ConfigDir, restore); rerr != nil {
			return errors.Join(&ReloadError{Output: out}, fmt.Errorf("restoring the previous configuration: %w", rerr))
		}
		if err != nil {
			return fmt.Errorf("checking the router configuration: %w", err)
		}
		return &ReloadError{Output: out}
	}
	return c.Reload(ctx, routerID)
}

// Reload tells HAProxy's master to load the configuration again and waits
// until the new worker serves and the old ones have finished.
func (c *Controller) Reload(ctx context.Context, routerID string) error {
	poll := c.Poll
	if poll <= 0 {
		poll = 25 * time.Millisecond
	}
	drain := c.DrainTimeout
	if drain <= 0 {
		drain = 30 * time.Second
	}
	clk := c.clock()
	// A second of slack for clock differences between here and the daemon.
	since := clk.Now().Add(-time.Second)
	// A reload just before ours (another environment's) may be in that window:
	// count the reloads already logged, so that only a later one is ours.
	prior, err := c.Docker.LogsSince(ctx, routerID, since)
	if err != nil {
		return err
	}
	earlier := strings.Count(prior, "Reloading HAProxy")
	if err := c.Docker.Signal(ctx, routerID, "SIGUSR2"); err != nil {
		return fmt.Errorf("signalling the router to reload: %w", err)
	}
	deadline := clk.Now().Add(drain)
	loaded := false
	for clk.Now().Before(deadline) {
		logs, err := c.Docker.LogsSince(ctx, routerID, since)
		if err != nil {
			return err
		}
		// Only what follows our own reload counts.
		if i := strings.LastIndex(logs, "Reloading HAProxy"); i >= 0 && strings.Count(logs, "Reloading HAProxy") > earlier {
			logs = logs[i:]
			switch {
			case strings.Contains(logs, "Loading failure"):
				return &ReloadError{Output: logs}
			case strings.Contains(logs, "Loading success"):
				loaded = true
			}
		}
		if loaded {
			procs, err := c.Docker.Processes(ctx, routerID)
			if err != nil {
				return err
			}
			if countHAProxy(procs) <= 2 { // the master and one worker: old workers are gone
				return nil
			}
		}
		if err := clk.Sleep(ctx, poll); err != nil {
			return err
		}
	}
	if !loaded {
		return fmt.Errorf("the router did not confirm the reload within %s", drain)
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
