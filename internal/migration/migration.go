// Package migration runs a release's database migration, up or down, in a
// container of the release's own pinned image, exactly once. A finished run
// leaves a stopped container labelled with the migration's key: that record
// is what makes a retry after an interrupted apply adopt the result instead
// of running the script a second time. A finished down keeps its record
// (and drops the up's) until the migration is applied again.
package migration

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/releasekit/terraform-provider-release/internal/docker"
	"github.com/releasekit/terraform-provider-release/internal/failpoint"
	"github.com/releasekit/terraform-provider-release/internal/naming"
)

// Spec is one migration.
type Spec struct {
	Image       string // repository@sha256:…
	Digest      string
	UpCommand   []string
	DownCommand []string
	Env         map[string]string
	Network     string
	// Environments, when set, are the only environments whose database the
	// migration changes; a down checks only them. Empty: every environment
	// on the host (environments with databases of their own, such as
	// staging and production on one host, should name theirs).
	Environments []string
	// Swarm, when set, runs the commands as Swarm replicated jobs on the
	// swarm the Docker host manages, placed by these constraints. Where a
	// command runs is not part of the migration's key.
	Swarm *Swarm
}

// Swarm places a migration's jobs.
type Swarm struct {
	Constraints []string
}

// Key identifies a migration by what it runs: the same image, commands,
// environment and network are the same migration.
func (s Spec) Key() string {
	keys := make([]string, 0, len(s.Env))
	for k := range s.Env {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	env := make([]string, 0, len(keys))
	for _, k := range keys {
		env = append(env, k+"="+s.Env[k])
	}
	b, _ := json.Marshal([]any{s.Image, s.UpCommand, s.DownCommand, env, s.Network})
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])[:20]
}

// Host is the Docker side of a migration run.
type Host interface {
	List(ctx context.Context, labels map[string]string) ([]docker.Container, error)
	Create(ctx context.Context, spec docker.ContainerSpec) (string, error)
	Start(ctx context.Context, id string) error
	Wait(ctx context.Context, id string) (int, error)
	ExitCode(ctx context.Context, id string) (int, time.Time, time.Time, error)
	Logs(ctx context.Context, id string, tail int) (string, error)
	Remove(ctx context.Context, id string) error
	EnsureImage(ctx context.Context, ref, registryAuth string) error
}

// Result is a finished run.
type Result struct {
	Output     string
	StartedAt  time.Time
	FinishedAt time.Time
	// Adopted is true when an earlier run of the same migration had already
	// finished (an apply interrupted after the run): nothing ran again.
	Adopted bool
}

// FailedError is a command that exited non-zero.
type FailedError struct {
	Direction string
	ExitCode  int
	Output    string
}

func (e *FailedError) Error() string {
	return fmt.Sprintf("the %s command exited with code %d", e.Direction, e.ExitCode)
}

// Runner runs migrations.
type Runner struct {
	Host         Host
	RegistryAuth func(image string) string
}

// OutputLines is how much output is kept and reported.
const OutputLines = 40

// Up runs the up command unless an earlier run of this migration finished.
// The record of an earlier down of the same migration (see Down) is
// cleared first: the migration is applied again, and its next down must run.
func (r *Runner) Up(ctx context.Context, s Spec) (Result, error) {
	return r.run(ctx, s, "up", s.UpCommand, func() error { return r.removeRecords(ctx, s, "down") })
}

// Down runs the down command once, then removes the up's record. The
// down's own record stays, as the mark that the down ran: an apply
// interrupted anywhere after the command finished (before the up's record
// is gone, or after, before Terraform saved its state) adopts it on the
// next destroy instead of running the down a second time.
func (r *Runner) Down(ctx context.Context, s Spec) (Result, error) {
	res, err := r.run(ctx, s, "down", s.DownCommand, nil)
	if err != nil {
		return res, err
	}
	failpoint.Hit(failpoint.MigrationDownRan)
	return res, r.removeRecords(ctx, s, "up")
}

// Reverted says whether the migration's down finished: its record is the
// mark (an apply killed after the down, before Terraform saved its state,
// leaves the migration in state although it was reverted).
func (r *Runner) Reverted(ctx context.Context, s Spec) (bool, error) {
	cs, err := r.Host.List(ctx, map[string]string{naming.LabelMigration: s.Key(), naming.LabelMigrationDir: "down"})
	if err != nil {
		return false, err
	}
	for _, c := range cs {
		if c.Running() || c.State == "created" {
			continue
		}
		if code, _, _, err := r.Host.ExitCode(ctx, c.ID); err == nil && code == 0 {
			return true, nil
		}
	}
	return false, nil
}

// removeRecords removes the records of one direction of a migration.
func (r *Runner) removeRecords(ctx context.Context, s Spec, direction string) error {
	cs, err := r.Host.List(ctx, map[string]string{naming.LabelMigration: s.Key(), naming.LabelMigrationDir: direction})
	if err != nil {
		return err
	}
	for _, c := range cs {
		if err := r.Host.Remove(ctx, c.ID); err != nil {
			return err
		}
	}
	return nil
}

// Forget removes every record of a migration without running anything.
func (r *Runner) Forget(ctx context.Context, s Spec) error {
	cs, err := r.Host.List(ctx, map[string]string{naming.LabelMigration: s.Key()})
	if err != nil {
		return err
	}
	for _, c := range cs {
		if err := r.Host.Remove(ctx, c.ID); err != nil {
			return err
		}
	}
	return nil
}

// run runs one direction of a migration unless a finished run of it is
// recorded; before, if set, runs just before a new run starts.
func (r *Runner) run(ctx context.Context, s Spec, direction string, cmd []string, before func() error) (Result, error) {
	key := s.Key()
	existing, err := r.Host.List(ctx, map[string]string{naming.LabelMigration: key, naming.LabelMigrationDir: direction})
	if err != nil {
		return Result{}, err
	}
	for _, c := range existing {
		if c.Running() {
			// A run from an interrupted apply is still going: wait for it rather than start another.
			if _, err := r.Host.Wait(ctx, c.ID); err != nil {
				return Result{}, err
			}
		}
		code, started, finished, err := r.Host.ExitCode(ctx, c.ID)
		if err != nil {
			return Result{}, err
		}
		out, _ := r.Host.Logs(ctx, c.ID, OutputLines)
		if code == 0 && c.State != "created" {
			return Result{Output: out, StartedAt: started, FinishedAt: finished, Adopted: true}, nil
		}
		// A failed or never-started run is not a record: clear it and run again.
		if err := r.Host.Remove(ctx, c.ID); err != nil {
			return Result{}, err
		}
	}

	if before != nil {
		if err := before(); err != nil {
			return Result{}, err
		}
	}
	if err := r.Host.EnsureImage(ctx, s.Image, r.registryAuth(s.Image)); err != nil {
		return Result{}, err
	}
	env := make([]string, 0, len(s.Env))
	for k, v := range s.Env {
		env = append(env, k+"="+v)
	}
	sort.Strings(env)
	var job *docker.ServiceOptions
	if s.Swarm != nil {
		job = &docker.ServiceOptions{Job: true, Constraints: s.Swarm.Constraints, RegistryAuth: r.registryAuth(s.Image)}
	}
	id, err := r.Host.Create(ctx, docker.ContainerSpec{
		Service: job,
		Name:    fmt.Sprintf("release-migrate-%s-%s", key[:12], direction),
		Image:   s.Image,
		// The whole command line is given: it replaces the image's entrypoint.
		Entrypoint: cmd[:1],
		Cmd:        cmd[1:],
		Env:        env,
		Network:    s.Network,
		Labels: map[string]string{
			naming.LabelManaged: "true", naming.LabelKind: "migration", naming.LabelMigration: key, naming.LabelMigrationDir: direction,
			naming.LabelImage: s.Image, naming.LabelDigest: s.Digest,
		},
		NoRestart: true,
	})
	if err != nil {
		return Result{}, err
	}
	if err := r.Host.Start(ctx, id); err != nil {
		_ = r.Host.Remove(context.WithoutCancel(ctx), id)
		return Result{}, fmt.Errorf("starting the %s command: %w", direction, err)
	}
	code, err := r.Host.Wait(ctx, id)
	if err != nil {
		// Interrupted: the container keeps running and the next apply adopts it.
		return Result{}, fmt.Errorf("waiting for the %s command: %w", direction, err)
	}
	out, _ := r.Host.Logs(ctx, id, OutputLines)
	_, started, finished, _ := r.Host.ExitCode(ctx, id)
	if code != 0 {
		_ = r.Host.Remove(context.WithoutCancel(ctx), id)
		return Result{}, &FailedError{Direction: direction, ExitCode: code, Output: out}
	}
	if direction == "up" {
		// The up finished; Terraform has not recorded it yet: the container is the record the next apply adopts.
		failpoint.Hit(failpoint.MigrationRan)
	}
	return Result{Output: out, StartedAt: started, FinishedAt: finished}, nil
}

func (r *Runner) registryAuth(image string) string {
	if r.RegistryAuth == nil {
		return ""
	}
	return r.RegistryAuth(image)
}

// ServingError says a down would drop a change that a running release needs.
type ServingError struct {
	Environment, Service, Image string
}

func (e *ServingError) Error() string {
	return fmt.Sprintf("environment %s/%s still runs %s, released with this migration", e.Environment, e.Service, e.Image)
}

// CheckNotServing refuses a down while any environment runs the migration's
// image: the schema is never dropped under a running version that needs it.
func CheckNotServing(ctx context.Context, h Host, s Spec) error {
	cs, err := h.List(ctx, map[string]string{naming.LabelManaged: "true", naming.LabelKind: "app", naming.LabelDigest: s.Digest})
	if err != nil {
		return err
	}
	scope := map[string]bool{}
	for _, e := range s.Environments {
		scope[e] = true
	}
	for _, c := range cs {
		if len(scope) > 0 && !scope[c.Labels[naming.LabelEnvironment]] {
			continue
		}
		if c.Running() {
			return &ServingError{Environment: c.Labels[naming.LabelEnvironment], Service: c.Labels[naming.LabelService], Image: c.Labels[naming.LabelImage]}
		}
	}
	return nil
}

// Redact replaces the values of sensitive variables in text, so that output
// kept in state or shown in errors never carries them.
func Redact(text string, env map[string]string) string {
	values := make([]string, 0, len(env))
	for _, v := range env {
		if len(v) >= 4 {
			values = append(values, v)
		}
	}
	// Longest first: a value inside another must not leave the rest of the longer one visible.
	sort.Slice(values, func(i, j int) bool { return len(values[i]) > len(values[j]) })
	for _, v := range values {
		text = strings.ReplaceAll(text, v, "(sensitive value)")
	}
	return text
}
