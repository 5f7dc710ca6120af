package migration

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/releasekit/terraform-provider-release/internal/docker"
	"github.com/releasekit/terraform-provider-release/internal/naming"
)

// fakeContainer is one container of fakeHost.
type fakeContainer struct {
	c        docker.Container
	spec     docker.ContainerSpec
	code     int
	started  time.Time
	finished time.Time
	logs     string
}

// fakeHost is an in-memory Host. Containers run their command when started:
// the exit code comes from exitCodes (by the whole command line joined with
// spaces, default 0) and the output from outputs.
type fakeHost struct {
	mu         sync.Mutex
	containers map[string]*fakeContainer
	nextID     int
	clock      time.Time

	exitCodes map[string]int
	outputs   map[string]string

	created     []docker.ContainerSpec
	started     []string
	waited      []string
	removed     []string
	ensureCalls int
	ensureRefs  []string
	ensureAuths []string
}

func newFakeHost() *fakeHost {
	return &fakeHost{
		containers: map[string]*fakeContainer{},
		clock:      time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC),
		exitCodes:  map[string]int{},
		outputs:    map[string]string{},
	}
}

func (h *fakeHost) tick() time.Time {
	h.clock = h.clock.Add(time.Second)
	return h.clock
}

// add places a container directly, as an earlier apply would have left it.
func (h *fakeHost) add(labels map[string]string, state string, code int, logs string) string {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.nextID++
	id := fmt.Sprintf("seed%d", h.nextID)
	fc := &fakeContainer{c: docker.Container{ID: id, Labels: labels, State: state, Image: labels[naming.LabelImage]}, code: code, logs: logs}
	if state != "created" {
		fc.started = h.tick()
	}
	if state == "exited" {
		fc.finished = h.tick()
	}
	h.containers[id] = fc
	return id
}

func (h *fakeHost) List(_ context.Context, labels map[string]string) ([]docker.Container, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []docker.Container
	for _, fc := range h.containers {
		match := true
		for k, v := range labels {
			got, ok := fc.c.Labels[k]
			// Like the Engine: an empty value asks only that the label exists.
			if !ok || (v != "" && got != v) {
				match = false
				break
			}
		}
		if match {
			c := fc.c
			c.Labels = map[string]string{}
			for k, v := range fc.c.Labels {
				c.Labels[k] = v
			}
			out = append(out, c)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}

func (h *fakeHost) Create(_ context.Context, spec docker.ContainerSpec) (string, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, fc := range h.containers {
		if fc.spec.Name != "" && fc.spec.Name == spec.Name {
			return "", fmt.Errorf("conflict: container name %q is in use by %s", spec.Name, fc.c.ID)
		}
	}
	h.nextID++
	id := fmt.Sprintf("c%d", h.nextID)
	labels := map[string]string{}
	for k, v := range spec.Labels {
		labels[k] = v
	}
	h.containers[id] = &fakeContainer{c: docker.Container{ID: id, Name: spec.Name, Image: spec.Image, Labels: labels, State: "created"}, spec: spec}
	h.created = append(h.created, spec)
	return id, nil
}

func commandLine(spec docker.ContainerSpec) string {
	return strings.Join(append(append([]string{}, spec.Entrypoint...), spec.Cmd...), " ")
}

func (h *fakeHost) Start(_ context.Context, id string) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	fc, ok := h.containers[id]
	if !ok {
		return fmt.Errorf("no such container: %s", id)
	}
	h.started = append(h.started, id)
	cmd := commandLine(fc.spec)
	fc.c.State = "running"
	fc.started = h.tick()
	fc.code = h.exitCodes[cmd]
	fc.logs = h.outputs[cmd]
	return nil
}

// Wait lets a running container finish with its exit code.
func (h *fakeHost) Wait(_ context.Context, id string) (int, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	fc, ok := h.containers[id]
	if !ok {
		return 0, fmt.Errorf("no such container: %s", id)
	}
	h.waited = append(h.waited, id)
	if fc.c.State == "created" {
		return 0, fmt.Errorf("fake: waiting for a container that was never started: %s", id)
	}
	if fc.c.State == "running" {
		fc.c.State = "exited"
		fc.finished = h.tick()
	}
	return fc.code, nil
}

func (h *fakeHost) ExitCode(_ context.Context, id string) (int, time.Time, time.Time, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	fc, ok := h.containers[id]
	if !ok {
		return 0, time.Time{}, time.Time{}, fmt.Errorf("no such container: %s", id)
	}
	return fc.code, fc.started, fc.finished, nil
}

func (h *fakeHost) Logs(_ context.Context, id string, _ int) (string, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	fc, ok := h.containers[id]
	if !ok {
		return "", fmt.Errorf("no such container: %s", id)
	}
	return fc.logs, nil
}

func (h *fakeHost) Remove(_ context.Context, id string) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.removed = append(h.removed, id)
	delete(h.containers, id)
	return nil
}

func (h *fakeHost) EnsureImage(_ context.Context, ref, registryAuth string) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.ensureCalls++
	h.ensureRefs = append(h.ensureRefs, ref)
	h.ensureAuths = append(h.ensureAuths, registryAuth)
	return nil
}

// records returns the containers carrying the migration key of s.
func (h *fakeHost) records(t *testing.T, s Spec) []docker.Container {
	t.Helper()
	cs, err := h.List(context.Background(), map[string]string{naming.LabelMigration: s.Key()})
	if err != nil {
		t.Fatal(err)
	}
	return cs
}

const (
	testDigest = "sha256:1111111111111111111111111111111111111111111111111111111111111111"
	testImage  = "registry.example.com/shop@" + testDigest
)

func testSpec() Spec {
	return Spec{
		Image:       testImage,
		Digest:      testDigest,
		UpCommand:   []string{"/app/migrate", "up", "--to", "42"},
		DownCommand: []string{"/app/migrate", "down", "42"},
		Env:         map[string]string{"DATABASE_URL": "postgres://u:secretpw@db/shop", "MODE": "strict"},
		Network:     "release-shop",
	}
}

func upLine(s Spec) string   { return strings.Join(s.UpCommand, " ") }
func downLine(s Spec) string { return strings.Join(s.DownCommand, " ") }

func TestKeyStableAndSensitive(t *testing.T) {
	base := testSpec()
	k := base.Key()
	if k == "" {
		t.Fatal("empty key")
	}
	// The same spec, its env built in other orders, gives the same key every time.
	for i := 0; i < 50; i++ {
		s := testSpec()
		env := map[string]string{}
		keys := []string{"MODE", "DATABASE_URL"}
		if i%2 == 1 {
			keys = []string{"DATABASE_URL", "MODE"}
		}
		for _, name := range keys {
			env[name] = base.Env[name]
		}
		s.Env = env
		if got := s.Key(); got != k {
			t.Fatalf("key of an equal spec changed: %s != %s", got, k)
		}
	}

	changes := map[string]func(*Spec){
		"image": func(s *Spec) {
			s.Image = "registry.example.com/shop@sha256:2222222222222222222222222222222222222222222222222222222222222222"
		},
		"up command":   func(s *Spec) { s.UpCommand = []string{"/app/migrate", "up", "--to", "43"} },
		"up split":     func(s *Spec) { s.UpCommand = []string{"/app/migrate up", "--to", "42"} },
		"down command": func(s *Spec) { s.DownCommand = []string{"/app/migrate", "down", "41"} },
		"no down":      func(s *Spec) { s.DownCommand = nil },
		"env value":    func(s *Spec) { s.Env["MODE"] = "lenient" },
		"env added":    func(s *Spec) { s.Env["EXTRA"] = "1" },
		"network":      func(s *Spec) { s.Network = "release-other" },
	}
	seen := map[string]string{k: "base"}
	for name, change := range changes {
		s := testSpec()
		change(&s)
		got := s.Key()
		if prev, dup := seen[got]; dup {
			t.Errorf("changing %s gives the same key as %s: %s", name, prev, got)
		}
		seen[got] = name
	}
}

func TestUpRunsOnceAndAdopts(t *testing.T) {
	ctx := context.Background()
	h := newFakeHost()
	s := testSpec()
	h.outputs[upLine(s)] = "applied 42_add_orders\n"
	var authAsked []string
	r := &Runner{Host: h, RegistryAuth: func(image string) string {
		authAsked = append(authAsked, image)
		return "auth-token"
	}}

	res, err := r.Up(ctx, s)
	if err != nil {
		t.Fatalf("Up: %v", err)
	}
	if res.Adopted {
		t.Error("first run reported as adopted")
	}
	if res.Output != "applied 42_add_orders\n" {
		t.Errorf("output = %q", res.Output)
	}
	if res.StartedAt.IsZero() || res.FinishedAt.IsZero() || !res.FinishedAt.After(res.StartedAt) {
		t.Errorf("times: started %v finished %v", res.StartedAt, res.FinishedAt)
	}
	if len(h.created) != 1 || len(h.started) != 1 {
		t.Fatalf("created %d, started %d containers; want 1 each", len(h.created), len(h.started))
	}
	if h.ensureCalls != 1 || h.ensureRefs[0] != testImage || h.ensureAuths[0] != "auth-token" {
		t.Errorf("EnsureImage calls %d refs %v auths %v", h.ensureCalls, h.ensureRefs, h.ensureAuths)
	}
	if !reflect.DeepEqual(authAsked, []string{testImage}) {
		t.Errorf("registry auth asked for %v", authAsked)
	}

	spec := h.created[0]
	if !reflect.DeepEqual(spec.Entrypoint, []string{"/app/migrate"}) {
		t.Errorf("entrypoint = %q", spec.Entrypoint)
	}
	if !reflect.DeepEqual(spec.Cmd, []string{"up", "--to", "42"}) {
		t.Errorf("cmd = %q", spec.Cmd)
	}
	if spec.Image != testImage {
		t.Errorf("image = %q", spec.Image)
	}
	if !spec.NoRestart {
		t.Error("NoRestart not set: a restart policy would run the migration again")
	}
	if spec.Network != "release-shop" {
		t.Errorf("network = %q", spec.Network)
	}
	if want := []string{"DATABASE_URL=postgres://u:secretpw@db/shop", "MODE=strict"}; !reflect.DeepEqual(spec.Env, want) {
		t.Errorf("env = %q, want %q", spec.Env, want)
	}
	wantLabels := map[string]string{
		naming.LabelManaged: "true", naming.LabelKind: "migration", naming.LabelMigration: s.Key(), naming.LabelMigrationDir: "up",
		naming.LabelImage: testImage, naming.LabelDigest: testDigest,
	}
	if !reflect.DeepEqual(spec.Labels, wantLabels) {
		t.Errorf("labels = %v, want %v", spec.Labels, wantLabels)
	}
	if !strings.Contains(spec.Name, "up") {
		t.Errorf("name %q does not say the direction", spec.Name)
	}
	// The finished run stays as the record.
	if recs := h.records(t, s); len(recs) != 1 || recs[0].State != "exited" {
		t.Fatalf("records after up = %+v", recs)
	}

	// A retry (an interrupted apply) adopts the record: nothing runs twice.
	res2, err := r.Up(ctx, s)
	if err != nil {
		t.Fatalf("second Up: %v", err)
	}
	if !res2.Adopted {
		t.Error("second Up not adopted")
	}
	if res2.Output != res.Output || !res2.StartedAt.Equal(res.StartedAt) || !res2.FinishedAt.Equal(res.FinishedAt) {
		t.Errorf("adopted result %+v differs from the run %+v", res2, res)
	}
	if len(h.created) != 1 || len(h.started) != 1 {
		t.Errorf("second Up created %d / started %d containers in all; the migration ran again", len(h.created), len(h.started))
	}
	if h.ensureCalls != 1 {
		t.Errorf("second Up ensured the image again (%d calls)", h.ensureCalls)
	}
	if len(h.removed) != 0 {
		t.Errorf("second Up removed %v", h.removed)
	}

	// Another migration (other key) is not adopted from this record.
	other := testSpec()
	other.UpCommand = []string{"/app/migrate", "up", "--to", "43"}
	res3, err := r.Up(ctx, other)
	if err != nil {
		t.Fatal(err)
	}
	if res3.Adopted || len(h.created) != 2 {
		t.Errorf("a different migration was adopted from another's record (adopted %v, created %d)", res3.Adopted, len(h.created))
	}
}

func TestUpWaitsForRunningRecord(t *testing.T) {
	ctx := context.Background()
	h := newFakeHost()
	s := testSpec()
	labels := map[string]string{
		naming.LabelManaged: "true", naming.LabelKind: "migration", naming.LabelMigration: s.Key(), naming.LabelMigrationDir: "up",
		naming.LabelImage: s.Image, naming.LabelDigest: s.Digest,
	}
	id := h.add(labels, "running", 0, "still migrating… done\n")
	r := &Runner{Host: h}

	res, err := r.Up(ctx, s)
	if err != nil {
		t.Fatalf("Up: %v", err)
	}
	if !reflect.DeepEqual(h.waited, []string{id}) {
		t.Errorf("waited for %v, want the running record %s", h.waited, id)
	}
	if len(h.created) != 0 || len(h.started) != 0 {
		t.Errorf("started a second run while one was running: created %d started %d", len(h.created), len(h.started))
	}
	if h.ensureCalls != 0 {
		t.Errorf("EnsureImage called %d times for an adopted run", h.ensureCalls)
	}
	if !res.Adopted || res.Output != "still migrating… done\n" {
		t.Errorf("result = %+v", res)
	}
	if res.FinishedAt.IsZero() {
		t.Error("finish time of the waited run not reported")
	}
	if recs := h.records(t, s); len(recs) != 1 || recs[0].ID != id {
		t.Errorf("records = %+v", recs)
	}
}

func TestUpRunningRecordThatFailsRunsAgain(t *testing.T) {
	ctx := context.Background()
	h := newFakeHost()
	s := testSpec()
	labels := map[string]string{naming.LabelMigration: s.Key(), naming.LabelMigrationDir: "up", naming.LabelKind: "migration", naming.LabelManaged: "true"}
	id := h.add(labels, "running", 3, "crashed\n")
	h.outputs[upLine(s)] = "ok\n"
	r := &Runner{Host: h}

	res, err := r.Up(ctx, s)
	if err != nil {
		t.Fatalf("Up: %v", err)
	}
	if res.Adopted || res.Output != "ok\n" {
		t.Errorf("result = %+v, want a fresh successful run", res)
	}
	if !reflect.DeepEqual(h.waited[:1], []string{id}) {
		t.Errorf("did not wait for the running record first: %v", h.waited)
	}
	if len(h.created) != 1 {
		t.Errorf("created %d", len(h.created))
	}
	if _, ok := h.containers[id]; ok {
		t.Error("failed record kept")
	}
}

func TestUpClearsNeverStartedRecord(t *testing.T) {
	ctx := context.Background()
	h := newFakeHost()
	s := testSpec()
	labels := map[string]string{naming.LabelMigration: s.Key(), naming.LabelMigrationDir: "up", naming.LabelKind: "migration", naming.LabelManaged: "true"}
	// Created but never started (interrupted between Create and Start): exit code 0, but not a run.
	id := h.add(labels, "created", 0, "")
	h.outputs[upLine(s)] = "ran\n"
	r := &Runner{Host: h}

	res, err := r.Up(ctx, s)
	if err != nil {
		t.Fatalf("Up: %v", err)
	}
	if res.Adopted || res.Output != "ran\n" || len(h.started) != 1 {
		t.Errorf("never-started record adopted: %+v, started %v", res, h.started)
	}
	if _, ok := h.containers[id]; ok {
		t.Error("never-started record kept")
	}
}

func TestUpFailureIsReportedAndRetried(t *testing.T) {
	ctx := context.Background()
	h := newFakeHost()
	s := testSpec()
	h.exitCodes[upLine(s)] = 1
	h.outputs[upLine(s)] = "ERROR: relation \"orders\" already exists\n"
	r := &Runner{Host: h}

	_, err := r.Up(ctx, s)
	var failed *FailedError
	if !errors.As(err, &failed) {
		t.Fatalf("error %v (%T) is not a *FailedError", err, err)
	}
	if failed.Direction != "up" || failed.ExitCode != 1 || failed.Output != "ERROR: relation \"orders\" already exists\n" {
		t.Errorf("failed = %+v", failed)
	}
	if !strings.Contains(err.Error(), "up") || !strings.Contains(err.Error(), "1") {
		t.Errorf("message %q", err.Error())
	}
	if len(h.created) != 1 || len(h.removed) != 1 {
		t.Errorf("created %d removed %v", len(h.created), h.removed)
	}
	if recs := h.records(t, s); len(recs) != 0 {
		t.Fatalf("failed run left records %+v", recs)
	}

	// Fixed (say, the database was repaired): the next apply runs it again.
	h.exitCodes[upLine(s)] = 0
	h.outputs[upLine(s)] = "applied\n"
	res, err := r.Up(ctx, s)
	if err != nil {
		t.Fatalf("retry: %v", err)
	}
	if res.Adopted || res.Output != "applied\n" {
		t.Errorf("retry result %+v", res)
	}
	if len(h.created) != 2 || len(h.started) != 2 {
		t.Errorf("retry created %d started %d in all, want 2", len(h.created), len(h.started))
	}
	if recs := h.records(t, s); len(recs) != 1 {
		t.Errorf("records after successful retry: %+v", recs)
	}
}

func TestDownRunsAndForgets(t *testing.T) {
	ctx := context.Background()
	h := newFakeHost()
	s := testSpec()
	h.outputs[upLine(s)] = "up\n"
	h.outputs[downLine(s)] = "dropped orders\n"
	r := &Runner{Host: h}

	if _, err := r.Up(ctx, s); err != nil {
		t.Fatal(err)
	}
	// A record of another migration must survive.
	other := testSpec()
	other.UpCommand = []string{"/app/migrate", "up", "--to", "43"}
	if _, err := r.Up(ctx, other); err != nil {
		t.Fatal(err)
	}
	// And an app container.
	appID := h.add(map[string]string{naming.LabelManaged: "true", naming.LabelKind: "app", naming.LabelDigest: testDigest}, "running", 0, "")

	res, err := r.Down(ctx, s)
	if err != nil {
		t.Fatalf("Down: %v", err)
	}
	if res.Output != "dropped orders\n" || res.Adopted {
		t.Errorf("down result %+v", res)
	}
	if len(h.created) != 3 {
		t.Fatalf("created %d containers, want 3 (up, other up, down)", len(h.created))
	}
	down := h.created[2]
	if !reflect.DeepEqual(down.Entrypoint, []string{"/app/migrate"}) || !reflect.DeepEqual(down.Cmd, []string{"down", "42"}) {
		t.Errorf("down ran %q %q", down.Entrypoint, down.Cmd)
	}
	if down.Labels[naming.LabelMigrationDir] != "down" || down.Labels[naming.LabelMigration] != s.Key() || !down.NoRestart {
		t.Errorf("down spec labels %v norestart %v", down.Labels, down.NoRestart)
	}
	if recs := h.records(t, s); len(recs) != 1 || recs[0].Labels[naming.LabelMigrationDir] != "down" {
		t.Errorf("records left after down: %+v, want the down's only", recs)
	}
	if recs := h.records(t, other); len(recs) != 1 {
		t.Errorf("down removed another migration's record: %+v", recs)
	}
	if _, ok := h.containers[appID]; !ok {
		t.Error("down removed an app container")
	}

	// Up after a down runs the migration again.
	res, err = r.Up(ctx, s)
	if err != nil {
		t.Fatal(err)
	}
	if res.Adopted {
		t.Error("up after down adopted a removed record")
	}
	if recs := h.records(t, s); len(recs) != 1 || recs[0].Labels[naming.LabelMigrationDir] != "up" {
		t.Errorf("records after the up again: %+v, want the new up's only", recs)
	}
	// And its next down runs again.
	if res, err := r.Down(ctx, s); err != nil || res.Adopted {
		t.Errorf("the down after a second up = %+v, %v; want it run", res, err)
	}
}

func TestDownFailureKeepsUpRecord(t *testing.T) {
	ctx := context.Background()
	h := newFakeHost()
	s := testSpec()
	h.outputs[upLine(s)] = "up\n"
	h.exitCodes[downLine(s)] = 2
	h.outputs[downLine(s)] = "cannot drop: in use\n"
	r := &Runner{Host: h}

	if _, err := r.Up(ctx, s); err != nil {
		t.Fatal(err)
	}
	_, err := r.Down(ctx, s)
	var failed *FailedError
	if !errors.As(err, &failed) {
		t.Fatalf("error %v (%T) is not a *FailedError", err, err)
	}
	if failed.Direction != "down" || failed.ExitCode != 2 || failed.Output != "cannot drop: in use\n" {
		t.Errorf("failed = %+v", failed)
	}
	recs := h.records(t, s)
	if len(recs) != 1 || recs[0].Labels[naming.LabelMigrationDir] != "up" {
		t.Fatalf("records after failed down = %+v, want the up record only", recs)
	}
	// The migration still counts as applied.
	res, err := r.Up(ctx, s)
	if err != nil {
		t.Fatal(err)
	}
	if !res.Adopted {
		t.Error("up record lost by a failed down")
	}

	// Once the down works, it runs (again) and forgets.
	h.exitCodes[downLine(s)] = 0
	if _, err := r.Down(ctx, s); err != nil {
		t.Fatal(err)
	}
	if recs := h.records(t, s); len(recs) != 1 || recs[0].Labels[naming.LabelMigrationDir] != "down" {
		t.Errorf("records left: %+v, want the down's only", recs)
	}
}

// downRuns counts the down commands started on the host.
func (h *fakeHost) downRuns() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := 0
	for _, spec := range h.created {
		if spec.Labels[naming.LabelMigrationDir] == "down" {
			n++
		}
	}
	return n
}

// failingRemoveHost fails the removal of the up's record once, as a kill of
// the provider between the down and the removal would leave the host.
type failingRemoveHost struct {
	*fakeHost
	failed bool
}

func (h *failingRemoveHost) Remove(ctx context.Context, id string) error {
	h.mu.Lock()
	fc, ok := h.containers[id]
	h.mu.Unlock()
	if ok && !h.failed && fc.c.Labels[naming.LabelMigrationDir] == "up" {
		h.failed = true
		return errors.New("killed")
	}
	return h.fakeHost.Remove(ctx, id)
}

// A destroy interrupted after the down command finished (before the up's
// record was removed, or after, before Terraform saved its state) is run
// again by the next destroy: the down is adopted, never run a second time.
func TestDownIsNotRunTwiceAcrossAnInterruption(t *testing.T) {
	ctx := context.Background()
	s := testSpec()

	t.Run("before the up's record is removed", func(t *testing.T) {
		h := &failingRemoveHost{fakeHost: newFakeHost()}
		r := &Runner{Host: h}
		if _, err := r.Up(ctx, s); err != nil {
			t.Fatal(err)
		}
		if _, err := r.Down(ctx, s); err == nil {
			t.Fatal("the interrupted down reported success")
		}
		res, err := r.Down(ctx, s)
		if err != nil || !res.Adopted || h.downRuns() != 1 {
			t.Fatalf("the destroy again = %+v, %v, with %d down runs; want the first run adopted", res, err, h.downRuns())
		}
		if recs := h.records(t, s); len(recs) != 1 || recs[0].Labels[naming.LabelMigrationDir] != "down" {
			t.Errorf("records %+v, want the down's only", recs)
		}
	})
	t.Run("after the up's record is removed", func(t *testing.T) {
		h := newFakeHost()
		r := &Runner{Host: h}
		if _, err := r.Up(ctx, s); err != nil {
			t.Fatal(err)
		}
		if _, err := r.Down(ctx, s); err != nil {
			t.Fatal(err)
		}
		// Terraform was killed before it recorded the destroy: it destroys again.
		res, err := r.Down(ctx, s)
		if err != nil || !res.Adopted || h.downRuns() != 1 {
			t.Fatalf("the destroy again = %+v, %v, with %d down runs; want the first run adopted", res, err, h.downRuns())
		}
	})
}

func TestCheckNotServing(t *testing.T) {
	ctx := context.Background()
	s := testSpec()
	app := func(digest string) map[string]string {
		return map[string]string{
			naming.LabelManaged: "true", naming.LabelKind: "app", naming.LabelDigest: digest, naming.LabelImage: "registry.example.com/shop@" + digest,
			"release.environment": "production", "release.service": "web",
		}
	}
	otherDigest := "sha256:9999999999999999999999999999999999999999999999999999999999999999"

	t.Run("running app with the digest blocks", func(t *testing.T) {
		h := newFakeHost()
		h.add(app(testDigest), "exited", 0, "")
		h.add(app(testDigest), "running", 0, "")
		err := CheckNotServing(ctx, h, s)
		var serving *ServingError
		if !errors.As(err, &serving) {
			t.Fatalf("error %v (%T) is not a *ServingError", err, err)
		}
		if serving.Environment != "production" || serving.Service != "web" || serving.Image != testImage {
			t.Errorf("serving = %+v", serving)
		}
		for _, want := range []string{"production", "web", testImage} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("message %q does not name %q", err.Error(), want)
			}
		}
	})
	t.Run("environments limits the check to those named", func(t *testing.T) {
		h := newFakeHost()
		h.add(app(testDigest), "running", 0, "") // production
		scoped := s
		scoped.Environments = []string{"staging"}
		if err := CheckNotServing(ctx, h, scoped); err != nil {
			t.Errorf("staging's migration is blocked by production: %v", err)
		}
		scoped.Environments = []string{"staging", "production"}
		var serving *ServingError
		if err := CheckNotServing(ctx, h, scoped); !errors.As(err, &serving) {
			t.Errorf("a named environment serving the image does not block: %v", err)
		}
	})
	t.Run("stopped, other digests and non-apps do not block", func(t *testing.T) {
		h := newFakeHost()
		h.add(app(testDigest), "exited", 0, "")
		h.add(app(testDigest), "created", 0, "")
		h.add(app(otherDigest), "running", 0, "")
		h.add(map[string]string{naming.LabelManaged: "true", naming.LabelKind: "migration", naming.LabelDigest: testDigest}, "running", 0, "")
		h.add(map[string]string{naming.LabelKind: "app", naming.LabelDigest: testDigest}, "running", 0, "") // not managed
		if err := CheckNotServing(ctx, h, s); err != nil {
			t.Errorf("CheckNotServing: %v", err)
		}
	})
}

func TestRedact(t *testing.T) {
	env := map[string]string{"PASSWORD": "hunter2", "TOKEN": "abcd", "SHORT": "abc", "PORT": "1"}
	in := "connecting with hunter2 and abcd on port 1 as abc"
	got := Redact(in, env)
	want := "connecting with (sensitive value) and (sensitive value) on port 1 as abc"
	if got != want {
		t.Errorf("Redact = %q, want %q", got, want)
	}
	if Redact("nothing here", nil) != "nothing here" {
		t.Error("Redact changed text without env")
	}
	if got := Redact("hunter2hunter2", env); strings.Contains(got, "hunter2") {
		t.Errorf("repeated value kept: %q", got)
	}
}

func TestRedactOverlappingValues(t *testing.T) {
	// One value inside another: the longer one must not be left partly visible,
	// whatever order the map gives.
	env := map[string]string{"USER": "admin", "PASSWORD": "admin-s3cret", "DB": "admin-s3cret@db"}
	for i := 0; i < 50; i++ {
		got := Redact("login admin-s3cret@db ok", env)
		if strings.Contains(got, "s3cret") || strings.Contains(got, "@db") {
			t.Fatalf("Redact leaked part of a value: %q", got)
		}
	}
}

// A destroy killed after the down finished leaves the migration in
// Terraform's state; the down's record says it was reverted.
func TestRevertedAfterAnInterruptedDown(t *testing.T) {
	ctx := context.Background()
	h := newFakeHost()
	s := testSpec()
	r := &Runner{Host: h}
	if reverted, err := r.Reverted(ctx, s); err != nil || reverted {
		t.Fatalf("Reverted before any run = %v, %v", reverted, err)
	}
	h.outputs[upLine(s)] = "ok\n"
	if _, err := r.Up(ctx, s); err != nil {
		t.Fatal(err)
	}
	if reverted, _ := r.Reverted(ctx, s); reverted {
		t.Fatal("Reverted after the up = true")
	}
	if _, err := r.Down(ctx, s); err != nil {
		t.Fatal(err)
	}
	if reverted, err := r.Reverted(ctx, s); err != nil || !reverted {
		t.Errorf("Reverted after the down = %v, %v; want true", reverted, err)
	}
	if _, err := r.Up(ctx, s); err != nil {
		t.Fatal(err)
	}
	if reverted, _ := r.Reverted(ctx, s); reverted {
		t.Error("Reverted after the migration was applied again = true")
	}
}
