package lease

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/releasekit/terraform-provider-release/internal/clock"
	"github.com/releasekit/terraform-provider-release/internal/docker"
)

// On the real Docker Engine: of applies that take a router's lease at the
// same moment exactly one wins, the expiry written into the never-started
// container reads back, and a stale lease is taken over.
func TestDockerExactlyOneWins(t *testing.T) {
	image := os.Getenv("RELEASE_TEST_HAPROXY_IMAGE")
	if image == "" {
		t.Skip("RELEASE_TEST_HAPROXY_IMAGE is not set: start the test stack (scripts/stack.sh up)")
	}
	ctx := context.Background()
	e := docker.NewEngine(docker.NewConnector(docker.ConfigFromEnv()))
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	router := "leasetest-" + hex.EncodeToString(b)
	t.Cleanup(func() { _ = e.Remove(context.Background(), ContainerName(router)) })

	const applies = 6
	var (
		wg     sync.WaitGroup
		start  = make(chan struct{})
		leases = make([]*Lease, applies)
		errs   = make([]error, applies)
	)
	for i := range applies {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			leases[i], errs[i] = Acquire(ctx, e, router, image, time.Minute, 0, clock.Real{})
		}()
	}
	close(start)
	wg.Wait()
	var won *Lease
	for i := range applies {
		var held *HeldError
		switch {
		case errs[i] == nil && won == nil:
			won = leases[i]
		case errs[i] == nil:
			t.Fatalf("two applies hold the lease: %s and %s", won.Apply, leases[i].Apply)
		case !errors.As(errs[i], &held):
			t.Fatalf("apply %d: %v, want a *HeldError", i, errs[i])
		}
	}
	if won == nil {
		t.Fatal("no apply took the lease")
	}
	for i := range applies {
		if errs[i] != nil {
			var held *HeldError
			errors.As(errs[i], &held)
			if held.Apply != won.Apply {
				t.Errorf("apply %d was told %q holds the router, want %s", i, held.Apply, won.Apply)
			}
		}
	}
	c, err := e.Inspect(ctx, ContainerName(router))
	if err != nil || c.State != "created" {
		t.Fatalf("the lease container is %q (%v), want created and never started", c.State, err)
	}

	// The renewed expiry is written into the container and read back by the next apply.
	if err := won.Renew(ctx); err != nil {
		t.Fatal(err)
	}
	_, err = Acquire(ctx, e, router, image, time.Minute, 0, clock.Real{})
	var held *HeldError
	if !errors.As(err, &held) || !held.Expires.Equal(won.Expires().Truncate(0)) {
		t.Fatalf("Acquire after a renewal = %v, want held until %s", err, won.Expires())
	}
	if err := won.Release(ctx); err != nil {
		t.Fatal(err)
	}

	// A lease whose holder stopped renewing is taken over.
	short, err := Acquire(ctx, e, router, image, 200*time.Millisecond, 0, clock.Real{})
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	next, err := Acquire(ctx, e, router, image, time.Minute, 0, clock.Real{})
	if err != nil {
		t.Fatalf("Acquire of a stale lease = %v", err)
	}
	if err := short.Release(ctx); err == nil {
		t.Error("the stale holder released the new lease")
	}
	if err := next.Release(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := e.Inspect(ctx, ContainerName(router)); !docker.IsNotFound(err) {
		t.Errorf("the lease remains after its release: %v", err)
	}
}
