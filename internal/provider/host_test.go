package provider

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Every environment of a refresh asks at once: one read serves them all.
func TestHostSnapshotSharesOneReadAmongConcurrentCallers(t *testing.T) {
	s := &hostSnapshot{}
	var fetches atomic.Int32
	release := make(chan struct{})
	fetch := func(context.Context) (any, error) {
		fetches.Add(1)
		<-release
		return "listing", nil
	}
	var wg sync.WaitGroup
	for i := 0; i < 50; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if v, err := s.get(context.Background(), "listing", fetch); err != nil || v != "listing" {
				t.Errorf("get = %v, %v", v, err)
			}
		}()
	}
	time.Sleep(20 * time.Millisecond)
	close(release)
	wg.Wait()
	if _, err := s.get(context.Background(), "listing", fetch); err != nil {
		t.Fatal(err)
	}
	if n := fetches.Load(); n != 1 {
		t.Errorf("%d reads for 51 callers, want 1", n)
	}
}

// Routers are read side by side: a slow router does not hold up another's read.
func TestHostSnapshotReadsDifferentKeysConcurrently(t *testing.T) {
	s := &hostSnapshot{}
	slow := make(chan struct{})
	defer close(slow)
	go s.get(context.Background(), "files/slow", func(context.Context) (any, error) { <-slow; return nil, nil })
	time.Sleep(10 * time.Millisecond)
	done := make(chan struct{})
	go func() {
		s.get(context.Background(), "files/fast", func(context.Context) (any, error) { return "fast", nil })
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(2 * time.Second):
		t.Fatal("the read of one router waited for another's")
	}
}

// A failed read is reported to its callers and not kept.
func TestHostSnapshotDoesNotKeepErrors(t *testing.T) {
	s := &hostSnapshot{}
	calls := 0
	fetch := func(context.Context) (any, error) {
		calls++
		if calls == 1 {
			return nil, errors.New("daemon busy")
		}
		return "ok", nil
	}
	if _, err := s.get(context.Background(), "listing", fetch); err == nil {
		t.Fatal("the first read's error was not reported")
	}
	if v, err := s.get(context.Background(), "listing", fetch); err != nil || v != "ok" {
		t.Fatalf("second get = %v, %v; want a new read", v, err)
	}
}

// A change made by this process drops what was read before it, including a
// read under way when the change ended: whoever asks after the change reads
// the host again.
func TestHostSnapshotInvalidateDropsReadsUnderWay(t *testing.T) {
	s := &hostSnapshot{}
	var fetches atomic.Int32
	started, release := make(chan struct{}), make(chan struct{})
	go s.get(context.Background(), "listing", func(context.Context) (any, error) {
		fetches.Add(1)
		close(started)
		<-release
		return "before the change", nil
	})
	<-started
	s.invalidate()
	got := make(chan any)
	go func() {
		v, _ := s.get(context.Background(), "listing", func(context.Context) (any, error) {
			fetches.Add(1)
			return "after the change", nil
		})
		got <- v
	}()
	if v := <-got; v != "after the change" {
		t.Errorf("a read after the change got %q", v)
	}
	close(release)
	time.Sleep(10 * time.Millisecond)
	v, _ := s.get(context.Background(), "listing", func(context.Context) (any, error) { fetches.Add(1); return "third", nil })
	if v != "after the change" {
		t.Errorf("the read under way at the change was kept: got %q", v)
	}
	if n := fetches.Load(); n != 2 {
		t.Errorf("%d reads, want 2", n)
	}
}

// An entry is reused for snapshotTTL at most, and expired ones are dropped,
// so a provider that keeps running holds no more than the current reads.
func TestHostSnapshotExpiresAndStaysBounded(t *testing.T) {
	now := time.Unix(1000, 0)
	s := &hostSnapshot{now: func() time.Time { return now }}
	reads := 0
	fetch := func(context.Context) (any, error) { reads++; return reads, nil }
	s.get(context.Background(), "listing", fetch)
	now = now.Add(snapshotTTL - time.Second)
	if v, _ := s.get(context.Background(), "listing", fetch); v != 1 {
		t.Errorf("within the TTL got read %v, want the first", v)
	}
	now = now.Add(time.Second)
	if v, _ := s.get(context.Background(), "listing", fetch); v != 2 {
		t.Errorf("after the TTL got read %v, want a new one", v)
	}
	// Routers come and go (new container IDs): old ones do not pile up.
	for i := 0; i < 100; i++ {
		now = now.Add(snapshotTTL / 10)
		s.get(context.Background(), fmt.Sprintf("files/router-%d", i), fetch)
	}
	s.mu.Lock()
	n := len(s.entries)
	s.mu.Unlock()
	if n > 11 {
		t.Errorf("%d entries kept, want at most the last TTL's 11", n)
	}
}

// A caller whose context ends stops waiting for a shared read.
func TestHostSnapshotWaiterHonoursContext(t *testing.T) {
	s := &hostSnapshot{}
	release := make(chan struct{})
	defer close(release)
	go s.get(context.Background(), "listing", func(context.Context) (any, error) { <-release; return nil, nil })
	time.Sleep(10 * time.Millisecond)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if _, err := s.get(ctx, "listing", func(context.Context) (any, error) { return nil, nil }); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("err = %v, want the context's", err)
	}
}
