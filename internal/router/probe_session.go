package router

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"time"

	"github.com/releasekit/terraform-provider-release/internal/docker"
	"github.com/releasekit/terraform-provider-release/internal/probe"
)

// Every read and change of a router goes through the probe placed in it.
// An exec of its own costs Docker's exec create, start and inspect (about
// 40ms here) each time, and a switch reads and changes the router a dozen
// times; a probe started once with -serve answers each in a round trip.
// The Controller keeps a few of those open per router and falls back to an
// exec of its own whenever one cannot be used.

// streamer is a Container that can keep an exec open (docker.Engine is one).
type streamer interface {
	ExecStream(ctx context.Context, id string, cmd []string) (*docker.ExecStream, error)
}

// maxIdleSessions bounds the sessions kept open per router between
// invocations: environments released side by side each take one.
const maxIdleSessions = 4

// sessionWait is how long an invocation waits for a busy session to come
// back before it opens another: an invocation takes a millisecond or two,
// opening a session about 40ms, and a slow one (a router reloading) must
// not hold up the rest.
const sessionWait = 10 * time.Millisecond

// probeSession is one `release-probe -serve` running in a router.
type probeSession struct {
	stream   *docker.ExecStream
	identity string // the probe's build (probe.Identity)
}

// sessionPool holds one router's sessions.
type sessionPool struct {
	idle chan *probeSession
	busy atomic.Int32 // sessions carrying an invocation now
}

func (c *Controller) openSession(ctx context.Context, routerID string) (*probeSession, bool) {
	s, ok := c.Docker.(streamer)
	if !ok {
		return nil, false
	}
	stream, err := s.ExecStream(ctx, routerID, append([]string{probe.Path}, probe.ServeArgs...))
	if err != nil {
		return nil, false
	}
	// A probe that serves says so first; anything else (no probe there, or
	// one from before -serve, which prints its usage and exits) is not used.
	line, err := stream.Out.ReadString('\n')
	identity, ok := probe.ParseGreeting(line)
	if err != nil || !ok {
		stream.Close()
		return nil, false
	}
	return &probeSession{stream: stream, identity: identity}, true
}

func (c *Controller) pool(routerID string) *sessionPool {
	c.probeMu.Lock()
	defer c.probeMu.Unlock()
	if c.sessions == nil {
		c.sessions = map[string]*sessionPool{}
	}
	p := c.sessions[routerID]
	if p == nil {
		p = &sessionPool{idle: make(chan *probeSession, maxIdleSessions)}
		c.sessions[routerID] = p
	}
	return p
}

// takeSession returns an idle session of the router, one that comes back
// within sessionWait, or a new one.
func (c *Controller) takeSession(ctx context.Context, routerID string) (*probeSession, bool) {
	p := c.pool(routerID)
	if s := p.tryIdle(); s != nil {
		return s, true
	}
	if p.busy.Load() > 0 {
		timer := time.NewTimer(sessionWait)
		defer timer.Stop()
	wait:
		for {
			select {
			case s := <-p.idle:
				if s = p.usable(s); s != nil {
					return s, true
				}
			case <-timer.C:
				break wait
			case <-ctx.Done():
				return nil, false
			}
		}
	}
	s, ok := c.openSession(ctx, routerID)
	if ok {
		p.busy.Add(1)
	}
	return s, ok
}

// tryIdle takes an idle session that has not ended, without waiting.
func (p *sessionPool) tryIdle() *probeSession {
	for {
		select {
		case s := <-p.idle:
			if s = p.usable(s); s != nil {
				return s
			}
		default:
			return nil
		}
	}
}

// usable takes an idle session for an invocation; nil when it has ended
// (its router restarted), closed then.
func (p *sessionPool) usable(s *probeSession) *probeSession {
	if s.stream.Ended() {
		s.stream.Close()
		return nil
	}
	p.busy.Add(1)
	return s
}

// keep puts a session that is not carrying an invocation among the idle.
func (p *sessionPool) keep(s *probeSession) {
	select {
	case p.idle <- s:
	default:
		s.stream.Close()
	}
}

// giveBack keeps a session that answered for the next invocation.
func (c *Controller) giveBack(routerID string, s *probeSession) {
	p := c.pool(routerID)
	p.busy.Add(-1)
	p.keep(s)
}

// discard closes a session that failed.
func (c *Controller) discard(routerID string, s *probeSession) {
	c.pool(routerID).busy.Add(-1)
	s.stream.Close()
}

// Close ends the probe sessions this Controller keeps open. A provider
// process need not call it: when it exits, each session's connection
// closes, the probe's input ends and it exits. A process that outlives the
// Controller (a test) must, or the probes keep running in the routers.
func (c *Controller) Close() {
	c.probeMu.Lock()
	routers := make([]string, 0, len(c.sessions))
	for id := range c.sessions {
		routers = append(routers, id)
	}
	c.probeMu.Unlock()
	for _, id := range routers {
		c.dropSessions(id)
	}
}

// dropSessions closes a router's idle sessions (its probe is being replaced).
func (c *Controller) dropSessions(routerID string) {
	p := c.pool(routerID)
	for {
		select {
		case s := <-p.idle:
			s.stream.Close()
		default:
			return
		}
	}
}

// viaSession runs one probe invocation over a session. used is false when
// no session could carry it and nothing was run: the caller then runs an
// exec of its own. A session that fails is closed, never reused. When the
// answer is lost after the invocation was sent, a read is handed back to
// the caller to run again (used is false); a change is reported as the
// error it is, as a lost exec's would be.
func (c *Controller) viaSession(ctx context.Context, routerID string, args []string) (code int, out string, err error, used bool) {
	s, ok := c.takeSession(ctx, routerID)
	if !ok {
		return 0, "", nil, false
	}
	type answer struct {
		code int
		out  string
		err  error
		sent bool
	}
	done := make(chan answer, 1)
	go func() {
		if err := probe.WriteRequest(s.stream.In, args); err != nil {
			done <- answer{err: err}
			return
		}
		code, out, err := probe.ReadAnswer(s.stream.Out)
		done <- answer{code, out, err, true}
	}()
	var a answer
	select {
	case a = <-done:
	case <-ctx.Done():
		// The answer would come out of turn: this session is done.
		c.discard(routerID, s)
		return 0, "", ctx.Err(), true
	}
	if a.err == nil {
		c.giveBack(routerID, s)
		return a.code, a.out, nil, true
	}
	c.discard(routerID, s)
	if !a.sent || readOnly(args) {
		return 0, "", nil, false
	}
	return 0, "", fmt.Errorf("the router's probe stopped answering after the change was sent, so the router may have applied it "+
		"(was the router restarted, or the Docker connection lost?); the next plan reads what the router runs: %w", a.err), true
}

// readOnly says whether an invocation only reads, so that running it again
// after its answer was lost changes nothing.
func readOnly(args []string) bool {
	switch {
	case len(args) == 0:
		return false
	case args[0] == "-body" || args[0] == "-read" || !strings.HasPrefix(args[0], "-"):
		return true // reads, and health checks (a GET)
	case args[0] == "-cli" && len(args) == 3:
		for _, cmd := range strings.Split(args[2], ";") {
			if !strings.HasPrefix(strings.TrimSpace(cmd), "show ") {
				return false
			}
		}
		return true
	}
	return false
}

// readDir reads the regular files of a directory in the router: through a
// probe session when one serves, else through Docker's archive API.
func (c *Controller) readDir(ctx context.Context, routerID, dir string) (map[string][]byte, error) {
	if _, ok := c.Docker.(streamer); ok && c.ensureProbe(ctx, routerID) == nil {
		code, out, err, used := c.viaSession(ctx, routerID, probe.ReadArgs(dir))
		if used && err != nil {
			return nil, err
		}
		if used && code == 0 {
			if files, err := probe.ReadFiles(out); err == nil {
				return files, nil
			}
		}
	}
	return c.Docker.ReadDir(ctx, routerID, dir)
}

// Via returns e with its reads of a router's files made through this
// Controller's probe sessions (Observe before a release reads them again
// moments later, through the same session).
func (c *Controller) Via(e Engine) Engine { return sessionReads{Engine: e, c: c} }

type sessionReads struct {
	Engine
	c *Controller
}

func (s sessionReads) ReadDir(ctx context.Context, id, dir string) (map[string][]byte, error) {
	return s.c.readDir(ctx, id, dir)
}

// ProbeFrom runs the health probe in the router against another
// container's address: the same GET the router's own checks make, from
// where they make it. It returns the probe's exit code (0 on a 2xx) and its
// output (the status line, or why there was none).
func (c *Controller) ProbeFrom(ctx context.Context, routerID, addr, path string, timeout time.Duration) (int, string, error) {
	return c.execProbe(ctx, routerID, probe.RemoteArgs(addr, path, timeout)...)
}

// Prepare makes a router container (by name or ID) ready for invocations
// (its probe checked or placed, a session open) ahead of the first, and
// reports nothing: the invocations that follow wait for it, and meet its
// errors themselves.
// Only the first call for a container does anything.
func (c *Controller) Prepare(ctx context.Context, e interface {
	Inspect(ctx context.Context, id string) (docker.Container, error)
}, container string) {
	c.probeMu.Lock()
	if c.prepared == nil {
		c.prepared = map[string]bool{}
	}
	first := !c.prepared[container]
	c.prepared[container] = true
	c.probeMu.Unlock()
	if !first {
		return
	}
	if r, err := e.Inspect(ctx, container); err == nil && r.Running() {
		_ = c.ensureProbe(ctx, r.ID)
	}
}
