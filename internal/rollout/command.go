package rollout

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/releasekit/terraform-provider-release/internal/clock"
	"github.com/releasekit/terraform-provider-release/internal/docker"
	"github.com/releasekit/terraform-provider-release/internal/naming"
)

// CanaryCommand is what an action asks of a canary in flight. The action
// cannot reach the apply running the canary (another process, which holds
// the state lock), so it leaves a marker on the host that the apply reads at
// every analysis.
type CanaryCommand string

const (
	CommandNone CanaryCommand = ""
	// CommandAbort puts every user back on stable and fails the apply.
	CommandAbort CanaryCommand = "abort"
	// CommandPromote skips the steps left and promotes the canary.
	CommandPromote CanaryCommand = "promote"
	// CommandHold keeps the canary at its weight, still judged, until
	// another command (or the apply's timeout, which aborts it).
	CommandHold CanaryCommand = "hold"
	// CommandHeld is left by an apply that ended at a manual step: not an
	// action's command, but what tells the next apply to continue.
	CommandHeld CanaryCommand = "held"
)

// ParseCanaryCommand reads a command's name.
func ParseCanaryCommand(s string) (CanaryCommand, bool) {
	switch c := CanaryCommand(s); c {
	case CommandAbort, CommandPromote, CommandHold:
		return c, true
	}
	return CommandNone, false
}

// NoCanaryError says an environment has no canary to command.
type NoCanaryError struct{ Environment, Service string }

func (e *NoCanaryError) Error() string {
	return fmt.Sprintf("%s/%s has no canary in flight", e.Environment, e.Service)
}

// SendCommand leaves cmd for the canary that st (the environment's service
// as observed now) shows in flight, replacing an earlier command, and
// returns the canary's revision.
func SendCommand(ctx context.Context, host Host, st Status, environment, service string, cmd CanaryCommand) (int, error) {
	if st.Canary == nil {
		return 0, &NoCanaryError{Environment: environment, Service: service}
	}
	image := ""
	for _, c := range st.Containers {
		if c.Labels[naming.LabelRevision] == strconv.Itoa(st.Canary.Revision) && naming.TrackOf(c.Labels) == naming.TrackCanary {
			image = c.Labels[naming.LabelImage]
			break
		}
	}
	if image == "" {
		return 0, &NoCanaryError{Environment: environment, Service: service}
	}
	if err := leaveCommand(ctx, host, environment, service, st.Canary.Revision, image, cmd); err != nil {
		return 0, err
	}
	return st.Canary.Revision, nil
}

// leaveCommand replaces the command marker of an environment's service.
func leaveCommand(ctx context.Context, host Host, environment, service string, revision int, image string, cmd CanaryCommand) error {
	if err := removeCommand(ctx, host, environment, service); err != nil {
		return err
	}
	err := createMarker(ctx, host, naming.CommandMarkerName(environment, service), image, naming.KindCommand, environment, service, revision,
		map[string]string{naming.LabelCommand: string(cmd)})
	if err != nil {
		return fmt.Errorf("leaving the command for the canary: %w", err)
	}
	return nil
}

// commandFor reads, from a listing, the command left for the canary of
// revision rev (CommandNone: none, or one for another revision).
func commandFor(environment, service string, rev int, managed []docker.Container) CanaryCommand {
	for _, c := range managed {
		l := c.Labels
		if naming.KindCommand.Is(l) && l[naming.LabelEnvironment] == environment && l[naming.LabelService] == service && atoi(l[naming.LabelRevision]) == rev {
			if cmd := CanaryCommand(l[naming.LabelCommand]); cmd == CommandHeld {
				return cmd
			}
			cmd, _ := ParseCanaryCommand(l[naming.LabelCommand])
			return cmd
		}
	}
	return CommandNone
}

// PendingCommand is the command left for an environment's service that no
// apply has carried out yet (CommandNone: none), and the canary revision it is for.
func PendingCommand(ctx context.Context, host Host, environment, service string) (CanaryCommand, int, error) {
	cs, err := commandMarkers(ctx, host, environment, service)
	if err != nil || len(cs) == 0 {
		return CommandNone, 0, err
	}
	cmd, _ := ParseCanaryCommand(cs[0].Labels[naming.LabelCommand])
	return cmd, atoi(cs[0].Labels[naming.LabelRevision]), nil
}

func commandMarkers(ctx context.Context, host Host, environment, service string) ([]docker.Container, error) {
	return host.List(ctx, map[string]string{
		naming.LabelManaged: "true", naming.LabelKind: string(naming.KindCommand),
		naming.LabelEnvironment: environment, naming.LabelService: service,
	})
}

func removeCommand(ctx context.Context, host Host, environment, service string) error {
	cs, err := commandMarkers(ctx, host, environment, service)
	if err != nil {
		return err
	}
	var errs []error
	for _, c := range cs {
		if err := host.Remove(ctx, c.ID); err != nil && !docker.IsNotFound(err) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// command reads the command left for the canary of revision rev; a
// command for another revision (an earlier canary) is ignored. A marker
// that cannot be read is no command: the canary goes on as planned.
func (d *Deployer) command(ctx context.Context, spec Spec, rev int) CanaryCommand {
	cmd, forRev, err := PendingCommand(ctx, d.Host, spec.Environment, spec.Service)
	if err != nil {
		d.log("cannot read the command markers", "error", err.Error())
		return CommandNone
	}
	if forRev != rev {
		return CommandNone
	}
	return cmd
}

// clearCommand removes the command marker once the canary it was for ended.
func (d *Deployer) clearCommand(ctx context.Context, spec Spec) {
	if err := removeCommand(context.WithoutCancel(ctx), d.Host, spec.Environment, spec.Service); err != nil {
		d.log("cannot remove the command marker", "error", err.Error())
	}
}

// hasCommand says whether a listing holds a command marker of spec's service.
func hasCommand(managed []docker.Container, spec Spec) bool {
	for _, c := range managed {
		if naming.KindCommand.Is(c.Labels) && c.Labels[naming.LabelEnvironment] == spec.Environment && c.Labels[naming.LabelService] == spec.Service {
			return true
		}
	}
	return false
}

// AwaitCommand waits up to wait for the apply running the canary of
// revision rev to carry cmd out: its marker is gone (the apply removes it
// when the canary ends) or replaced by another command. False when the wait
// ended first: the command stays for the next apply that resumes the canary.
func AwaitCommand(ctx context.Context, host Host, clk clock.Clock, environment, service string, cmd CanaryCommand, rev int, wait time.Duration) (bool, error) {
	deadline := clk.Now().Add(wait)
	for {
		pending, forRev, err := PendingCommand(ctx, host, environment, service)
		if err != nil {
			return false, err
		}
		if pending != cmd || forRev != rev {
			return true, nil
		}
		if !clk.Now().Before(deadline) {
			return false, nil
		}
		if err := clk.Sleep(ctx, 250*time.Millisecond); err != nil {
			return false, err
		}
	}
}
