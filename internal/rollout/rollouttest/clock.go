package rollouttest

import (
	"context"
	"sync/atomic"
	"time"
)

// Clock is a clock.Clock whose Sleep advances it at once. Safe for
// concurrent use (the deployer reads it from parallel goroutines).
type Clock struct{ ns atomic.Int64 }

// Epoch is where a NewClock starts.
var Epoch = time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)

// NewClock starts a clock at Epoch.
func NewClock() *Clock {
	c := &Clock{}
	c.ns.Store(Epoch.UnixNano())
	return c
}

// Now is the fake time.
func (c *Clock) Now() time.Time { return time.Unix(0, c.ns.Load()).UTC() }

// Sleep moves the clock on by d, unless ctx is done.
func (c *Clock) Sleep(ctx context.Context, d time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if d > 0 {
		c.ns.Add(int64(d))
	}
	return nil
}
