// Package clock is the seam between domain code and the wall clock. Code that
// waits or measures time takes a Clock, so that its tests drive time with
// clocktest.Fake and never sleep.
package clock

import (
	"context"
	"time"
)

// Clock reads the time and waits.
type Clock interface {
	Now() time.Time
	// Sleep waits for d, or returns ctx.Err() if the context ends first.
	// A non-positive d returns at once, unless the context is already done.
	Sleep(ctx context.Context, d time.Duration) error
}

// Real is the wall clock.
type Real struct{}

var _ Clock = Real{}

// Now returns the wall-clock time.
func (Real) Now() time.Time { return time.Now() }

// Sleep waits for d on the wall clock, or until ctx ends.
func (Real) Sleep(ctx context.Context, d time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if d <= 0 {
		return nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
