package router

import (
	"context"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"
)

// ParseServerSessions reads each server's current sessions (connections
// under way, a WebSocket or an event stream among them) in one backend.
func ParseServerSessions(r io.Reader, backend string) (map[string]int, error) {
	families, err := parseExporter(r)
	if err != nil {
		return nil, err
	}
	out := map[string]int{}
	eachServer(families, "haproxy_server_current_sessions", backend, func(server string, _ map[string]string, v float64) {
		out[server] = int(v)
	})
	return out, nil
}

// WaitDrained waits until the named servers of a backend have no session
// left in the router's running worker, or until timeout: a drained server
// takes no new request, and what it still serves (a long download, a
// WebSocket, an event stream) may finish, up to the container's
// stop_timeout. It returns the sessions left when the time ran out (nil when
// drained); a scrape that fails is retried until then. A worker left from
// an earlier reload is not seen: its connections end with hard-stop-after
// or with the container.
func (c *Controller) WaitDrained(ctx context.Context, routerID string, metricsPort int, backend string, servers []string, timeout time.Duration) (map[string]int, error) {
	if len(servers) == 0 {
		return nil, nil
	}
	poll := c.ReadyPoll
	if poll <= 0 {
		poll = 250 * time.Millisecond
	}
	clk := c.clock()
	deadline := clk.Now().Add(timeout)
	var left map[string]int
	for {
		out, err := c.scrape(ctx, routerID, metricsPort)
		if ctx.Err() != nil {
			return left, ctx.Err()
		}
		if err == nil {
			var sessions map[string]int
			if sessions, err = ParseServerSessions(strings.NewReader(out), backend); err == nil {
				left = map[string]int{}
				for _, name := range servers {
					if n := sessions[name]; n > 0 {
						left[name] = n
					}
				}
				if len(left) == 0 {
					return nil, nil
				}
			}
		}
		wait := deadline.Sub(clk.Now())
		if wait <= 0 {
			if left == nil && err != nil {
				return nil, fmt.Errorf("reading the sessions of the drained servers: %w", err)
			}
			return left, nil
		}
		if err := clk.Sleep(ctx, min(poll, wait)); err != nil {
			return left, err
		}
		poll = nextPoll(poll)
	}
}

// DescribeSessions says which servers still had sessions: "s1-1 (2), s1-2 (1)".
func DescribeSessions(left map[string]int) string {
	names := make([]string, 0, len(left))
	for name := range left {
		names = append(names, name)
	}
	sort.Strings(names)
	parts := make([]string, 0, len(names))
	for _, name := range names {
		parts = append(parts, fmt.Sprintf("%s (%d)", name, left[name]))
	}
	return strings.Join(parts, ", ")
}
