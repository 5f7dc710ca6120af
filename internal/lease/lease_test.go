package lease

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	cerrdefs "github.com/containerd/errdefs"

	"github.com/releasekit/terraform-provider-release/internal/clock/clocktest"
	"github.com/releasekit/terraform-provider-release/internal/docker"
)

var epoch = time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)

// fakeHost is a Docker host that knows containers by name and ID, refuses
// a second container of one name as Docker does, and keeps their files.
type fakeHost struct {
	mu      sync.Mutex
	next    int
	byName  map[string]*fakeContainer
	removed []string
	renews  int
	// beforeReadDir runs before each ReadDir, to change the host mid-Acquire.
	beforeReadDir func()
}

type fakeContainer struct {
	id     string
	labels map[string]string
	files  map[string][]byte
}

func newFakeHost() *fakeHost { return &fakeHost{byName: map[string]*fakeContainer{}} }

func (h *fakeHost) Create(_ context.Context, spec docker.ContainerSpec) (string, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if c, ok := h.byName[spec.Name]; ok {
		return "", fmt.Errorf("creating container %s: the name is in use by %s: %w", spec.Name, c.id, cerrdefs.ErrConflict)
	}
	h.next++
	c := &fakeContainer{id: fmt.Sprintf("c%d", h.next), labels: spec.Labels, files: map[string][]byte{}}
	h.byName[spec.Name] = c
	return c.id, nil
}

func (h *fakeHost) find(ref string) (string, *fakeContainer) {
	for name, c := range h.byName {
		if name == ref || c.id == ref {
			return name, c
		}
	}
	return "", nil
}

func (h *fakeHost) Inspect(_ context.Context, ref string) (docker.Container, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	name, c := h.find(ref)
	if c == nil {
		return docker.Container{}, fmt.Errorf("no such container %s: %w", ref, cerrdefs.ErrNotFound)
	}
	return docker.Container{ID: c.id, Name: name, Labels: c.labels, State: "created"}, nil
}

func (h *fakeHost) Remove(_ context.Context, ref string) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	name, c := h.find(ref)
	if c == nil {
		return nil
	}
	delete(h.byName, name)
	h.removed = append(h.removed, c.id)
	return nil
}

func (h *fakeHost) CopyFiles(_ context.Context, id, dir string, files []docker.File) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	_, c := h.find(id)
	if c == nil {
		return fmt.Errorf("no such container %s: %w", id, cerrdefs.ErrNotFound)
	}
	for _, f := range files {
		c.files[strings.TrimPrefix(dir+"/"+f.Path, "/")] = f.Content
	}
	h.renews++
	return nil
}

func (h *fakeHost) ReadDir(_ context.Context, id, dir string) (map[string][]byte, error) {
	if h.beforeReadDir != nil {
		h.beforeReadDir()
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	_, c := h.find(id)
	if c == nil {
		return nil, fmt.Errorf("no such container %s: %w", id, cerrdefs.ErrNotFound)
	}
	out := map[string][]byte{}
	for p, b := range c.files {
		if rest, ok := strings.CutPrefix("/"+strings.TrimLeft(p, "/"), dir+"/"); ok && !strings.Contains(rest, "/") {
			out[rest] = b
		}
	}
	return out, nil
}

func (h *fakeHost) holder(router string) *fakeContainer {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.byName[ContainerName(router)]
}

const image = "haproxy:test"

func TestAcquireFree(t *testing.T) {
	h, clk := newFakeHost(), clocktest.New(epoch)
	l, err := Acquire(context.Background(), h, "edge", image, time.Minute, 10*time.Second, clk)
	if err != nil {
		t.Fatal(err)
	}
	c := h.holder("edge")
	if c == nil || c.id != l.ContainerID {
		t.Fatalf("the lease container is %+v, want %s", c, l.ContainerID)
	}
	if c.labels[LabelRouter] != "edge" || c.labels[LabelApply] != l.Apply || c.labels[LabelOwner] != Owner() || c.labels[LabelTaken] == "" {
		t.Errorf("labels %v do not name the router, the apply and its owner", c.labels)
	}
	if !strings.Contains(l.Owner, " pid ") || len(l.Apply) != 16 {
		t.Errorf("owner %q, apply %q", l.Owner, l.Apply)
	}
	if !l.Expires().Equal(epoch.Add(time.Minute)) {
		t.Errorf("expires %s, want a minute after it was taken", l.Expires())
	}
	if waited := clk.Now().Sub(epoch); waited != 0 {
		t.Errorf("a free router was waited for for %s", waited)
	}
}

func TestSecondAcquireWaitsThenNamesTheHolder(t *testing.T) {
	h, clk := newFakeHost(), clocktest.New(epoch)
	first, err := Acquire(context.Background(), h, "edge", image, 10*time.Minute, 0, clk)
	if err != nil {
		t.Fatal(err)
	}
	_, err = Acquire(context.Background(), h, "edge", image, 10*time.Minute, 30*time.Second, clk)
	var held *HeldError
	if !errors.As(err, &held) {
		t.Fatalf("second Acquire = %v, want a *HeldError", err)
	}
	if held.Router != "edge" || held.Apply != first.Apply || held.Owner != first.Owner || !held.Since.Equal(epoch) || !held.Expires.Equal(epoch.Add(10*time.Minute)) {
		t.Errorf("HeldError %+v does not describe the first lease %+v", held, first)
	}
	for _, want := range []string{"router edge", first.Apply, first.Owner, epoch.Format(time.RFC3339)} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("%q does not say %q", err, want)
		}
	}
	if waited := clk.Now().Sub(epoch); waited != 30*time.Second {
		t.Errorf("waited %s, want the whole 30s", waited)
	}
	if c := h.holder("edge"); c == nil || c.id != first.ContainerID {
		t.Error("the waiting apply touched the held lease")
	}
}

func TestAcquireTakesTheLeaseWhenReleasedDuringTheWait(t *testing.T) {
	h, clk := newFakeHost(), clocktest.New(epoch)
	first, err := Acquire(context.Background(), h, "edge", image, 10*time.Minute, 0, clk)
	if err != nil {
		t.Fatal(err)
	}
	reads := 0
	h.beforeReadDir = func() {
		if reads++; reads == 3 {
			if err := first.Release(context.Background()); err != nil {
				t.Error(err)
			}
		}
	}
	second, err := Acquire(context.Background(), h, "edge", image, 10*time.Minute, time.Minute, clk)
	if err != nil {
		t.Fatalf("Acquire after a release = %v", err)
	}
	if second.ContainerID == first.ContainerID {
		t.Error("the second lease is the first one")
	}
	if waited := clk.Now().Sub(epoch); waited != 2*Poll+settleDelay {
		t.Errorf("waited %s, want two polls and a moment for the release", waited)
	}
}

func TestStaleLeaseIsTakenOver(t *testing.T) {
	h, clk := newFakeHost(), clocktest.New(epoch)
	first, err := Acquire(context.Background(), h, "edge", image, time.Minute, 0, clk)
	if err != nil {
		t.Fatal(err)
	}
	clk.Advance(time.Minute) // the holder was killed: no renewal
	second, err := Acquire(context.Background(), h, "edge", image, time.Minute, 0, clk)
	if err != nil {
		t.Fatalf("Acquire of a stale lease = %v", err)
	}
	if len(h.removed) != 1 || h.removed[0] != first.ContainerID {
		t.Errorf("removed %v, want only the stale lease %s", h.removed, first.ContainerID)
	}
	if c := h.holder("edge"); c == nil || c.id != second.ContainerID || c.labels[LabelApply] != second.Apply {
		t.Errorf("the lease on the host is %+v, want the new one", c)
	}
}

func TestRenewedLeaseIsNotStale(t *testing.T) {
	h, clk := newFakeHost(), clocktest.New(epoch)
	first, err := Acquire(context.Background(), h, "edge", image, time.Minute, 0, clk)
	if err != nil {
		t.Fatal(err)
	}
	clk.Advance(50 * time.Second)
	if err := first.Renew(context.Background()); err != nil {
		t.Fatal(err)
	}
	clk.Advance(50 * time.Second) // past the first expiry, before the renewed one
	_, err = Acquire(context.Background(), h, "edge", image, time.Minute, 0, clk)
	var held *HeldError
	if !errors.As(err, &held) || !held.Expires.Equal(epoch.Add(110*time.Second)) {
		t.Fatalf("Acquire = %v, want the renewed lease held until %s", err, epoch.Add(110*time.Second))
	}
	if len(h.removed) != 0 {
		t.Errorf("removed %v, a renewed lease", h.removed)
	}
}

func TestStaleLeaseRenewedDuringTheCheckIsKept(t *testing.T) {
	h, clk := newFakeHost(), clocktest.New(epoch)
	first, err := Acquire(context.Background(), h, "edge", image, time.Minute, 0, clk)
	if err != nil {
		t.Fatal(err)
	}
	clk.Advance(2 * time.Minute)
	reads := 0
	h.beforeReadDir = func() {
		if reads++; reads == 2 { // between the first look and the look before the removal
			if err := first.Renew(context.Background()); err != nil {
				t.Error(err)
			}
		}
	}
	_, err = Acquire(context.Background(), h, "edge", image, time.Minute, 0, clk)
	var held *HeldError
	if !errors.As(err, &held) || held.Apply != first.Apply {
		t.Fatalf("Acquire = %v, want the lease renewed under it held", err)
	}
	if len(h.removed) != 0 {
		t.Errorf("removed %v, a lease renewed before the removal", h.removed)
	}
}

func TestRenewExtends(t *testing.T) {
	h, clk := newFakeHost(), clocktest.New(epoch)
	l, err := Acquire(context.Background(), h, "edge", image, time.Minute, 0, clk)
	if err != nil {
		t.Fatal(err)
	}
	clk.Advance(40 * time.Second)
	if err := l.Renew(context.Background()); err != nil {
		t.Fatal(err)
	}
	want := epoch.Add(100 * time.Second)
	if !l.Expires().Equal(want) {
		t.Errorf("expires %s after the renewal, want %s", l.Expires(), want)
	}
	got, found, err := read(context.Background(), h, "edge")
	if err != nil || !found || !got.expires.Equal(want) {
		t.Errorf("the host holds expiry %s (found %v, %v), want %s", got.expires, found, err, want)
	}
}

func TestRenewOfALostLeaseFails(t *testing.T) {
	h, clk := newFakeHost(), clocktest.New(epoch)
	first, _ := Acquire(context.Background(), h, "edge", image, time.Minute, 0, clk)
	clk.Advance(2 * time.Minute)
	second, err := Acquire(context.Background(), h, "edge", image, time.Minute, 0, clk)
	if err != nil {
		t.Fatal(err)
	}
	err = first.Renew(context.Background())
	var lost *LostError
	if !errors.As(err, &lost) || !strings.Contains(err.Error(), second.Apply) {
		t.Fatalf("Renew of a lease taken over = %v, want a *LostError naming %s", err, second.Apply)
	}
}

func TestReleaseOfSomeoneElsesLeaseIsRefused(t *testing.T) {
	h, clk := newFakeHost(), clocktest.New(epoch)
	first, _ := Acquire(context.Background(), h, "edge", image, time.Minute, 0, clk)
	clk.Advance(2 * time.Minute)
	second, err := Acquire(context.Background(), h, "edge", image, time.Minute, 0, clk)
	if err != nil {
		t.Fatal(err)
	}
	err = first.Release(context.Background())
	var lost *LostError
	if !errors.As(err, &lost) || !strings.Contains(err.Error(), second.Apply) {
		t.Fatalf("Release of a lease taken over = %v, want a *LostError naming the holder", err)
	}
	if c := h.holder("edge"); c == nil || c.id != second.ContainerID {
		t.Fatal("the stale holder's Release removed the new lease")
	}
	if err := second.Release(context.Background()); err != nil {
		t.Fatal(err)
	}
	if h.holder("edge") != nil {
		t.Error("the holder's Release left the lease")
	}
	if err := second.Release(context.Background()); err != nil {
		t.Errorf("a second Release = %v, want nothing to do", err)
	}
}

func TestReleaseRunsAfterCancel(t *testing.T) {
	h, clk := newFakeHost(), clocktest.New(epoch)
	l, _ := Acquire(context.Background(), h, "edge", image, time.Minute, 0, clk)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := l.Release(ctx); err != nil || h.holder("edge") != nil {
		t.Errorf("Release with a cancelled context = %v, lease left: %v", err, h.holder("edge") != nil)
	}
}

func TestAForeignContainerIsNeverRemoved(t *testing.T) {
	h, clk := newFakeHost(), clocktest.New(epoch)
	if _, err := h.Create(context.Background(), docker.ContainerSpec{Name: ContainerName("edge")}); err != nil {
		t.Fatal(err)
	}
	_, err := Acquire(context.Background(), h, "edge", image, time.Minute, 0, clk)
	var foreign *NotLeaseError
	if !errors.As(err, &foreign) || len(h.removed) != 0 {
		t.Fatalf("Acquire over a foreign container = %v (removed %v), want a *NotLeaseError and nothing removed", err, h.removed)
	}
}

func TestKeepRenewsUntilStopped(t *testing.T) {
	h, clk := newFakeHost(), clocktest.New(epoch)
	l, err := Acquire(context.Background(), h, "edge", image, time.Minute, 0, clk)
	if err != nil {
		t.Fatal(err)
	}
	stop := l.Keep(context.Background(), 20*time.Second)
	deadline := time.Now().Add(5 * time.Second)
	for {
		h.mu.Lock()
		n := h.renews
		h.mu.Unlock()
		if n >= 3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("Keep renewed %d times in 5s", n)
		}
		time.Sleep(time.Millisecond)
	}
	stop()
	h.mu.Lock()
	after := h.renews
	h.mu.Unlock()
	time.Sleep(10 * time.Millisecond)
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.renews != after {
		t.Errorf("renewed after stop: %d, then %d", after, h.renews)
	}
	if l.Err() != nil {
		t.Errorf("Err = %v", l.Err())
	}
	// Each renewal moved the expiry to the fake time of that renewal plus the TTL.
	if !l.Expires().After(epoch.Add(time.Minute)) {
		t.Errorf("expires %s, want later than the first expiry", l.Expires())
	}
	stop() // stopping twice is harmless
}

func TestKeepStopsOnALostLease(t *testing.T) {
	h, clk := newFakeHost(), clocktest.New(epoch)
	l, _ := Acquire(context.Background(), h, "edge", image, time.Minute, 0, clk)
	if err := h.Remove(context.Background(), l.ContainerID); err != nil {
		t.Fatal(err)
	}
	stop := l.Keep(context.Background(), time.Second)
	defer stop()
	deadline := time.Now().Add(5 * time.Second)
	for l.Err() == nil {
		if time.Now().After(deadline) {
			t.Fatal("Keep did not report the lost lease")
		}
		time.Sleep(time.Millisecond)
	}
	var lost *LostError
	if !errors.As(l.Err(), &lost) || lost.Holder != "nobody" {
		t.Errorf("Err = %v, want a *LostError", l.Err())
	}
}

func TestSharedHoldsOneLeasePerRouterUntilTheLastRelease(t *testing.T) {
	h, clk := newFakeHost(), clocktest.New(epoch)
	s := &Shared{Host: h, Clock: clk, TTL: time.Hour, Wait: 0}
	ctx := context.Background()
	a, releaseA, err := s.Hold(ctx, "edge", image)
	if err != nil {
		t.Fatal(err)
	}
	b, releaseB, err := s.Hold(ctx, "edge", image)
	if err != nil || b != a {
		t.Fatalf("a second hold in the same apply = %v, %v; want the same lease", b, err)
	}
	// Another apply (another process) is refused meanwhile.
	if _, err := Acquire(ctx, h, "edge", image, time.Hour, 0, clk); err == nil {
		t.Fatal("another apply took a held router")
	}
	if err := releaseA(ctx); err != nil || h.holder("edge") == nil {
		t.Fatalf("the first release = %v and left no lease; want the lease kept for the second hold", err)
	}
	if err := releaseA(ctx); err != nil || h.holder("edge") == nil {
		t.Fatal("releasing one hold twice gave the lease back")
	}
	if err := releaseB(ctx); err != nil || h.holder("edge") != nil {
		t.Fatalf("the last release = %v; want the lease gone", err)
	}
	c, releaseC, err := s.Hold(ctx, "edge", image)
	if err != nil || c == a {
		t.Fatalf("a hold after the last release = %v, %v; want a new lease", c, err)
	}
	_ = releaseC(ctx)
}

// A lease whose owner was a process on this machine that is gone (a killed
// pipeline) is taken at once, without waiting for it to run out.
func TestOwnerGone(t *testing.T) {
	me, _ := os.Hostname()
	cmd := exec.Command("true")
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	dead := cmd.Process.Pid // reaped: no such process now
	for owner, want := range map[string]bool{
		me + " pid " + strconv.Itoa(dead):         true,
		me + " pid " + strconv.Itoa(os.Getpid()):  false,
		me + " pid " + strconv.Itoa(os.Getppid()): false,
		"another-host pid " + strconv.Itoa(dead):  false,
		"garbage":                                 false,
	} {
		if got := ownerGone(owner); got != want {
			t.Errorf("ownerGone(%q) = %v, want %v", owner, got, want)
		}
	}
}
