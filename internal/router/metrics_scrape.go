package router

import (
	"context"
	"fmt"
	"path"
	"strconv"
	"strings"
	"sync"

	"github.com/releasekit/terraform-provider-release/internal/docker"
	"github.com/releasekit/terraform-provider-release/internal/probe"
)

// execOutputLimit is the most output docker.Engine.Exec returns; output this
// long may have been cut, and a cut last line can still parse as a smaller
// number. A probe session's answers are bounded alike (probe.ReadAnswer).
const execOutputLimit = docker.ExecOutputLimit

// ScrapeServers reads the per-server counters of one backend from inside the
// router container, with the probe placed there (see InstallProbe), so that
// it needs no published metrics port and works over any Docker connection.
func (c *Controller) ScrapeServers(ctx context.Context, routerID string, metricsPort int, backend string) (map[string]ServerCounts, error) {
	out, err := c.scrape(ctx, routerID, metricsPort)
	if err != nil {
		return nil, err
	}
	return ParseServerMetrics(strings.NewReader(out), backend)
}

// ScrapeWorker reads the per-server counters of one backend as
// ScrapeServers does, with the worker that served them (ServerScrape.Worker,
// "" when the probe could not tell): Accumulator tells reloads by it.
func (c *Controller) ScrapeWorker(ctx context.Context, routerID string, metricsPort int, backend string) (ServerScrape, error) {
	code, out, err := c.execProbe(ctx, routerID, "-scrape", RuntimeSocket, strconv.Itoa(metricsPort), "/metrics?scope=server", "5s")
	if err == nil && code != 0 && (strings.HasPrefix(out, "usage:") || strings.HasPrefix(out, "unhealthy:")) {
		// A probe from before -scrape takes it for a port: no worker then.
		servers, err := c.ScrapeServers(ctx, routerID, metricsPort, backend)
		return ServerScrape{Servers: servers}, err
	}
	if err != nil {
		return ServerScrape{}, fmt.Errorf("reading the router's metrics in container %s: %w", routerID, err)
	}
	if code != 0 {
		return ServerScrape{}, fmt.Errorf("reading the router's metrics in container %s: %s exited with %d: %s", routerID, probe.Path, code, strings.TrimSpace(out))
	}
	if len(out) >= execOutputLimit || (out != "" && !strings.HasSuffix(out, "\n")) {
		return ServerScrape{}, fmt.Errorf("reading the router's metrics in container %s: the output was cut at %d bytes", routerID, len(out))
	}
	servers, err := ParseServerMetrics(strings.NewReader(out), backend)
	return ServerScrape{Worker: ParseWorker(out), Servers: servers}, err
}

// ServerStates reads HAProxy's own view of each server of one backend (status,
// last check, live weight), the way ScrapeServers reads its counters. A
// backend the running worker does not have gives an empty map.
func (c *Controller) ServerStates(ctx context.Context, routerID string, metricsPort int, backend string) (map[string]ServerState, error) {
	out, err := c.scrape(ctx, routerID, metricsPort)
	if err != nil {
		return nil, err
	}
	return ParseServerStates(strings.NewReader(out), backend)
}

// ServerMetrics returns the exporter's per-server text of every backend, for
// a caller that reads several backends of one router at once
// (ParseServerStates reads one from it).
func (c *Controller) ServerMetrics(ctx context.Context, routerID string, metricsPort int) (string, error) {
	return c.scrape(ctx, routerID, metricsPort)
}

// scrape returns the exporter's per-server text, read with the probe.
func (c *Controller) scrape(ctx context.Context, routerID string, metricsPort int) (string, error) {
	// scope=server leaves out the frontend and backend families; the metrics
	// frontend matches on the path alone, so the query string passes.
	code, out, err := c.execProbe(ctx, routerID, "-body", strconv.Itoa(metricsPort), "/metrics?scope=server", "5s")
	if err != nil {
		return "", fmt.Errorf("reading the router's metrics in container %s: %w", routerID, err)
	}
	if code != 0 {
		return "", fmt.Errorf("reading the router's metrics in container %s: %s exited with %d: %s", routerID, probe.Path, code, strings.TrimSpace(out))
	}
	// Exec mixes stderr into the output; the probe writes to stderr only when it fails.
	if len(out) >= execOutputLimit || (out != "" && !strings.HasSuffix(out, "\n")) {
		return "", fmt.Errorf("reading the router's metrics in container %s: the output was cut at %d bytes", routerID, len(out))
	}
	return out, nil
}

// InstallProbe places the probe for the router host's architecture (amd64,
// arm64, x86_64 or aarch64) in the router container at probe.Path. The
// Controller places it itself when it first needs it in a router; calling
// this spares that.
func (c *Controller) InstallProbe(ctx context.Context, routerID string, arch string) error {
	bin, err := probe.Binary(arch)
	if err != nil {
		return err
	}
	file := docker.File{Path: path.Base(probe.Path), Mode: 0o755, Content: bin}
	if err := c.Docker.CopyFiles(ctx, routerID, path.Dir(probe.Path), []docker.File{file}); err != nil {
		return fmt.Errorf("placing the probe in the router: %w", err)
	}
	c.markProbed(routerID)
	return nil
}

// execProbe runs the probe in the router with args, placing it there first
// if this Controller has not yet: once per Controller and router. A router
// that lost it (a new container under a reused name) gets it again once.
func (c *Controller) execProbe(ctx context.Context, routerID string, args ...string) (int, string, error) {
	cmd := append([]string{probe.Path}, args...)
	for attempt := 0; ; attempt++ {
		if err := c.ensureProbe(ctx, routerID); err != nil {
			return 0, "", err
		}
		if code, out, err, used := c.viaSession(ctx, routerID, args); used {
			return code, out, err
		}
		code, out, err := c.Docker.Exec(ctx, routerID, cmd)
		// 126 and 127 are the runtime's "cannot run it": the probe itself exits 0, 1 or 2.
		if err != nil || (code != 126 && code != 127) || attempt > 0 {
			return code, out, err
		}
		c.dropSessions(routerID)
		c.probeMu.Lock()
		delete(c.probed, routerID)
		c.probeMu.Unlock()
	}
}

// ensureProbe makes sure the router has this provider's probe, once per
// Controller and router; callers for one router wait for the first. A
// probe there that serves and names the same build (another provider
// process placed it) is used as it is, and its session kept: placing the
// probe costs a copy of about 2 MB.
func (c *Controller) ensureProbe(ctx context.Context, routerID string) error {
	c.probeMu.Lock()
	if c.probed[routerID] {
		c.probeMu.Unlock()
		return nil
	}
	if c.placing == nil {
		c.placing = map[string]*sync.Mutex{}
	}
	if c.placing[routerID] == nil {
		c.placing[routerID] = &sync.Mutex{}
	}
	placing := c.placing[routerID]
	c.probeMu.Unlock()
	placing.Lock()
	defer placing.Unlock()
	c.probeMu.Lock()
	placed := c.probed[routerID]
	c.probeMu.Unlock()
	if placed {
		return nil
	}
	arch, err := c.architecture(ctx)
	if err != nil {
		return fmt.Errorf("reading the Docker host's architecture for the router's probe: %w", err)
	}
	if want, err := probe.Identity(arch); err == nil {
		if s, ok := c.openSession(ctx, routerID); ok {
			if s.identity == want {
				c.pool(routerID).keep(s)
				c.markProbed(routerID)
				return nil
			}
			s.stream.Close()
		}
	}
	return c.InstallProbe(ctx, routerID, arch)
}

// architecture is the Docker host's, read once.
func (c *Controller) architecture(ctx context.Context) (string, error) {
	c.probeMu.Lock()
	arch := c.arch
	c.probeMu.Unlock()
	if arch != "" {
		return arch, nil
	}
	arch, err := c.Docker.Architecture(ctx)
	if err != nil {
		return "", err
	}
	c.probeMu.Lock()
	c.arch = arch
	c.probeMu.Unlock()
	return arch, nil
}

func (c *Controller) markProbed(routerID string) {
	c.probeMu.Lock()
	defer c.probeMu.Unlock()
	if c.probed == nil {
		c.probed = map[string]bool{}
	}
	c.probed[routerID] = true
}
