package clock

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestRealSleepWaits(t *testing.T) {
	start := time.Now()
	if err := (Real{}).Sleep(context.Background(), 10*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d < 10*time.Millisecond {
		t.Errorf("Sleep(10ms) returned after %s", d)
	}
}

func TestRealSleepNonPositiveReturnsAtOnce(t *testing.T) {
	for _, d := range []time.Duration{0, -time.Hour} {
		if err := (Real{}).Sleep(context.Background(), d); err != nil {
			t.Errorf("Sleep(%s) = %v, want nil", d, err)
		}
	}
}

func TestRealSleepEndsWithContext(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	start := time.Now()
	if err := (Real{}).Sleep(ctx, time.Hour); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Sleep = %v, want the context's error", err)
	}
	if d := time.Since(start); d > time.Minute {
		t.Errorf("Sleep outlived its context by %s", d)
	}
}

func TestRealSleepDoneContextWins(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	for _, d := range []time.Duration{0, time.Hour} {
		if err := (Real{}).Sleep(ctx, d); !errors.Is(err, context.Canceled) {
			t.Errorf("Sleep(%s) on a cancelled context = %v, want context.Canceled", d, err)
		}
	}
}
