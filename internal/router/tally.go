package router

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/releasekit/terraform-provider-release/internal/docker"
	"github.com/releasekit/terraform-provider-release/internal/probe"
)

// A canary's counts come from the router's own log of each request, not
// from its counters: a reload starts workers whose counters begin at zero,
// and what the old workers serve after it, until they exit, is never
// scraped. Instead the canary's route logs every request (Route.RequestLog)
// to a UDP socket that the probe binds inside the router (release-probe
// -tally) and keeps as long as the provider's exec of it stays open. Old
// and new workers log to the same socket, so reloads by anyone (another
// environment's route change) lose nothing, and the kernel's drop counter
// of the socket says when the reader fell behind.
//
// The socket's port is the kernel's choice, so two canaries on one router,
// even from two provider processes, never share one; the route names the
// port of its own tally. The tally lives as long as its exec: it ends with
// the provider process, and a canary resumed by a later apply starts a new
// one (its route then logs to the new port, which takes a reload).

// ErrNoTally says a router cannot run a tally: the Docker connection keeps
// no exec open (a test's fake), or the probe there is from before -tally.
var ErrNoTally = errors.New("the router cannot count requests from its log")

// TallySession is a tally running in a router.
type TallySession struct {
	mu     sync.Mutex
	stream *docker.ExecStream
	addr   string
}

// OpenTally starts a tally in the router, with response-time buckets at
// bounds (seconds, increasing). Its Addr is the route's RequestLog.
func (c *Controller) OpenTally(ctx context.Context, routerID string, bounds []float64) (*TallySession, error) {
	s, ok := c.Docker.(streamer)
	if !ok {
		return nil, ErrNoTally
	}
	if err := c.ensureProbe(ctx, routerID); err != nil {
		return nil, err
	}
	stream, err := s.ExecStream(ctx, routerID, append([]string{probe.Path}, probe.TallyArgs(bounds)...))
	if err != nil {
		return nil, fmt.Errorf("starting the request tally in the router: %w", err)
	}
	line, err := stream.Out.ReadString('\n')
	addr, ok := probe.ParseTallyGreeting(line)
	if err != nil || !ok {
		stream.Close()
		return nil, fmt.Errorf("%w: its probe answered %q", ErrNoTally, strings.TrimSpace(line))
	}
	return &TallySession{stream: stream, addr: addr}, nil
}

// Addr is where the route must log its requests.
func (t *TallySession) Addr() string { return t.addr }

// Read returns the counts since the tally started. A tally that fails to
// answer is closed: its counts are gone.
func (t *TallySession) Read(ctx context.Context) (probe.Tally, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.stream == nil {
		return probe.Tally{}, errors.New("the request tally has ended")
	}
	type answer struct {
		out string
		err error
	}
	done := make(chan answer, 1)
	go func() {
		if _, err := t.stream.In.Write([]byte("\n")); err != nil {
			done <- answer{err: err}
			return
		}
		_, out, err := probe.ReadAnswer(t.stream.Out)
		done <- answer{out, err}
	}()
	var a answer
	select {
	case a = <-done:
	case <-ctx.Done():
		a.err = ctx.Err()
	}
	if a.err != nil {
		t.stream.Close()
		t.stream = nil
		return probe.Tally{}, fmt.Errorf("the request tally stopped answering (was the router restarted?): %w", a.err)
	}
	return probe.ParseTally(a.out)
}

// Close ends the tally; the route's requests logged after it are not counted.
func (t *TallySession) Close() {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.stream != nil {
		t.stream.Close()
		t.stream = nil
	}
}
