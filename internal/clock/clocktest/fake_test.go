package clocktest

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"
)

var start = time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)

func TestNewReadsStart(t *testing.T) {
	if got := New(start).Now(); !got.Equal(start) {
		t.Errorf("Now = %v, want %v", got, start)
	}
}

func TestSleepAdvancesAtOnce(t *testing.T) {
	f := New(start)
	began := time.Now()
	if err := f.Sleep(context.Background(), time.Hour); err != nil {
		t.Fatal(err)
	}
	if got := f.Now(); !got.Equal(start.Add(time.Hour)) {
		t.Errorf("Now after Sleep(1h) = %v, want %v", got, start.Add(time.Hour))
	}
	if d := time.Since(began); d > time.Second {
		t.Errorf("a fake Sleep took %s of real time", d)
	}
}

func TestSleepNonPositiveKeepsTime(t *testing.T) {
	f := New(start)
	if err := f.Sleep(context.Background(), -time.Minute); err != nil {
		t.Fatal(err)
	}
	if got := f.Now(); !got.Equal(start) {
		t.Errorf("Now after Sleep(-1m) = %v, want %v", got, start)
	}
}

func TestSleepDoneContext(t *testing.T) {
	f := New(start)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := f.Sleep(ctx, time.Minute); !errors.Is(err, context.Canceled) {
		t.Fatalf("Sleep = %v, want context.Canceled", err)
	}
	if got := f.Now(); !got.Equal(start) {
		t.Errorf("an interrupted Sleep moved the time to %v", got)
	}
}

func TestAdvance(t *testing.T) {
	f := New(start)
	f.Advance(90 * time.Second)
	f.Advance(-time.Hour)
	if got := f.Now(); !got.Equal(start.Add(90 * time.Second)) {
		t.Errorf("Now = %v, want %v", got, start.Add(90*time.Second))
	}
}

func TestConcurrentSleeps(t *testing.T) {
	f := New(start)
	var wg sync.WaitGroup
	for range 50 {
		wg.Go(func() { _ = f.Sleep(context.Background(), time.Second) })
	}
	wg.Wait()
	if got := f.Now(); !got.Equal(start.Add(50 * time.Second)) {
		t.Errorf("Now after 50 concurrent 1s sleeps = %v, want %v", got, start.Add(50*time.Second))
	}
}
