package router

import (
	"context"
	"errors"
	"fmt"
	"path"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/releasekit/terraform-provider-release/internal/clock"
	"github.com/releasekit/terraform-provider-release/internal/docker"
	"github.com/releasekit/terraform-provider-release/internal/failpoint"
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
	// DaemonTime is the daemon's clock, which stamps the logs LogsSince filters.
	DaemonTime(ctx context.Context) (time.Time, error)
	// Architecture is the Docker host's, for the probe placed in the router.
	Architecture(ctx context.Context) (string, error)
}

// Controller changes a running router's configuration without dropping a
// connection: new files are written beside the live ones under a name
// HAProxy does not load, the whole new configuration is checked with
// `haproxy -c`, the files are renamed into place, then the master process is
// told to reload (SIGUSR2); it starts new workers on the same listening
// sockets and lets the old ones finish their requests.
type Controller struct {
	Docker Container
	// DrainTimeout bounds the wait for old workers after a reload.
	DrainTimeout time.Duration
	Poll         time.Duration
	// ReadyPoll is how often WaitReady reads the servers' states; 250ms when zero.
	ReadyPoll time.Duration
	// Clock times the waits for a reload and for servers to be ready; nil is the wall clock.
	Clock clock.Clock

	probeMu  sync.Mutex
	probed   map[string]bool         // routers known to have this provider's probe
	placing  map[string]*sync.Mutex  // held while the probe of a router is checked or placed
	arch     string                  // the Docker host's architecture, once read
	prepared map[string]bool         // router containers Prepare was called for
	sessions map[string]*sessionPool // probe sessions by router

	basesMu sync.Mutex
	bases   map[string][]byte // routers' base files as last read

	hooksMu     sync.Mutex
	reloadHooks map[string]map[int]func(context.Context) // by router, then by registration
	hookSeq     int
}

// BeforeReload registers fn to run right before each reload this
// Controller signals to the router (a canary whose counts come from the
// router's counters reads them then); remove ends it. Reloads by another
// process, or by a restart, run nothing.
func (c *Controller) BeforeReload(routerID string, fn func(ctx context.Context)) (remove func()) {
	c.hooksMu.Lock()
	defer c.hooksMu.Unlock()
	if c.reloadHooks == nil {
		c.reloadHooks = map[string]map[int]func(context.Context){}
	}
	if c.reloadHooks[routerID] == nil {
		c.reloadHooks[routerID] = map[int]func(context.Context){}
	}
	c.hookSeq++
	id := c.hookSeq
	c.reloadHooks[routerID][id] = fn
	return func() {
		c.hooksMu.Lock()
		defer c.hooksMu.Unlock()
		delete(c.reloadHooks[routerID], id)
	}
}

func (c *Controller) beforeReload(ctx context.Context, routerID string) {
	c.hooksMu.Lock()
	fns := make([]func(context.Context), 0, len(c.reloadHooks[routerID]))
	for _, fn := range c.reloadHooks[routerID] {
		fns = append(fns, fn)
	}
	c.hooksMu.Unlock()
	for _, fn := range fns {
		fn(ctx)
	}
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

// ReloadError is a configuration the router refused; the router runs the
// configuration it ran before, and its files say so.
type ReloadError struct {
	Output string
}

func (e *ReloadError) Error() string {
	return "the router refused the configuration: " + strings.TrimSpace(e.Output)
}

// ReloadUnconfirmedError is a failure once the new configuration may be
// live: the reload signal was sent (or may have been) and the router did not
// confirm the reload in time, or the context ended while it was awaited; or
// the answer to moving the checked files into place was lost. The new files
// are in place, or may be, and the router loads them on this reload or the
// next one. A caller must not remove anything the new configuration points
// at (its containers) on this error; the previous configuration's may be
// needed too, until the router confirms a reload.
type ReloadUnconfirmedError struct {
	Err error
}

func (e *ReloadUnconfirmedError) Error() string {
	return "the router's new configuration may be live, unconfirmed: " + e.Err.Error()
}

func (e *ReloadUnconfirmedError) Unwrap() error { return e.Err }

// stagePrefix marks a file that is written but not yet checked and in place.
// From a directory HAProxy loads only files ending in .cfg that are not
// hidden (its management guide, "-f <cfgdir>"; measured with 2.6), so no
// reload, ours or another's, loads a staged file.
const stagePrefix = ".next-"

// loadable says whether HAProxy loads a file of ConfigDir.
func loadable(name string) bool {
	return strings.HasSuffix(name, ".cfg") && !strings.HasPrefix(name, ".") && !strings.Contains(name, "/")
}

func stagedPath(name string) string { return path.Join(ConfigDir, stagePrefix+name) }

// Files returns the configuration files the router loads, by name (files
// staged by an apply that was interrupted are not among them).
func (c *Controller) Files(ctx context.Context, routerID string) (map[string][]byte, error) {
	files, err := c.readDir(ctx, routerID, ConfigDir)
	if err != nil {
		return nil, err
	}
	c.rememberBase(routerID, files[BaseFile])
	for name := range files {
		if !loadable(name) {
			delete(files, name)
		}
	}
	return files, nil
}

// Apply writes the given files (a nil content removes the file by emptying
// it), checks the whole configuration and reloads. The files are written
// under staging names and checked together with the live ones; only a
// configuration HAProxy accepted is renamed into place, so the live files
// are never unchecked, and a refused configuration (a *ReloadError) leaves
// them untouched.
//
// An error that is not a *ReloadUnconfirmedError came before the reload
// signal and before the new files were in place: the router runs and holds
// what it did before. After it, the router may run the new configuration.
//
// Changes to one router are serialised: environments applied in parallel
// each write their own file, but the check and reload cover all files.
func (c *Controller) Apply(ctx context.Context, routerID string, files map[string][]byte) error {
	unlock := Lock(routerID)
	defer unlock()
	return c.apply(ctx, routerID, files)
}

// ApplyKnown is Apply for a caller that holds the previous contents of the
// files it changes (read under the environment's lease, so no one else has
// changed them since). A change of servers the runtime API can apply then
// costs one exec (applyPlaced); any other change is applied as Apply does.
func (c *Controller) ApplyKnown(ctx context.Context, routerID string, files, previous map[string][]byte) error {
	unlock := Lock(routerID)
	defer unlock()
	if done, err := c.applyPlaced(ctx, routerID, files, previous); done {
		return err
	}
	return c.apply(ctx, routerID, files)
}

// rememberBase keeps the base file of a router as last read, or forgets it
// (nil) when this Controller changes it.
func (c *Controller) rememberBase(routerID string, base []byte) {
	c.basesMu.Lock()
	defer c.basesMu.Unlock()
	if c.bases == nil {
		c.bases = map[string][]byte{}
	}
	if base == nil {
		delete(c.bases, routerID)
		return
	}
	c.bases[routerID] = base
}

func (c *Controller) knownBase(routerID string) []byte {
	c.basesMu.Lock()
	defer c.basesMu.Unlock()
	return c.bases[routerID]
}

func (c *Controller) apply(ctx context.Context, routerID string, files map[string][]byte) error {
	for name := range files {
		if !loadable(name) {
			return fmt.Errorf("%q is not a configuration file name: HAProxy loads only names ending in .cfg that do not start with a dot", name)
		}
	}
	current, err := c.readDir(ctx, routerID, ConfigDir)
	if err != nil {
		return fmt.Errorf("reading the router's configuration: %w", err)
	}
	c.rememberBase(routerID, current[BaseFile])
	if _, writesBase := files[BaseFile]; writesBase {
		defer c.rememberBase(routerID, nil)
	}
	// The probe renames the files into place: placed first, it never fails later.
	if err := c.ensureProbe(ctx, routerID); err != nil {
		return err
	}
	if err := c.stage(ctx, routerID, files); err != nil {
		return err
	}
	if plan, next, ok := runtimeChange(files, current); ok {
		// Only servers change: the file goes into place (for a restart or a
		// later reload) and the running worker gets the servers at once. The
		// file differs from the live one, which HAProxy loaded, only in
		// server lines of the form it already holds: there is nothing new
		// to check.
		if err := c.moveIntoPlace(ctx, routerID, files); err != nil {
			return err
		}
		failpoint.Hit(failpoint.RouteWritten)
		rerr := c.applyRuntime(ctx, routerID, plan, next)
		if rerr == nil {
			return nil
		}
		// The file is in place: a reload loads it (a router without the
		// socket, or a worker that ran another route than the file).
		return c.reloadPlaced(ctx, routerID, rerr)
	}
	if err := c.check(ctx, routerID, files, current); err != nil {
		return errors.Join(err, c.unstage(ctx, routerID, files))
	}
	watch, err := c.watchReload(ctx, routerID)
	if err != nil {
		return errors.Join(err, c.unstage(ctx, routerID, files))
	}
	watch.loadedOnly = !OldWorkersMatter(files, current)
	if err := c.moveIntoPlace(ctx, routerID, files); err != nil {
		return err
	}
	failpoint.Hit(failpoint.RouteWritten)
	err = c.signalAndConfirm(ctx, routerID, watch)
	var refused *ReloadError
	if errors.As(err, &refused) {
		// HAProxy's master kept the workers it had: the files go back to
		// what they run, so that the next reload, anyone's, loads that.
		restore := map[string][]byte{}
		for name := range files {
			restore[name] = current[name]
		}
		if rerr := c.stage(ctx, routerID, restore); rerr != nil {
			return errors.Join(err, fmt.Errorf("putting back the configuration the router runs: %w", rerr))
		}
		if rerr := c.moveIntoPlace(ctx, routerID, restore); rerr != nil {
			return errors.Join(err, fmt.Errorf("putting back the configuration the router runs: %w", rerr))
		}
	}
	return err
}

// stage writes files under their staging names, beside the live ones.
func (c *Controller) stage(ctx context.Context, routerID string, files map[string][]byte) error {
	if len(files) == 0 {
		return nil
	}
	var write []docker.File
	for _, name := range sortedNames(files) {
		write = append(write, docker.File{Path: stagePrefix + name, Content: files[name], Mode: 0o644})
	}
	if err := c.Docker.CopyFiles(ctx, routerID, ConfigDir, write); err != nil {
		return fmt.Errorf("writing the router's new configuration: %w", err)
	}
	return nil
}

// unstage removes staged files; the live ones were not touched.
func (c *Controller) unstage(ctx context.Context, routerID string, files map[string][]byte) error {
	if len(files) == 0 {
		return nil
	}
	args := []string{"-remove"}
	for _, name := range sortedNames(files) {
		args = append(args, stagedPath(name))
	}
	code, out, err := c.execProbe(ctx, routerID, args...)
	if err == nil && code != 0 {
		err = errors.New(strings.TrimSpace(out))
	}
	if err != nil {
		return fmt.Errorf("removing the staged configuration files (HAProxy does not load them): %w", err)
	}
	return nil
}

// check runs `haproxy -c` on the configuration as it will be: the live files
// in HAProxy's order, each one being replaced by its staged file.
func (c *Controller) check(ctx context.Context, routerID string, files, current map[string][]byte) error {
	all := map[string][]byte{}
	for name := range current {
		if loadable(name) {
			all[name] = nil
		}
	}
	for name := range files {
		all[name] = nil
	}
	cmd := []string{"haproxy", "-c"}
	for _, name := range sortedNames(all) { // HAProxy loads a directory in C-locale order
		p := path.Join(ConfigDir, name)
		if _, ok := files[name]; ok {
			p = stagedPath(name)
		}
		cmd = append(cmd, "-f", p)
	}
	code, out, err := c.Docker.Exec(ctx, routerID, cmd)
	if err != nil {
		return fmt.Errorf("checking the router configuration: %w", err)
	}
	if code != 0 {
		return &ReloadError{Output: checkOutput(out, files)}
	}
	return nil
}

// checkOutput is HAProxy's complaint as a user reads it: about the files by
// their own names, without the version notices.
func checkOutput(out string, files map[string][]byte) string {
	for name := range files {
		out = strings.ReplaceAll(out, stagedPath(name), path.Join(ConfigDir, name))
	}
	var keep []string
	for _, line := range strings.Split(out, "\n") {
		if !strings.Contains(line, "[NOTICE]") {
			keep = append(keep, line)
		}
	}
	return strings.TrimSpace(strings.Join(keep, "\n"))
}

// moveIntoPlace renames the staged files over the live ones, each rename
// atomic: HAProxy reads either the old file or the new one, never a part.
func (c *Controller) moveIntoPlace(ctx context.Context, routerID string, files map[string][]byte) error {
	if len(files) == 0 {
		return nil
	}
	args := []string{"-rename"}
	for _, name := range sortedNames(files) {
		args = append(args, stagedPath(name), path.Join(ConfigDir, name))
	}
	code, out, err := c.execProbe(ctx, routerID, args...)
	if err != nil {
		// The rename may have run in the container although its answer was lost.
		return &ReloadUnconfirmedError{Err: fmt.Errorf("moving the checked configuration into place: %w", err)}
	}
	if code != 0 {
		// The probe renames nothing unless it can rename every file.
		return errors.Join(fmt.Errorf("moving the checked configuration into place: %s", strings.TrimSpace(out)), c.unstage(ctx, routerID, files))
	}
	return nil
}

func sortedNames(m map[string][]byte) []string {
	names := make([]string, 0, len(m))
	for name := range m {
		names = append(names, name)
	}
	sort.Strings(names)
	return names
}
