package router

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/releasekit/terraform-provider-release/internal/clock/clocktest"
	"github.com/releasekit/terraform-provider-release/internal/docker"
	"github.com/releasekit/terraform-provider-release/internal/failpoint"
	"github.com/releasekit/terraform-provider-release/internal/probe"
)

// fakeRouter is a router container: its configuration directory, the
// answers of `haproxy -c` and of the probe's renames, and the logs and
// processes a reload produces. Events records what was done, in order.
type fakeRouter struct {
	t     *testing.T
	files map[string][]byte
	clk   *clocktest.Fake // set by controller; nil is the wall clock
	// daemonBehind is how far the daemon's clock is behind ours.
	daemonBehind time.Duration
	daemonSeen   []time.Time

	events  []string
	onEvent func(string) // also told each event as it happens
	// installs counts the probe's placements.
	installs int

	checkCode int
	checkOut  string
	checkErr  error
	// checks are the `haproxy -c` commands; filesAtCheck is the directory as the last one saw it.
	checks       [][]string
	filesAtCheck map[string][]byte

	// renameCode is the probe's exit code for -rename (1: nothing renamed);
	// renameErr is an answer lost after the renames were done.
	renameCode int
	renameErr  error

	// busy are servers with connections, which HAProxy does not delete.
	busy map[string]bool
	// cli answers the runtime API; nil: the router has no socket.
	cli func(command string) string

	signals   []string
	signalErr error
	// onSignal, if set, runs when the reload signal is sent.
	onSignal func()

	// logsBefore is the output before our reload; afterSignal is what
	// LogsSince returns on its n-th call after the signal (the last one
	// repeats); eachReload is logged again for each signal.
	logsBefore  string
	afterSignal []string
	eachReload  string
	logCalls    int
	sinceSeen   []time.Time

	// procs is what Processes returns on its n-th call (the last one repeats).
	procs     [][]string
	procCalls int
	procErr   error
	// procsBeforeLoaded counts Processes calls made before the logs said "Loading success".
	procsBeforeLoaded int
	loadedShown       bool
}

func newFakeRouter(t *testing.T) *fakeRouter {
	return &fakeRouter{t: t, files: map[string][]byte{
		BaseFile:                   []byte("base v1\n"),
		"route_production_web.cfg": []byte(routeV1),
	}}
}

func (f *fakeRouter) event(e string) {
	f.events = append(f.events, e)
	if f.onEvent != nil {
		f.onEvent(e)
	}
}

func (f *fakeRouter) snapshot() map[string][]byte {
	out := map[string][]byte{}
	for k, v := range f.files {
		out[k] = append([]byte(nil), v...)
	}
	return out
}

func (f *fakeRouter) CopyFiles(_ context.Context, id, dir string, files []docker.File) error {
	if dir == path.Dir(probe.Path) && len(files) == 1 && files[0].Path == path.Base(probe.Path) {
		f.installs++
		f.event("install " + id)
		return nil
	}
	if id != "router-1" || dir != ConfigDir {
		f.t.Errorf("CopyFiles(%q, %q), want router-1 and %s", id, dir, ConfigDir)
	}
	var names []string
	for _, file := range files {
		if !strings.HasPrefix(file.Path, stagePrefix) {
			f.t.Errorf("%s was written in place, not staged", file.Path)
		}
		f.files[file.Path] = append([]byte(nil), file.Content...)
		names = append(names, file.Path)
	}
	f.event("copy " + strings.Join(names, " "))
	return nil
}

func (f *fakeRouter) ReadDir(_ context.Context, id, dir string) (map[string][]byte, error) {
	return f.snapshot(), nil
}

func (f *fakeRouter) Architecture(context.Context) (string, error) { return "x86_64", nil }

func (f *fakeRouter) DaemonTime(context.Context) (time.Time, error) {
	now := time.Now()
	if f.clk != nil {
		now = f.clk.Now()
	}
	t := now.Add(-f.daemonBehind)
	f.daemonSeen = append(f.daemonSeen, t)
	return t, nil
}

func (f *fakeRouter) Exec(_ context.Context, id string, cmd []string) (int, string, error) {
	switch {
	case cmd[0] == "haproxy":
		f.event("check")
		f.checks = append(f.checks, cmd)
		f.filesAtCheck = f.snapshot()
		return f.checkCode, f.checkOut, f.checkErr
	case cmd[0] == probe.Path && cmd[1] == "-rename":
		f.event("rename")
		if f.renameCode != 0 {
			return f.renameCode, "release-probe: nothing renamed: open " + cmd[2] + ": no such file or directory\n", nil
		}
		for i := 2; i+1 < len(cmd); i += 2 {
			src, dst := path.Base(cmd[i]), path.Base(cmd[i+1])
			if path.Dir(cmd[i]) != ConfigDir || path.Dir(cmd[i+1]) != ConfigDir {
				f.t.Errorf("rename %s %s: outside %s", cmd[i], cmd[i+1], ConfigDir)
			}
			content, ok := f.files[src]
			if !ok {
				f.t.Errorf("rename of %s, which is not there", cmd[i])
			}
			f.files[dst] = content
			delete(f.files, src)
		}
		return 0, "", f.renameErr
	case cmd[0] == probe.Path && cmd[1] == "-cli":
		f.event("cli " + cmd[3])
		if f.cli == nil {
			return 3, "release-probe: dial unix " + cmd[2] + ": connect: no such file or directory\n", nil
		}
		return 0, f.cli(cmd[3]), nil
	case cmd[0] == probe.Path && cmd[1] == "-place":
		f.event("place " + path.Base(cmd[2]))
		content, err := base64.StdEncoding.DecodeString(cmd[3])
		if err != nil || path.Dir(cmd[2]) != ConfigDir || len(cmd) != 7 || cmd[4] != "-cli" {
			f.t.Errorf("place %v: %v", cmd[2:], err)
			return placeFailed, "", nil
		}
		f.files[path.Base(cmd[2])] = content
		f.event("cli " + cmd[6])
		if f.cli == nil {
			return 3, "release-probe: dial unix " + cmd[5] + ": connect: no such file or directory\n", nil
		}
		return 0, f.cli(cmd[6]), f.renameErr
	case cmd[0] == probe.Path && cmd[1] == "-remove":
		f.event("remove")
		for _, p := range cmd[2:] {
			delete(f.files, path.Base(p))
		}
		return 0, "", nil
	}
	f.t.Errorf("unexpected command %v", cmd)
	return 1, "", nil
}

func (f *fakeRouter) Signal(_ context.Context, id, signal string) error {
	f.event("signal")
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
	if f.procErr != nil {
		return nil, f.procErr
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
	f.event("logs")
	f.sinceSeen = append(f.sinceSeen, since)
	logs := f.logsBefore + strings.Repeat(f.eachReload, len(f.signals))
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
	f.clk = clk
	return &Controller{Docker: f, DrainTimeout: 300 * time.Millisecond, Poll: time.Millisecond, Clock: clk}, clk
}

func newController(f *fakeRouter) *Controller {
	c, _ := controller(f)
	return c
}

// routerDir is a router's directory with more than HAProxy loads: a file a
// killed apply staged, and a file that is not configuration.
func routerDir(f *fakeRouter) {
	f.files["route_staging_web.cfg"] = []byte("staging v1\n")
	f.files[".next-route_old_web.cfg"] = []byte("left by a killed apply\n")
	f.files["README"] = []byte("not loaded\n")
}

func TestApplyStagesChecksRenamesThenReloads(t *testing.T) {
	f := newFakeRouter(t)
	routerDir(f)
	f.logsBefore = "[NOTICE] (1) : Loading success.\n" // the start, before our reload
	f.afterSignal = []string{"", reloading, reloading + success}
	f.procs = [][]string{haproxyProcs(4), haproxyProcs(3), haproxyProcs(2)}
	f.daemonBehind = 3 * time.Second
	c, _ := controller(f)
	c.DrainTimeout = 5 * time.Second
	before := f.snapshot()

	if err := c.Apply(context.Background(), "router-1", map[string][]byte{"route_production_web.cfg": []byte(routeV2)}); err != nil {
		t.Fatal(err)
	}
	// The probe first, the new file beside the live one, the check, the rename, the reload.
	want := []string{"install router-1", "copy .next-route_production_web.cfg", "check", "logs", "rename", "signal"}
	if got := f.events[:min(len(f.events), len(want))]; !reflect.DeepEqual(got, want) {
		t.Errorf("events %v, want them to begin %v", f.events, want)
	}
	// The check saw the whole new configuration: the base, the other live
	// routes and the staged file in HAProxy's order, and nothing it does not load.
	wantCheck := []string{"haproxy", "-c",
		"-f", ConfigDir + "/00-base.cfg",
		"-f", ConfigDir + "/.next-route_production_web.cfg",
		"-f", ConfigDir + "/route_staging_web.cfg"}
	if len(f.checks) != 1 || !reflect.DeepEqual(f.checks[0], wantCheck) {
		t.Errorf("checked with %v, want %v", f.checks, wantCheck)
	}
	if got := string(f.filesAtCheck[".next-route_production_web.cfg"]); got != routeV2 {
		t.Errorf("the staged file held %q at the check", got)
	}
	if got := string(f.filesAtCheck["route_production_web.cfg"]); got != routeV1 {
		t.Errorf("the live file held %q at the check, want it untouched", got)
	}
	// After: the new route in place, no staged file of ours, the rest as it was.
	want2 := before
	want2["route_production_web.cfg"] = []byte(routeV2)
	if got := f.snapshot(); !reflect.DeepEqual(got, want2) {
		t.Errorf("files after the apply:\n%q\nwant\n%q", got, want2)
	}
	if want := []string{"SIGUSR2"}; !reflect.DeepEqual(f.signals, want) {
		t.Errorf("signals = %v, want %v", f.signals, want)
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
	// Logs are read from the daemon's time, on the daemon's clock: one look at it per reload.
	if len(f.daemonSeen) != 1 {
		t.Fatalf("the daemon's clock was read %d times, want once", len(f.daemonSeen))
	}
	for _, s := range f.sinceSeen {
		if want := epoch.Add(-3 * time.Second); !s.Equal(want) {
			t.Errorf("logs read since %v, want the daemon's %v", s, want)
		}
	}
}

func TestApplyRefusedCheckLeavesLiveFilesUntouched(t *testing.T) {
	f := newFakeRouter(t)
	routerDir(f)
	f.checkCode = 1
	f.checkOut = "[NOTICE]   (7) : haproxy version is 2.6.12-1+deb12u4\n" +
		"[ALERT]    (7) : config : parsing [" + ConfigDir + "/.next-route_production_web.cfg:2]: unknown keyword 'bogus' out of section.\n" +
		"[ALERT]    (7) : config : Fatal errors found in configuration.\n"
	c, _ := controller(f)
	before := f.snapshot()

	err := c.Apply(context.Background(), "router-1", map[string][]byte{
		"route_production_web.cfg": []byte("route v2 bogus\n"),
		"route_new_web.cfg":        []byte("new route\n"),
	})
	var re *ReloadError
	if !errors.As(err, &re) {
		t.Fatalf("Apply = %v (%T), want *ReloadError", err, err)
	}
	var ue *ReloadUnconfirmedError
	if errors.As(err, &ue) {
		t.Errorf("a refused check is not unconfirmed: %v", err)
	}
	// HAProxy's complaint names the file by its own name, without the notices.
	if want := "parsing [" + ConfigDir + "/route_production_web.cfg:2]: unknown keyword 'bogus'"; !strings.Contains(re.Output, want) || !strings.Contains(err.Error(), want) {
		t.Errorf("the error %q does not say %q", err, want)
	}
	if strings.Contains(re.Output, "NOTICE") || strings.Contains(re.Output, stagePrefix) {
		t.Errorf("the error shows notices or staging names: %q", re.Output)
	}
	// The check ran on the new files...
	if got := string(f.filesAtCheck[".next-route_production_web.cfg"]); got != "route v2 bogus\n" {
		t.Errorf("haproxy -c saw %q, want the new route", got)
	}
	wantCheck := []string{"haproxy", "-c",
		"-f", ConfigDir + "/00-base.cfg",
		"-f", ConfigDir + "/.next-route_new_web.cfg",
		"-f", ConfigDir + "/.next-route_production_web.cfg",
		"-f", ConfigDir + "/route_staging_web.cfg"}
	if len(f.checks) != 1 || !reflect.DeepEqual(f.checks[0], wantCheck) {
		t.Errorf("checked with %v, want %v", f.checks, wantCheck)
	}
	// ...the live ones were never touched, and the staged ones are gone.
	if got := f.snapshot(); !reflect.DeepEqual(got, before) {
		t.Errorf("files after a refused check:\n%q\nwant them as before:\n%q", got, before)
	}
	for _, e := range f.events {
		if e == "rename" || e == "signal" {
			t.Errorf("events %v after a refused check", f.events)
		}
	}
}

func TestApplyCheckExecErrorLeavesLiveFilesUntouched(t *testing.T) {
	f := newFakeRouter(t)
	f.checkErr = errors.New("container is not running")
	before := f.snapshot()
	err := newController(f).Apply(context.Background(), "router-1", map[string][]byte{"route_production_web.cfg": []byte(routeV2)})
	if err == nil || !strings.Contains(err.Error(), "container is not running") {
		t.Fatalf("Apply = %v, want the exec error", err)
	}
	var ue *ReloadUnconfirmedError
	if errors.As(err, &ue) {
		t.Errorf("an error before the rename is not unconfirmed: %v", err)
	}
	if got := f.snapshot(); !reflect.DeepEqual(got, before) {
		t.Errorf("files = %q, want them as before", got)
	}
	if len(f.signals) != 0 {
		t.Errorf("signals sent: %v", f.signals)
	}
}

func TestApplyRenameRefusedIsBeforeTheSignal(t *testing.T) {
	f := newFakeRouter(t)
	f.renameCode = 1
	before := f.snapshot()
	err := newController(f).Apply(context.Background(), "router-1", map[string][]byte{"route_production_web.cfg": []byte(routeV2)})
	var ue *ReloadUnconfirmedError
	if err == nil || errors.As(err, &ue) || !strings.Contains(err.Error(), "nothing renamed") {
		t.Fatalf("Apply = %v, want the probe's refusal, not unconfirmed", err)
	}
	if got := f.snapshot(); !reflect.DeepEqual(got, before) {
		t.Errorf("files = %q, want them as before, the staged one removed", got)
	}
	if len(f.signals) != 0 {
		t.Errorf("signals sent: %v", f.signals)
	}
}

func TestApplyRenameAnswerLostIsUnconfirmed(t *testing.T) {
	// The rename ran in the container, its answer did not come back: the new
	// file is in place, and the next reload, anyone's, loads it.
	f := newFakeRouter(t)
	f.renameErr = errors.New("connection reset by peer")
	err := newController(f).Apply(context.Background(), "router-1", map[string][]byte{"route_production_web.cfg": []byte(routeV2)})
	var ue *ReloadUnconfirmedError
	if !errors.As(err, &ue) || !strings.Contains(err.Error(), "connection reset") {
		t.Fatalf("Apply = %v, want *ReloadUnconfirmedError with the cause", err)
	}
	if len(f.signals) != 0 {
		t.Errorf("signals sent after a lost rename: %v", f.signals)
	}
}

func TestApplyErrorsAfterTheSignalAreUnconfirmed(t *testing.T) {
	for name, setup := range map[string]func(*fakeRouter, *Controller) context.Context{
		"signal error": func(f *fakeRouter, _ *Controller) context.Context {
			f.signalErr = errors.New("connection reset by peer")
			return context.Background()
		},
		"not confirmed in time": func(f *fakeRouter, _ *Controller) context.Context {
			f.afterSignal = []string{reloading}
			return context.Background()
		},
		"cancelled while waiting": func(f *fakeRouter, _ *Controller) context.Context {
			ctx, cancel := context.WithCancel(context.Background())
			t.Cleanup(cancel)
			f.afterSignal = []string{""}
			f.onSignal = cancel
			return ctx
		},
		"loaded, processes unreadable": func(f *fakeRouter, _ *Controller) context.Context {
			f.afterSignal = []string{reloading + success}
			f.procErr = errors.New("no such container")
			return context.Background()
		},
	} {
		t.Run(name, func(t *testing.T) {
			f := newFakeRouter(t)
			c, _ := controller(f)
			c.DrainTimeout = time.Second
			ctx := setup(f, c)
			err := c.Apply(ctx, "router-1", map[string][]byte{"route_production_web.cfg": []byte(routeV2)})
			var ue *ReloadUnconfirmedError
			if !errors.As(err, &ue) {
				t.Fatalf("Apply = %v (%T), want *ReloadUnconfirmedError", err, err)
			}
			var re *ReloadError
			if errors.As(err, &re) {
				t.Errorf("an unconfirmed reload is not a refused configuration: %v", err)
			}
			if !strings.Contains(err.Error(), "may be live") {
				t.Errorf("the error does not say the configuration may be live: %v", err)
			}
			if got := string(f.files["route_production_web.cfg"]); got != routeV2 {
				t.Errorf("route = %q, want the new one in place", got)
			}
		})
	}
}

func TestApplyCancelledErrorIsTheContexts(t *testing.T) {
	f := newFakeRouter(t)
	f.afterSignal = []string{""}
	c, _ := controller(f)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	f.onSignal = cancel
	err := c.Apply(ctx, "router-1", map[string][]byte{"route_production_web.cfg": []byte(routeV2)})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Apply = %v, want it to wrap context.Canceled", err)
	}
}

func TestApplyLoadingFailurePutsTheFilesBack(t *testing.T) {
	// haproxy -c passed but the master could not load it: it keeps its
	// workers, and the files go back to what they run.
	f := newFakeRouter(t)
	f.afterSignal = []string{reloading + failure}
	c, _ := controller(f)
	err := c.Apply(context.Background(), "router-1", map[string][]byte{
		"route_production_web.cfg": []byte(routeV2),
		"route_new_web.cfg":        []byte("new route\n"),
	})
	var re *ReloadError
	if !errors.As(err, &re) {
		t.Fatalf("Apply = %v, want *ReloadError", err)
	}
	var ue *ReloadUnconfirmedError
	if errors.As(err, &ue) {
		t.Errorf("a refused reload is confirmed, not unconfirmed: %v", err)
	}
	if got := string(f.files["route_production_web.cfg"]); got != routeV1 {
		t.Errorf("route = %q, want the one the router runs", got)
	}
	if got, ok := f.files["route_new_web.cfg"]; !ok || len(got) != 0 {
		t.Errorf("a file new with the refused configuration = %q (present %v), want it emptied", got, ok)
	}
	for name := range f.files {
		if strings.HasPrefix(name, stagePrefix) {
			t.Errorf("staged file %s left", name)
		}
	}
}

func TestApplyRefusesNamesHAProxyWouldNotLoad(t *testing.T) {
	for _, name := range []string{".next-x.cfg", "x.conf", "sub/x.cfg", ""} {
		f := newFakeRouter(t)
		if err := newController(f).Apply(context.Background(), "router-1", map[string][]byte{name: []byte("x\n")}); err == nil {
			t.Errorf("Apply(%q) = nil, want an error", name)
		}
		if len(f.events) != 0 {
			t.Errorf("Apply(%q) did %v", name, f.events)
		}
	}
}

func TestApplyPlacesTheProbeOncePerRouter(t *testing.T) {
	f := newFakeRouter(t)
	f.eachReload = reloading + success
	c, _ := controller(f)
	for i := 0; i < 3; i++ {
		if err := c.ApplyKnown(context.Background(), "router-1", map[string][]byte{"route_production_web.cfg": []byte(routeV2)}, nil); err != nil {
			t.Fatal(err)
		}
	}
	if f.installs != 1 {
		t.Errorf("the probe was placed %d times in three applies, want once", f.installs)
	}
}

func TestFilesLeavesOutWhatHAProxyDoesNotLoad(t *testing.T) {
	f := newFakeRouter(t)
	routerDir(f)
	got, err := newController(f).Files(context.Background(), "router-1")
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"00-base.cfg", "route_production_web.cfg", "route_staging_web.cfg"}; !reflect.DeepEqual(sortedNames(got), want) {
		t.Errorf("Files = %v, want %v", sortedNames(got), want)
	}
}

// TestApplyFailpoints stops a child process at each of the router's
// failpoints (a failpoint kills the process; its parent, a shell, is not
// Terraform and reports the kill) and reads how far it got from the events
// it printed.
func TestApplyFailpoints(t *testing.T) {
	if point := os.Getenv("ROUTER_FAILPOINT_CHILD"); point != "" {
		f := newFakeRouter(t)
		f.afterSignal = []string{reloading + success}
		f.onEvent = func(e string) { fmt.Println("event", e) }
		c, _ := controller(f)
		err := c.Apply(context.Background(), "router-1", map[string][]byte{"route_production_web.cfg": []byte(routeV2)})
		fmt.Println("returned", err)
		return
	}
	for point, wantLast := range map[string]string{
		failpoint.RouteWritten: "event rename", // in place, not signalled
		failpoint.ReloadSent:   "event signal", // signalled, not confirmed
	} {
		cmd := exec.Command("sh", "-c", `"$0" -test.run '^TestApplyFailpoints$'; echo "child exit $?"`, os.Args[0])
		cmd.Env = append(os.Environ(), "ROUTER_FAILPOINT_CHILD=1", failpoint.Env+"="+point)
		out, _ := cmd.CombinedOutput()
		var events []string
		for _, line := range strings.Split(string(out), "\n") {
			if strings.HasPrefix(line, "event ") || strings.HasPrefix(line, "returned ") || strings.HasPrefix(line, "child exit") {
				events = append(events, line)
			}
		}
		if n := len(events); n < 2 || events[n-2] != wantLast || events[n-1] != "child exit 137" {
			t.Errorf("%s: the child got to %q, want it killed right after %q", point, events, wantLast)
		}
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

// The route files of the fake router: v2 takes the place of v1's server,
// which had traffic, so a reload waits for the old workers.
const (
	routeV1 = "server r1-1 10.0.0.1:8080 check weight 100\n"
	routeV2 = "server r2-1 10.0.0.2:8080 check weight 100\n"
)

// A reload that takes away no server with traffic (servers added, or
// servers dropped that were drained) is confirmed once HAProxy loaded it:
// old workers that keep long-lived connections do not hold the apply.
func TestApplyWaitsForOldWorkersOnlyWhenServersWithTrafficGo(t *testing.T) {
	for name, next := range map[string]string{
		"server added":           routeV1 + routeV2,
		"drained server gone":    routeV2,
		"weightless server gone": routeV2,
	} {
		t.Run(name, func(t *testing.T) {
			f := newFakeRouter(t)
			switch name {
			case "drained server gone":
				f.files["route_production_web.cfg"] = []byte("server r1-1 10.0.0.1:8080 check weight 0 disabled\n" + routeV2)
			case "weightless server gone":
				f.files["route_production_web.cfg"] = []byte("server r1-1 10.0.0.1:8080 check weight 0\n" + routeV2)
			}
			f.afterSignal = []string{reloading + success}
			f.procs = [][]string{haproxyProcs(3)} // an old worker keeps a WebSocket
			c, _ := controller(f)
			c.DrainTimeout = 5 * time.Second
			if err := c.Apply(context.Background(), "router-1", map[string][]byte{"route_production_web.cfg": []byte(next)}); err != nil {
				t.Fatal(err)
			}
			if f.procCalls != 0 {
				t.Errorf("Reload checked processes %d times, want none", f.procCalls)
			}
		})
	}
}

// runtimeRouter is a fake router whose running worker has the route of
// servers, with the base file that opens the runtime socket. Its runtime
// API keeps the backend's servers (live) and its sticky switch, as HAProxy
// 2.6 does for the commands the controller sends.
func runtimeRouter(t *testing.T, route []byte) (*fakeRouter, map[string]RuntimeServer) {
	f := newFakeRouter(t)
	f.files[BaseFile] = RenderBase(Base{MetricsPort: 8404})
	f.files["route_production_web.cfg"] = route
	live := map[string]RuntimeServer{}
	for _, s := range ParseRouteServers(route) {
		live[s.Name] = RuntimeServer{Address: s.Address, Weight: s.Weight, Maint: s.Drain}
	}
	switchMaint := !IsSticky(route)
	const be, sticky = "be_production_web/", "be_production_web_sticky/sticky"
	router := f
	f.cli = func(command string) string {
		var out strings.Builder
		for _, c := range strings.Split(command, "; ") {
			f := strings.Fields(c)
			switch {
			case len(f) == 5 && f[0] == "set" && f[2] == sticky && f[3] == "state":
				switchMaint = f[4] == "maint"
				out.WriteString("\n")
			case len(f) == 5 && f[0] == "set" && f[3] == "weight":
				name := strings.TrimPrefix(f[2], be)
				w, _ := strconv.Atoi(f[4])
				s := live[name]
				s.Weight = w
				live[name] = s
				out.WriteString("\n")
			case len(f) == 5 && f[0] == "set" && f[3] == "state":
				name := strings.TrimPrefix(f[2], be)
				s := live[name]
				s.Maint = f[4] == "maint"
				live[name] = s
				out.WriteString("\n")
			case len(f) == 5 && f[0] == "set" && f[3] == "health":
				out.WriteString("\n")
			case len(f) >= 4 && f[0] == "add" && f[1] == "server":
				name := strings.TrimPrefix(f[2], be)
				if _, exists := live[name]; exists {
					out.WriteString("Already exists a server with the same name in backend.\n\n")
					continue
				}
				live[name] = RuntimeServer{Address: f[3], Maint: true}
				out.WriteString("New server registered.\n\n")
			case len(f) == 3 && f[0] == "del" && f[1] == "server":
				name := strings.TrimPrefix(f[2], be)
				switch s, exists := live[name]; {
				case !exists:
					out.WriteString("No such server.\n\n")
				case !s.Maint:
					out.WriteString("Only servers in maintenance mode can be deleted.\n\n")
				case router.busy[name]:
					out.WriteString("Server still has connections attached to it, cannot remove it.\n\n")
				default:
					delete(live, name)
					out.WriteString("Server deleted.\n\n")
				}
			case len(f) == 3 && f[0] == "enable" && f[1] == "server":
				name := strings.TrimPrefix(f[2], be)
				s := live[name]
				s.Maint = false
				live[name] = s
				out.WriteString("\n")
			case len(f) == 3 && f[0] == "enable" && f[1] == "health", strings.HasPrefix(c, "enable dynamic-cookie backend "):
				out.WriteString("\n")
			case c == "show servers state be_production_web":
				out.WriteString("1\n# be_id be_name srv_id srv_name srv_addr srv_op_state srv_admin_state srv_uweight srv_iweight srv_port\n")
				for name, s := range live {
					admin := 0
					if s.Maint {
						admin = 1
					}
					ip, port, _ := strings.Cut(s.Address, ":")
					fmt.Fprintf(&out, "4 be_production_web 1 %s %s 2 %d %d 100 %s\n", name, ip, admin, s.Weight, port)
				}
				out.WriteString("\n")
			case c == "show servers state be_production_web_sticky":
				admin := 0
				if switchMaint {
					admin = 1
				}
				fmt.Fprintf(&out, "1\n# be_id be_name srv_id srv_name srv_addr srv_op_state srv_admin_state srv_uweight srv_iweight srv_port\n5 be_production_web_sticky 1 sticky 127.0.0.1 2 %d 1 1 1\n\n", admin)
			default:
				out.WriteString("Unknown command.\n")
			}
		}
		return out.String()
	}
	return f, live
}

func testRoute(t *testing.T, servers ...Server) []byte {
	t.Helper()
	cfg, err := RenderRoute(Route{Environment: "production", Service: "web", ListenPort: 8080, HealthPath: "/healthz", Sticky: true, Servers: servers})
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// A change of weights: the file goes into place and the weights go to the
// running worker; no check (nothing new to check), no reload.
func TestApplyWeightsThroughTheRuntimeAPI(t *testing.T) {
	before := testRoute(t, Server{Name: "r1-1", Address: "10.0.0.2:8080", Weight: 256}, Server{Name: "c2-1", Address: "10.0.0.3:8080", Weight: 0})
	after := testRoute(t, Server{Name: "r1-1", Address: "10.0.0.2:8080", Drain: true}, Server{Name: "c2-1", Address: "10.0.0.3:8080", Weight: 256})
	f, live := runtimeRouter(t, before)
	c, _ := controller(f)
	if err := c.Apply(context.Background(), "router-1", map[string][]byte{"route_production_web.cfg": after}); err != nil {
		t.Fatal(err)
	}
	want := []string{"install router-1", "copy .next-route_production_web.cfg", "rename",
		"cli set server be_production_web/c2-1 weight 256; set server be_production_web/c2-1 state ready; " +
			"set server be_production_web/r1-1 weight 0; set server be_production_web/r1-1 state maint; " +
			"show servers state be_production_web; show servers state be_production_web_sticky"}
	if !reflect.DeepEqual(f.events, want) {
		t.Errorf("events\n%q\nwant\n%q", f.events, want)
	}
	if len(f.signals) != 0 {
		t.Errorf("signals %v: a change of weights reloaded", f.signals)
	}
	if string(f.files["route_production_web.cfg"]) != string(after) {
		t.Errorf("the route file was not written")
	}
	if live["r1-1"] != (RuntimeServer{Address: "10.0.0.2:8080", Maint: true}) || live["c2-1"] != (RuntimeServer{Address: "10.0.0.3:8080", Weight: 256}) {
		t.Errorf("the worker runs %+v", live)
	}
}

// A hard switch by the runtime API: the new server is added beside the
// serving one with no traffic, then takes it; the old one is deleted, or,
// while it still has connections, kept in maintenance with no weight and
// deleted by a later change. No reload at any point.
func TestApplyServersThroughTheRuntimeAPI(t *testing.T) {
	old := Server{Name: "r1-1", Address: "10.0.0.2:8080", Weight: 100}
	incoming := Server{Name: "r2-1", Address: "10.0.0.3:8080", Weight: 0}
	before := mustRenderRoute(t, Route{Environment: "production", Service: "web", ListenPort: 8080, HealthPath: "/healthz", Servers: []Server{old}})
	f, live := runtimeRouter(t, before)
	f.busy = map[string]bool{"r1-1": true} // an event stream the drain left
	c, _ := controller(f)
	apply := func(servers ...Server) {
		t.Helper()
		cfg := mustRenderRoute(t, Route{Environment: "production", Service: "web", ListenPort: 8080, HealthPath: "/healthz", Servers: servers})
		if err := c.Apply(context.Background(), "router-1", map[string][]byte{"route_production_web.cfg": cfg}); err != nil {
			t.Fatal(err)
		}
		if string(f.files["route_production_web.cfg"]) != string(cfg) {
			t.Errorf("the route file was not written")
		}
	}
	apply(old, incoming)
	if live["r2-1"] != (RuntimeServer{Address: "10.0.0.3:8080"}) || live["r1-1"].Weight != 100 {
		t.Errorf("after the check route the worker runs %+v", live)
	}
	incoming.Weight, old.Drain = 100, true
	apply(old, incoming)
	apply(incoming)
	if live["r1-1"] != (RuntimeServer{Address: "10.0.0.2:8080", Maint: true}) || live["r2-1"].Weight != 100 {
		t.Errorf("with the old server busy the worker runs %+v", live)
	}
	f.busy = nil
	incoming.Weight = 50
	apply(incoming)
	if _, left := live["r1-1"]; left {
		t.Errorf("the old server was not deleted once it had no connections: %+v", live)
	}
	if len(f.signals) != 0 {
		t.Errorf("signals %v: a change of servers reloaded", f.signals)
	}
}

// With the route the router has (ApplyKnown, after a read of the router's
// files), a change of servers costs one exec: the probe places the file and
// sends the commands. Without a read of the base file, or with the route
// the caller holds not the one the router runs, the full path applies it.
func TestApplyKnownPlacesAndAppliesInOneExec(t *testing.T) {
	before := testRoute(t, Server{Name: "r1-1", Address: "10.0.0.2:8080", Weight: 256})
	after := testRoute(t, Server{Name: "r1-1", Address: "10.0.0.2:8080", Weight: 256}, Server{Name: "c2-1", Address: "10.0.0.3:8080", Weight: 0})
	const name = "route_production_web.cfg"

	f, live := runtimeRouter(t, before)
	c, _ := controller(f)
	// Nothing read yet: the full path.
	if err := c.ApplyKnown(context.Background(), "router-1", map[string][]byte{name: after}, map[string][]byte{name: before}); err != nil {
		t.Fatal(err)
	}
	if len(f.events) < 3 || f.events[len(f.events)-2] != "rename" {
		t.Errorf("without the base file read, events %q; want the full path", f.events)
	}
	// Read (as an apply does first): one exec for the next change.
	if _, err := c.Files(context.Background(), "router-1"); err != nil {
		t.Fatal(err)
	}
	f.events = nil
	next := testRoute(t, Server{Name: "c2-1", Address: "10.0.0.3:8080", Weight: 256})
	if err := c.ApplyKnown(context.Background(), "router-1", map[string][]byte{name: next}, map[string][]byte{name: after}); err != nil {
		t.Fatal(err)
	}
	if len(f.events) != 2 || f.events[0] != "place "+name || !strings.HasPrefix(f.events[1], "cli del server be_production_web/") && !strings.HasPrefix(f.events[1], "cli set server") {
		t.Errorf("events %q, want one place with its commands", f.events)
	}
	if string(f.files[name]) != string(next) || len(live) != 1 || live["c2-1"].Weight != 256 {
		t.Errorf("file placed %t, worker runs %+v", string(f.files[name]) == string(next), live)
	}
	if len(f.signals) != 0 {
		t.Errorf("signals %v", f.signals)
	}

	// The caller's previous route is not what the worker runs: the
	// commands do not give the route, and a reload loads the placed file.
	f.afterSignal = []string{reloading + success}
	f.procs = [][]string{haproxyProcs(2)}
	stale := testRoute(t, Server{Name: "x9-1", Address: "10.0.0.9:8080", Weight: 256})
	if err := c.ApplyKnown(context.Background(), "router-1", map[string][]byte{name: before}, map[string][]byte{name: stale}); err != nil {
		t.Fatal(err)
	}
	if want := []string{"SIGUSR2"}; !reflect.DeepEqual(f.signals, want) || string(f.files[name]) != string(before) {
		t.Errorf("signals %v, file placed %t: want the placed file reloaded", f.signals, string(f.files[name]) == string(before))
	}
}

// No socket (an earlier version's base file), a refused command, or a
// worker that does not run the file's servers: the file is in place, and a
// reload loads it.
func TestApplyWeightsFallsBackToAReload(t *testing.T) {
	before := testRoute(t, Server{Name: "r1-1", Address: "10.0.0.2:8080", Weight: 256}, Server{Name: "c2-1", Address: "10.0.0.3:8080", Weight: 0})
	after := testRoute(t, Server{Name: "r1-1", Address: "10.0.0.2:8080", Weight: 128}, Server{Name: "c2-1", Address: "10.0.0.3:8080", Weight: 128})
	for name, setup := range map[string]func(f *fakeRouter, live map[string]RuntimeServer){
		"socket unreachable": func(f *fakeRouter, _ map[string]RuntimeServer) { f.cli = nil },
		"no socket in the base file": func(f *fakeRouter, _ map[string]RuntimeServer) {
			f.files[BaseFile] = []byte(strings.Replace(string(f.files[BaseFile]), "stats socket", "# no socket", 1))
			f.cli = func(string) string { t.Error("the runtime API was used without a socket in the base file"); return "" }
		},
		"refused": func(f *fakeRouter, _ map[string]RuntimeServer) {
			f.cli = func(string) string { return "No such server.\n\n1\n# be_id be_name srv_id srv_name\n" }
		},
		"worker runs other servers": func(_ *fakeRouter, live map[string]RuntimeServer) {
			live["r9-1"] = RuntimeServer{Address: "10.0.0.9:8080", Weight: 100}
		},
		"a server at another address": func(_ *fakeRouter, live map[string]RuntimeServer) {
			live["c2-1"] = RuntimeServer{Address: "10.0.0.7:8080"}
		},
	} {
		t.Run(name, func(t *testing.T) {
			f, live := runtimeRouter(t, before)
			setup(f, live)
			f.afterSignal = []string{reloading + success}
			f.procs = [][]string{haproxyProcs(2)}
			c, _ := controller(f)
			if err := c.Apply(context.Background(), "router-1", map[string][]byte{"route_production_web.cfg": after}); err != nil {
				t.Fatal(err)
			}
			if want := []string{"SIGUSR2"}; !reflect.DeepEqual(f.signals, want) {
				t.Errorf("signals %v, want a reload", f.signals)
			}
			if string(f.files["route_production_web.cfg"]) != string(after) {
				t.Errorf("the route file was not written")
			}
		})
	}
}

// A hook registered for a router runs right before each reload signal to
// it, and no more once removed.
func TestBeforeReloadRunsBeforeTheSignal(t *testing.T) {
	f := newFakeRouter(t)
	f.afterSignal = []string{reloading + success}
	f.procs = [][]string{haproxyProcs(2)}
	c, _ := controller(f)
	calls := 0
	remove := c.BeforeReload("router-1", func(context.Context) {
		calls++
		f.event("hook")
	})
	other := c.BeforeReload("router-2", func(context.Context) { t.Error("another router's hook ran") })
	defer other()
	ctx := context.Background()
	if err := c.Apply(ctx, "router-1", map[string][]byte{"route_production_web.cfg": []byte(routeV2)}); err != nil {
		t.Fatal(err)
	}
	if i := slices.Index(f.events, "hook"); calls != 1 || i < 0 || i+1 >= len(f.events) || f.events[i+1] != "signal" {
		t.Errorf("hook ran %d times; events %v, want the hook right before the signal", calls, f.events)
	}
	remove()
	c.beforeReload(ctx, "router-1")
	if calls != 1 {
		t.Errorf("a removed hook ran: %d calls", calls)
	}
}
