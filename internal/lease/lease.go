// Package lease makes applies to one router take turns on the Docker host
// itself, whatever Terraform state or machine they come from (invariant 4).
//
// A lease is a container named release-lease-<router>: Docker creates a
// name once, atomically, so of two applies that create it at the same time
// exactly one succeeds and the other gets a conflict. The container is
// created from an image already on the host and never started: it costs a
// record in the daemon and nothing else. Its labels say who holds it (host
// and process), for which apply, and since when.
//
// Labels cannot change, so the expiry lives in a small file inside the
// container (Dir/File), written through the Docker archive API, which works
// on a created container, and read back the same way. Until the holder
// first renews, the expiry is the time taken plus the TTL in the labels, so
// a lease is never without one. A lease past its expiry is stale (its
// holder was killed or stalled): the next apply removes that container, by
// its ID so that a lease taken meanwhile is never removed, and creates its own.
//
// Expiries compare the clocks of the machines that take the lease: keep
// them in sync, or the TTL well above their difference.
package lease

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/releasekit/terraform-provider-release/internal/clock"
	"github.com/releasekit/terraform-provider-release/internal/docker"
)

// The lease container's labels. The lease owns its container alone: no
// other package reads these.
const (
	LabelRouter = "release.lease.router"
	LabelOwner  = "release.lease.owner"
	LabelApply  = "release.lease.apply"
	LabelTaken  = "release.lease.taken"
	LabelTTL    = "release.lease.ttl"
)

// Dir and File hold the renewable expiry inside the lease container, as
// RFC 3339 text.
const (
	Dir  = "/release-lease"
	File = "expires"
)

// Poll is how often a waiting Acquire looks again.
const Poll = time.Second

// A lease that is being created or removed is looked at again every
// settleDelay, up to maxSettles times.
const (
	settleDelay = 50 * time.Millisecond
	maxSettles  = 100
)

// ContainerName is the lease container of a router.
func ContainerName(router string) string { return "release-lease-" + router }

// Host is the Docker side of a lease.
type Host interface {
	Create(ctx context.Context, spec docker.ContainerSpec) (string, error)
	Inspect(ctx context.Context, id string) (docker.Container, error)
	Remove(ctx context.Context, id string) error
	CopyFiles(ctx context.Context, id, dir string, files []docker.File) error
	ReadDir(ctx context.Context, id, dir string) (map[string][]byte, error)
}

// The Docker Engine is a lease host.
var _ Host = (*docker.Engine)(nil)

// Lease is a router taken by this apply.
type Lease struct {
	Router string
	Owner  string
	Apply  string
	// ContainerID is the lease container: Renew and Release act only while
	// the name still belongs to it.
	ContainerID string
	Taken       time.Time

	host Host
	clk  clock.Clock
	ttl  time.Duration

	mu      sync.Mutex
	expires time.Time
	kept    error
}

// HeldError is a lease another apply holds past the wait.
type HeldError struct {
	Router, Owner, Apply string
	Since, Expires       time.Time
}

func (e *HeldError) Error() string {
	return fmt.Sprintf("router %s is held by another apply: apply %s of %s, since %s; its lease expires at %s unless that apply renews it",
		e.Router, e.Apply, e.Owner, e.Since.UTC().Format(time.RFC3339), e.Expires.UTC().Format(time.RFC3339))
}

// LostError is a lease that is no longer ours: it expired and another apply
// took it, or someone removed it.
type LostError struct {
	Router, Apply string
	// Holder describes who holds the router now ("nobody" when no lease exists).
	Holder string
}

func (e *LostError) Error() string {
	return fmt.Sprintf("the lease of apply %s on router %s was lost: the router is now held by %s", e.Apply, e.Router, e.Holder)
}

// NotLeaseError is a container with the lease's name that is not a lease
// of this router: it is never removed.
type NotLeaseError struct {
	Router, Container string
}

func (e *NotLeaseError) Error() string {
	return fmt.Sprintf("the container %s is not a lease of router %s; remove or rename it", e.Container, e.Router)
}

// Acquire takes the router's lease for ttl, waiting up to wait (polling
// every Poll) while another apply holds it, and taking over a stale one.
// image must be on the host already; the container is never started.
func Acquire(ctx context.Context, host Host, router, image string, ttl, wait time.Duration, clk clock.Clock) (*Lease, error) {
	if ttl <= 0 {
		return nil, fmt.Errorf("a lease needs a positive TTL, got %s", ttl)
	}
	apply, err := randomID()
	if err != nil {
		return nil, err
	}
	owner := Owner()
	deadline := clk.Now().Add(wait)
	// settle waits a moment after a conflict with a lease that cannot be
	// read: Docker reserves a name before the container can be inspected, so
	// a lease being created is briefly invisible; one just removed is too.
	// Bounded, so that a host that keeps answering so ends the wait.
	settles := 0
	settle := func() error {
		if settles++; settles > maxSettles {
			return fmt.Errorf("the lease of router %s could not be read: it kept changing hands", router)
		}
		return clk.Sleep(ctx, settleDelay)
	}
	for {
		now := clk.Now()
		id, err := host.Create(ctx, docker.ContainerSpec{
			Name:       ContainerName(router),
			Image:      image,
			Entrypoint: []string{"/release-lease-is-never-started"},
			Labels: map[string]string{
				LabelRouter: router, LabelOwner: owner, LabelApply: apply,
				LabelTaken: now.UTC().Format(time.RFC3339Nano), LabelTTL: ttl.String(),
			},
			NoRestart: true,
		})
		if err == nil {
			return &Lease{Router: router, Owner: owner, Apply: apply, ContainerID: id, Taken: now,
				host: host, clk: clk, ttl: ttl, expires: now.Add(ttl)}, nil
		}
		if !docker.IsConflict(err) {
			return nil, fmt.Errorf("taking the lease of router %s: %w", router, err)
		}
		h, found, err := read(ctx, host, router)
		if err != nil {
			return nil, err
		}
		if !found {
			if err := settle(); err != nil {
				return nil, err
			}
			continue
		}
		if stale := func(h holder) bool { return !clk.Now().Before(h.expires) || ownerGone(h.owner) }; stale(h) {
			// Stale: look once more, and remove it only if it is still the same and still stale.
			again, found, err := read(ctx, host, router)
			if err != nil {
				return nil, err
			}
			if found && again.id == h.id && stale(again) {
				if err := host.Remove(ctx, h.id); err != nil && !docker.IsNotFound(err) {
					return nil, fmt.Errorf("removing the stale lease of router %s (apply %s of %s): %w", router, h.apply, h.owner, err)
				}
			}
			if err := settle(); err != nil {
				return nil, err
			}
			continue
		}
		left := deadline.Sub(clk.Now())
		if left <= 0 {
			return nil, &HeldError{Router: router, Owner: h.owner, Apply: h.apply, Since: h.taken, Expires: h.expires}
		}
		if err := clk.Sleep(ctx, min(Poll, left)); err != nil {
			return nil, err
		}
	}
}

// Expires is when the lease runs out unless renewed.
func (l *Lease) Expires() time.Time {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.expires
}

// Renew moves the expiry to now plus the TTL, if the lease is still ours.
func (l *Lease) Renew(ctx context.Context) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := l.check(ctx); err != nil {
		return err
	}
	exp := l.clk.Now().Add(l.ttl)
	content := []byte(exp.UTC().Format(time.RFC3339Nano))
	if err := l.host.CopyFiles(ctx, l.ContainerID, "/", []docker.File{{Path: Dir + "/" + File, Content: content, Mode: 0o644}}); err != nil {
		if docker.IsNotFound(err) {
			if err := l.check(ctx); err != nil {
				return err
			}
			return &LostError{Router: l.Router, Apply: l.Apply, Holder: "nobody"}
		}
		return fmt.Errorf("renewing the lease of router %s: %w", l.Router, err)
	}
	l.expires = exp
	// Taken over between the check and the write: the write went to a removed container.
	return l.check(ctx)
}

// Keep renews the lease every interval in the background (every <= 0:
// a third of the TTL) until stop is called; stop waits for the renewal
// under way. A lease that was lost stops being renewed; Err reports it.
func (l *Lease) Keep(ctx context.Context, every time.Duration) (stop func()) {
	if every <= 0 {
		every = l.ttl / 3
	}
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			if err := l.clk.Sleep(ctx, every); err != nil {
				return
			}
			err := l.Renew(ctx)
			if err == nil || ctx.Err() != nil {
				continue
			}
			l.mu.Lock()
			if l.kept == nil {
				l.kept = err
			}
			l.mu.Unlock()
			var lost *LostError
			if errors.As(err, &lost) {
				return
			}
		}
	}()
	var once sync.Once
	return func() {
		once.Do(func() {
			cancel()
			<-done
		})
	}
}

// Err is the first error of the background renewal (Keep), such as a
// *LostError; nil while every renewal succeeded.
func (l *Lease) Err() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.kept
}

// Release removes the lease if it is still ours; a lease another apply
// holds now is left alone and reported as a *LostError. It runs even when
// ctx is cancelled, so that an interrupted apply still gives the router back.
func (l *Lease) Release(ctx context.Context) error {
	ctx = context.WithoutCancel(ctx)
	l.mu.Lock()
	defer l.mu.Unlock()
	c, err := l.host.Inspect(ctx, ContainerName(l.Router))
	if docker.IsNotFound(err) {
		return nil // already gone: nothing of ours to remove
	}
	if err != nil {
		return fmt.Errorf("releasing the lease of router %s: %w", l.Router, err)
	}
	if c.ID != l.ContainerID {
		return &LostError{Router: l.Router, Apply: l.Apply, Holder: describe(c.Labels)}
	}
	if err := l.host.Remove(ctx, l.ContainerID); err != nil {
		return fmt.Errorf("releasing the lease of router %s: %w", l.Router, err)
	}
	return nil
}

// check returns a *LostError unless the lease's name is still our container.
func (l *Lease) check(ctx context.Context) error {
	c, err := l.host.Inspect(ctx, ContainerName(l.Router))
	if docker.IsNotFound(err) {
		return &LostError{Router: l.Router, Apply: l.Apply, Holder: "nobody"}
	}
	if err != nil {
		return fmt.Errorf("reading the lease of router %s: %w", l.Router, err)
	}
	if c.ID != l.ContainerID {
		return &LostError{Router: l.Router, Apply: l.Apply, Holder: describe(c.Labels)}
	}
	return nil
}

// holder is a lease as read from the host.
type holder struct {
	id, owner, apply string
	taken, expires   time.Time
}

// read returns the router's lease, found=false when there is none.
func read(ctx context.Context, host Host, router string) (holder, bool, error) {
	c, err := host.Inspect(ctx, ContainerName(router))
	if docker.IsNotFound(err) {
		return holder{}, false, nil
	}
	if err != nil {
		return holder{}, false, fmt.Errorf("reading the lease of router %s: %w", router, err)
	}
	if c.Labels[LabelRouter] != router {
		return holder{}, false, &NotLeaseError{Router: router, Container: ContainerName(router)}
	}
	h := holder{id: c.ID, owner: c.Labels[LabelOwner], apply: c.Labels[LabelApply]}
	h.taken, _ = time.Parse(time.RFC3339Nano, c.Labels[LabelTaken])
	ttl, _ := time.ParseDuration(c.Labels[LabelTTL])
	h.expires = h.taken.Add(ttl)
	files, err := host.ReadDir(ctx, c.ID, Dir)
	if docker.IsNotFound(err) {
		return holder{}, false, nil // removed since the inspect
	}
	if err != nil {
		return holder{}, false, fmt.Errorf("reading the lease of router %s: %w", router, err)
	}
	if b, ok := files[File]; ok {
		if t, err := time.Parse(time.RFC3339Nano, string(b)); err == nil {
			h.expires = t
		}
	}
	return h, true, nil
}

func describe(labels map[string]string) string {
	return fmt.Sprintf("apply %s of %s", labels[LabelApply], labels[LabelOwner])
}

// Owner names this process: host name and process ID.
func Owner() string {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "unknown-host"
	}
	return host + " pid " + strconv.Itoa(os.Getpid())
}

func randomID() (string, error) {
	b := make([]byte, 8)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("making an apply ID: %w", err)
	}
	return hex.EncodeToString(b), nil
}

// ownerGone says whether a lease's owner was a process on this machine that
// no longer runs (a pipeline killed with SIGKILL): its lease need not run
// out before the next apply takes it.
func ownerGone(owner string) bool {
	host, pid, ok := strings.Cut(owner, " pid ")
	me, err := os.Hostname()
	if !ok || err != nil || host != me {
		return false
	}
	n, err := strconv.Atoi(pid)
	if err != nil || n <= 0 || n == os.Getpid() {
		return false
	}
	return errors.Is(syscall.Kill(n, 0), syscall.ESRCH)
}
