package lease

import (
	"context"
	"sync"
	"time"

	"github.com/releasekit/terraform-provider-release/internal/clock"
)

// Shared lets the operations of one apply (one provider process) hold a
// router's lease together: environments that deploy side by side through
// one router share the lease, while another apply waits for all of them.
// The first Hold takes the lease and keeps it renewed; the last release
// gives it back.
type Shared struct {
	Host  Host
	Clock clock.Clock
	TTL   time.Duration
	// Wait bounds how long a Hold waits for another apply's lease.
	Wait time.Duration

	mu   sync.Mutex
	held map[string]*sharedLease
}

type sharedLease struct {
	mu    sync.Mutex
	lease *Lease
	stop  func()
	refs  int
}

// Hold takes (or joins) the router's lease; release gives this hold back
// and, with the last one, the lease. The *Lease's Err reports a lease lost
// while held, for the caller to check before it reports success.
func (s *Shared) Hold(ctx context.Context, router, image string) (l *Lease, release func(context.Context) error, err error) {
	s.mu.Lock()
	if s.held == nil {
		s.held = map[string]*sharedLease{}
	}
	e := s.held[router]
	if e == nil {
		e = &sharedLease{}
		s.held[router] = e
	}
	s.mu.Unlock()

	e.mu.Lock()
	defer e.mu.Unlock()
	if e.lease == nil {
		l, err := Acquire(ctx, s.Host, router, image, s.TTL, s.Wait, s.Clock)
		if err != nil {
			return nil, nil, err
		}
		// Renewed until the last release, whatever becomes of this caller's context.
		e.lease, e.stop = l, l.Keep(context.WithoutCancel(ctx), 0)
	}
	e.refs++
	l = e.lease
	var once sync.Once
	release = func(ctx context.Context) error {
		var err error
		once.Do(func() {
			e.mu.Lock()
			defer e.mu.Unlock()
			if e.refs--; e.refs > 0 {
				return
			}
			e.stop()
			err = e.lease.Release(ctx)
			e.lease, e.stop = nil, nil
		})
		return err
	}
	return l, release, nil
}
