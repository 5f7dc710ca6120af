// Package clocktest provides a clock.Clock for tests: time moves only when
// the code under test sleeps or the test advances it, so timeouts of minutes
// are checked in microseconds.
package clocktest

import (
	"context"
	"sync"
	"time"

	"github.com/releasekit/terraform-provider-release/internal/clock"
)

// Fake is a clock whose Sleep returns at once, having moved its time on.
// It is safe for concurrent use.
type Fake struct {
	mu  sync.Mutex
	now time.Time
}

var _ clock.Clock = (*Fake)(nil)

// New returns a Fake that reads start.
func New(start time.Time) *Fake {
	return &Fake{now: start}
}

// Now returns the fake time.
func (f *Fake) Now() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.now
}

// Sleep moves the time on by d (nothing if d is not positive), unless ctx is
// done: then it returns ctx.Err() and the time stays, as a real sleep that
// was interrupted at once.
func (f *Fake) Sleep(ctx context.Context, d time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	f.Advance(d)
	return nil
}

// Advance moves the time on by d; a non-positive d changes nothing, since
// a clock does not run backwards.
func (f *Fake) Advance(d time.Duration) {
	if d <= 0 {
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.now = f.now.Add(d)
}
