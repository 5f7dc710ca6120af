package router

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/releasekit/terraform-provider-release/internal/clock/clocktest"
	"github.com/releasekit/terraform-provider-release/internal/docker"
)

// fakeRouter is a router container: its configuration directory, the exit
// code of `haproxy -c`, and the logs and processes a reload produces.
type fakeRouter struct {
	t     *testing.T
	files map[string][]byte

	checkCode int
	checkOut  string
	checkErr  error
	// filesAtCheck is the directory as `haproxy -c` saw it.
	filesAtCheck map[string][]byte
	execs        [][]string

	signals   []string
	signalErr error
	// onSignal, if set, runs when the reload signal is sent.
	onSignal func()

	// logsBefore is the output before our reload; afterSignal is what
	// LogsSince returns on its n-th call after the signal (the last one repeats).
	logsBefore  string
	afterSignal []string
	logCalls    int
	sinceSeen   []time.Time

	// procs is what Processes returns on its n-th call (the last one repeats).
	procs     [][]string
	procCalls int
	// procsBeforeLoaded counts Processes calls made before the logs said "Loading success".
	procsBeforeLoaded int
	loadedShown       bool
}

func newFakeRouter(t *testing.T) *fakeRouter {
	return &fakeRouter{t: t, files: map[string][]byte{
		BaseFile:                   []byte("base v1\n"),
		"route_production_web.cfg": []byte("route v1\n"),
	}}
}

func (f *fakeRouter) CopyFiles(_ context.Context, id, dir string, files []docker.File) error {
	if id != "router-1" || dir != ConfigDir {
		f.t.Errorf("CopyFiles(%q, %q), want router-1 and %s", id, dir, ConfigDir)
	}
	for _, file := range files {
		f.files[file.Path] = append([]byte(nil), file.Content...)
	}
	return nil
}

func (f *fakeRouter) Architecture(context.Context) (string, error) { return "x86_64", nil }

func (f *fakeRouter) ReadDir(_ context.Context, id, dir string) (map[string][]byte, error) {
	out := map[string][]byte{}
	for k, v := range f.files {
		out[k] = append([]byte(nil), v...)
	}
	return out, nil
}

func (f *fakeRouter) Exec(_ context.Context, id string, cmd []string) (int, string, error) {
	f.execs = append(f.execs, cmd)
	f.filesAtCheck, _ = f.ReadDir(context.Background(), id, ConfigDir)
	return f.checkCode, f.checkOut, f.checkErr
}

func (f *fakeRouter) Signal(_ context.Context, id, signal string) error {
	f.signals = append(f.signals, signal)
	if f.onSignal != nil {
		f.onSignal()
	}
	return f.signalErr
}

func (f *fakeRouter) Processes(context.Context, string) ([]string, error) {
	if !f.loadedShown {
		f.procsBeforeLoaded++
	}
	if len(f.procs) == 0 {
		return []string{"haproxy -W -db -f " + ConfigDir, "haproxy -W -db -f " + ConfigDir}, nil
	}
	i := f.procCalls
	if i >= len(f.procs) {
		i = len(f.procs) - 1
	}
	f.procCalls++
	return f.procs[i], nil
}

func (f *fakeRouter) LogsSince(_ context.Context, id string, since time.Time) (string, error) {
	f.sinceSeen = append(f.sinceSeen, since)
	logs := f.logsBefore
	if len(f.signals) > 0 && len(f.afterSignal) > 0 {
		i := f.logCalls
		if i >= len(f.afterSignal) {
			i = len(f.afterSignal) - 1
		}
		f.logCalls++
		logs += f.afterSignal[i]
	}
	if strings.Contains(logs, "Loading success") {
		f.loadedShown = true
	}
	return logs, nil
}

func haproxyProcs(n int) []string {
	out := []string{"sh -c sleep"} // not counted
	for i := 0; i < n; i++ {
		out = append(out, "haproxy -W -db -f "+ConfigDir)
	}
	return out
}

const (
	reloading = "[NOTICE]   (1) : Reloading HAProxy\n"
	success   = "[NOTICE]   (1) : New worker (42) forked\n[NOTICE]   (1) : Loading success.\n"
	failure   = "[ALERT]    (1) : config : parsing [/usr/local/etc/haproxy/release/route_production_web.cfg:3] : unknown keyword\n[WARNING]  (1) : Loading failure!\n"
)

// epoch is where fake time starts.
var epoch = time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)

// controller is a Controller on a fake clock: its waits cost no real time.
func controller(f *fakeRouter) (*Controller, *clocktest.Fake) {
	clk := clocktest.New(epoch)
	return &Controller{Docker: f, DrainTimeout: 300 * time.Millisecond, Poll: time.Millisecond, Clock: clk}, clk
}

func newController(f *fakeRouter) *Controller {
	c, _ := controller(f)
	return c
}

func TestApplyRefusedCheckRestoresFiles(t *testing.T) {
	f := newFakeRouter(t)
	f.checkCode = 1
	f.checkOut = "[ALERT] config : parsing [route_production_web.cfg:2]: unknown keyword 'bogus'\n"
	c, _ := controller(f)

	err := c.Apply(context.Background(), "router-1", map[string][]byte{
		"route_production_web.cfg": []byte("route v2 bogus\n"),
		"route_staging_web.cfg":    []byte("new route\n"),
	})
	var re *ReloadError
	if !errors.As(err, &re) {
		t.Fatalf("Apply = %v (%T), want *ReloadError", err, err)
	}
	if !strings.Contains(re.Output, "unknown keyword 'bogus'") || !strings.Contains(err.Error(), "unknown keyword 'bogus'") {
		t.Errorf("the error does not carry HAProxy's output: %v", err)
	}
	// The check ran on the new files...
	if got := string(f.filesAtCheck["route_production_web.cfg"]); got != "route v2 bogus\n" {
		t.Errorf("haproxy -c saw %q, want the new route", got)
	}
	if want := [][]string{{"haproxy", "-c", "-q", "-f", ConfigDir}}; !reflect.DeepEqual(f.execs, want) {
		t.Errorf("exec = %v, want %v", f.execs, want)
	}
	// ...and the previous contents are back.
	if got := string(f.files["route_production_web.cfg"]); got != "route v1\n" {
		t.Errorf("route after a refused check = %q, want the previous %q", got, "route v1\n")
	}
	if got := f.files["route_staging_web.cfg"]; len(got) != 0 {
		t.Errorf("a file that did not exist before is %q after a refused check, want empty", got)
	}
	if got := string(f.files[BaseFile]); got != "base v1\n" {
		t.Errorf("base file changed: %q", got)
	}
	if len(f.signals) != 0 {
		t.Errorf("signals sent after a refused check: %v", f.signals)
	}
}

func TestApplyExecErrorRestoresFiles(t *testing.T) {
	f := newFakeRouter(t)
	f.checkErr = errors.New("container is not running")
	err := newController(f).Apply(context.Background(), "router-1", map[string][]byte{"route_production_web.cfg": []byte("route v2\n")})
	if err == nil || !strings.Contains(err.Error(), "container is not running") {
		t.Fatalf("Apply = %v, want the exec error", err)
	}
	if got := string(f.files["route_production_web.cfg"]); got != "route v1\n" {
		t.Errorf("route = %q, want the previous contents", got)
	}
	if len(f.signals) != 0 {
		t.Errorf("signals sent: %v", f.signals)
	}
}

func TestApplySuccessReloadsAndWaitsForDrain(t *testing.T) {
	f := newFakeRouter(t)
	f.logsBefore = "[NOTICE] (1) : Loading success.\n" // the start, before our reload
	f.afterSignal = []string{"", reloading, reloading + success}
	f.procs = [][]string{haproxyProcs(4), haproxyProcs(3), haproxyProcs(2)}
	c, _ := controller(f)
	c.DrainTimeout = 5 * time.Second

	if err := c.Apply(context.Background(), "router-1", map[string][]byte{"route_production_web.cfg": []byte("route v2\n")}); err != nil {
		t.Fatal(err)
	}
	if want := []string{"SIGUSR2"}; !reflect.DeepEqual(f.signals, want) {
		t.Errorf("signals = %v, want %v", f.signals, want)
	}
	if got := string(f.files["route_production_web.cfg"]); got != "route v2\n" {
		t.Errorf("route = %q, want the new contents", got)
	}
	// It waited for the reload to be confirmed, then for the old workers to go.
	if f.logCalls < 3 {
		t.Errorf("Reload returned after %d log reads, before HAProxy said Loading success", f.logCalls)
	}
	if f.procsBeforeLoaded != 0 {
		t.Errorf("process count checked %d times before the reload was confirmed", f.procsBeforeLoaded)
	}
	if f.procCalls != 3 {
		t.Errorf("Reload checked processes %d times, want 3 (4, 3, then 2 processes)", f.procCalls)
	}
	// Logs are read from a second before the reload, for clock differences with the daemon.
	for _, s := range f.sinceSeen {
		if want := epoch.Add(-time.Second); !s.Equal(want) {
			t.Errorf("logs read since %v, want %v", s, want)
		}
	}
}

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
	f.afterSignal = []string{reloading + success}
	f.procs = [][]string{haproxyProcs(2)}
	before := time.Now()
	if err := (&Controller{Docker: f}).Reload(context.Background(), "router-1"); err != nil {
		t.Fatal(err)
	}
	if len(f.sinceSeen) == 0 {
		t.Fatal("no logs read")
	}
	if s := f.sinceSeen[0]; s.After(before) || s.Before(before.Add(-2*time.Second)) {
		t.Errorf("logs read since %v, want a second before the wall-clock %v", s, before)
	}
}

func TestLockSerialisesPerRouter(t *testing.T) {
	unlock := Lock("router-a")
	// Another router is independent.
	done := make(chan struct{})
	go func() { Lock("router-b")(); close(done) }()
	select {
	case <-done:
	case <-time.After(2 * time.Second):
		t.Fatal("router-b waited for router-a's lock")
	}
	// The same router waits.
	got := make(chan struct{})
	go func() { Lock("router-a")(); close(got) }()
	select {
	case <-got:
		t.Fatal("a second Lock of router-a did not wait")
	case <-time.After(20 * time.Millisecond):
	}
	unlock()
	select {
	case <-got:
	case <-time.After(2 * time.Second):
		t.Fatal("the second Lock of router-a never got the lock")
	}
}
