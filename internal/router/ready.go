package router

import (
	"context"
	"fmt"
	"time"
)

// NotReadyError names the servers the router did not report ready in time,
// each with the state HAProxy last reported for it.
type NotReadyError struct {
	Servers map[string]ServerState
}

func (e *NotReadyError) Error() string {
	return "the router's own health check does not pass every server: " + describeServers(e.Servers)
}

// WaitReady waits until HAProxy reports each named server of backend UP with
// a passing check of its own (ServerState.Ready), so that traffic reaches
// only what the router itself checked. It returns a *NotReadyError naming
// the servers still not ready after timeout.
func (c *Controller) WaitReady(ctx context.Context, routerID string, metricsPort int, backend string, servers []string, timeout time.Duration) error {
	if len(servers) == 0 {
		return nil
	}
	poll := c.ReadyPoll
	if poll <= 0 {
		poll = 250 * time.Millisecond
	}
	clk := c.clock()
	deadline := clk.Now().Add(timeout)
	var (
		notReady map[string]ServerState
		lastErr  error
	)
	for {
		states, err := c.ServerStates(ctx, routerID, metricsPort, backend)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if err != nil {
			lastErr = err // a scrape can fail while the router reloads: try again
		} else {
			lastErr = nil
			notReady = map[string]ServerState{}
			for _, name := range servers {
				if s := states[name]; !s.Ready() {
					notReady[name] = s
				}
			}
			if len(notReady) == 0 {
				return nil
			}
		}
		left := deadline.Sub(clk.Now())
		if left <= 0 {
			break
		}
		if err := clk.Sleep(ctx, min(poll, left)); err != nil {
			return err
		}
		poll = nextPoll(poll)
	}
	if lastErr != nil {
		return fmt.Errorf("waiting for the router to report its servers ready: %w", lastErr)
	}
	return &NotReadyError{Servers: notReady}
}

// maxPoll bounds how far the polls of WaitReady and WaitDrained back off
// from ReadyPoll (by half each time): a server that passes at once is seen
// within milliseconds, and one that takes seconds, or a WebSocket that
// stays open for a whole stop_timeout, is not read a hundred times a second.
const maxPoll = 250 * time.Millisecond

func nextPoll(poll time.Duration) time.Duration { return max(poll, min(poll*3/2, maxPoll)) }
