package router

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

func TestReloadLoadingFailure(t *testing.T) {
	f := newFakeRouter(t)
	f.afterSignal = []string{reloading + failure}
	err := newController(f).Reload(context.Background(), "router-1")
	var re *ReloadError
	if !errors.As(err, &re) {
		t.Fatalf("Reload = %v, want *ReloadError", err)
	}
	if !strings.Contains(re.Output, "unknown keyword") {
		t.Errorf("ReloadError lacks HAProxy's message: %q", re.Output)
	}
	if !strings.HasPrefix(re.Output, "Reloading HAProxy") {
		t.Errorf("ReloadError output should start at our reload: %q", re.Output)
	}
}

func TestReloadIgnoresEarlierFailure(t *testing.T) {
	f := newFakeRouter(t)
	// An earlier reload failed; ours succeeds.
	f.logsBefore = reloading + failure
	f.afterSignal = []string{reloading + success}
	f.procs = [][]string{haproxyProcs(2)}
	if err := newController(f).Reload(context.Background(), "router-1"); err != nil {
		t.Fatalf("Reload = %v, want nil: only what follows the last reload counts", err)
	}
}

func TestReloadWaitsForItsOwnReload(t *testing.T) {
	// Another environment reloaded the router less than a second ago: its
	// "Reloading HAProxy ... Loading success" is inside the log window.
	// Our reload only counts once HAProxy logs it.
	f := newFakeRouter(t)
	f.logsBefore = reloading + success
	f.afterSignal = []string{"", "", reloading + success}
	f.procs = [][]string{haproxyProcs(2)}
	c, _ := controller(f)
	c.DrainTimeout = 5 * time.Second
	if err := c.Reload(context.Background(), "router-1"); err != nil {
		t.Fatal(err)
	}
	if f.logCalls < 3 {
		t.Errorf("Reload returned after %d log reads, on the earlier reload's success", f.logCalls)
	}
}

func TestReloadFailureAfterEarlierSuccess(t *testing.T) {
	f := newFakeRouter(t)
	f.logsBefore = reloading + success
	f.afterSignal = []string{"", reloading + failure}
	f.procs = [][]string{haproxyProcs(2)}
	c, _ := controller(f)
	c.DrainTimeout = 5 * time.Second
	var re *ReloadError
	if err := c.Reload(context.Background(), "router-1"); !errors.As(err, &re) {
		t.Fatalf("Reload = %v, want *ReloadError: our reload failed", err)
	}
}

func TestReloadNotConfirmed(t *testing.T) {
	f := newFakeRouter(t)
	f.afterSignal = []string{reloading} // never says success or failure
	c, clk := controller(f)
	c.DrainTimeout = 30 * time.Second
	c.Poll = 25 * time.Millisecond
	began := time.Now()
	err := c.Reload(context.Background(), "router-1")
	if err == nil || !strings.Contains(err.Error(), "did not confirm the reload within 30s") {
		t.Fatalf("Reload = %v, want an unconfirmed reload error naming the timeout", err)
	}
	var re *ReloadError
	if errors.As(err, &re) {
		t.Errorf("an unconfirmed reload is not a refused configuration: %v", err)
	}
	// It waited the whole drain timeout and polled throughout, on the fake clock.
	if waited := clk.Now().Sub(epoch); waited < 30*time.Second || waited > 30*time.Second+c.Poll {
		t.Errorf("gave up after %s, want the 30s drain timeout", waited)
	}
	if want := int(30 * time.Second / c.Poll); f.logCalls < want {
		t.Errorf("logs read %d times, want about %d (every poll)", f.logCalls, want)
	}
	if d := time.Since(began); d > 5*time.Second {
		t.Errorf("a 30s fake timeout took %s of real time", d)
	}
}

func TestReloadConfirmedJustBeforeTimeout(t *testing.T) {
	f := newFakeRouter(t)
	polls := int(30*time.Second/(25*time.Millisecond)) - 1
	f.afterSignal = make([]string, polls)
	for i := range f.afterSignal {
		f.afterSignal[i] = reloading
	}
	f.afterSignal[polls-1] = reloading + success
	f.procs = [][]string{haproxyProcs(2)}
	c, clk := controller(f)
	c.DrainTimeout = 30 * time.Second
	c.Poll = 25 * time.Millisecond
	if err := c.Reload(context.Background(), "router-1"); err != nil {
		t.Fatalf("Reload = %v, want nil: HAProxy confirmed within the drain timeout", err)
	}
	if waited := clk.Now().Sub(epoch); waited >= 30*time.Second {
		t.Errorf("returned at %s, want before the 30s timeout", waited)
	}
}

func TestReloadOldWorkersPastDrainTimeout(t *testing.T) {
	f := newFakeRouter(t)
	f.afterSignal = []string{reloading + success}
	f.procs = [][]string{haproxyProcs(3)} // an old worker never leaves
	c, clk := controller(f)
	c.DrainTimeout = 50 * time.Millisecond
	if err := c.Reload(context.Background(), "router-1"); err != nil {
		t.Fatalf("Reload = %v; old workers are left to hard-stop-after", err)
	}
	if waited := clk.Now().Sub(epoch); waited < 50*time.Millisecond {
		t.Errorf("returned after %s with 3 processes, before the drain timeout", waited)
	}
	if f.procCalls < 2 {
		t.Errorf("process count read %d times, want it polled", f.procCalls)
	}
}

func TestReloadSignalError(t *testing.T) {
	f := newFakeRouter(t)
	f.signalErr = errors.New("no such container")
	err := newController(f).Reload(context.Background(), "router-1")
	if err == nil || !strings.Contains(err.Error(), "no such container") {
		t.Fatalf("Reload = %v, want the signal error", err)
	}
}

func TestReloadCancelled(t *testing.T) {
	f := newFakeRouter(t)
	f.afterSignal = []string{""}
	c, clk := controller(f)
	c.DrainTimeout = 10 * time.Second
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	f.onSignal = cancel // cancelled while it waits for the confirmation
	if err := c.Reload(ctx, "router-1"); !errors.Is(err, context.Canceled) {
		t.Fatalf("Reload = %v, want the context's error", err)
	}
	if waited := clk.Now().Sub(epoch); waited != 0 {
		t.Errorf("the clock moved %s after the context ended", waited)
	}
}

func TestControllerNilClockIsWallClock(t *testing.T) {
	f := newFakeRouter(t)
	f.afterSignal = []string{reloading} // never confirmed
	c := &Controller{Docker: f, DrainTimeout: 50 * time.Millisecond, Poll: 5 * time.Millisecond}
	began := time.Now()
	var ue *ReloadUnconfirmedError
	if err := c.Reload(context.Background(), "router-1"); !errors.As(err, &ue) {
		t.Fatalf("Reload = %v, want *ReloadUnconfirmedError", err)
	}
	if d := time.Since(began); d < 50*time.Millisecond {
		t.Errorf("gave up after %s of wall time, want the 50ms drain timeout", d)
	}
	if len(f.daemonSeen) != 1 || len(f.sinceSeen) == 0 || !f.sinceSeen[0].Equal(f.daemonSeen[0]) {
		t.Errorf("logs read since %v, want the daemon's time %v", f.sinceSeen, f.daemonSeen)
	}
}

func TestReloadOnADaemonClockBehindOurs(t *testing.T) {
	// A remote daemon 5s behind: its log lines are stamped 5s before our
	// clock's time. Logs read since our time (even a second before it) would
	// never show the reload.
	f := newFakeRouter(t)
	f.daemonBehind = 5 * time.Second
	d := &stampedLogs{fakeRouter: f, lines: []stampedLine{
		{at: epoch.Add(-time.Minute), text: reloading + success}, // an old reload
	}}
	f.onSignal = func() {
		d.lines = append(d.lines, stampedLine{at: f.clk.Now().Add(-5*time.Second + 10*time.Millisecond), text: reloading + success})
	}
	f.procs = [][]string{haproxyProcs(2)}
	c, clk := controller(f)
	c.Docker = d
	c.DrainTimeout = 10 * time.Second
	if err := c.Reload(context.Background(), "router-1"); err != nil {
		t.Fatalf("Reload = %v, want it confirmed by the daemon's own log times", err)
	}
	if waited := clk.Now().Sub(epoch); waited > time.Second {
		t.Errorf("confirmed after %s, want at once", waited)
	}
	for _, s := range f.sinceSeen {
		if want := epoch.Add(-5 * time.Second); !s.Equal(want) {
			t.Errorf("logs read since %v, want the daemon's time %v", s, want)
		}
	}
}

// stampedLogs is a router whose log lines carry the daemon's times, and
// LogsSince returns only the lines at or after since, as Docker's does.
type stampedLogs struct {
	*fakeRouter
	lines []stampedLine
}

type stampedLine struct {
	at   time.Time
	text string
}

func (d *stampedLogs) LogsSince(_ context.Context, _ string, since time.Time) (string, error) {
	d.sinceSeen = append(d.sinceSeen, since)
	var out strings.Builder
	for _, l := range d.lines {
		if !l.at.Before(since) {
			out.WriteString(l.text)
		}
	}
	return out.String(), nil
}
