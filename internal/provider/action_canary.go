package provider

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/hashicorp/terraform-plugin-framework/action"
	"github.com/hashicorp/terraform-plugin-framework/action/schema"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
	"github.com/hashicorp/terraform-plugin-framework/types"

	"github.com/releasekit/terraform-provider-release/internal/clock"
	"github.com/releasekit/terraform-provider-release/internal/rollout"
)

var _ action.ActionWithConfigure = (*canaryAction)(nil)

// NewCanaryAbortAction returns the release_canary_abort action.
func NewCanaryAbortAction() action.Action { return &canaryAction{command: rollout.CommandAbort} }

// NewCanaryPromoteAction returns the release_canary_promote action.
func NewCanaryPromoteAction() action.Action { return &canaryAction{command: rollout.CommandPromote} }

// NewCanaryHoldAction returns the release_canary_hold action.
func NewCanaryHoldAction() action.Action { return &canaryAction{command: rollout.CommandHold} }

// canaryAction acts on a canary that another apply is running (Terraform
// 1.14 and later, `terraform apply -invoke=action.<type>.<name>`). That apply
// holds its state's lock and runs in another process, so the action leaves
// its command on the Docker host, where the apply reads it at every analysis.
type canaryAction struct {
	data    *providerData
	command rollout.CanaryCommand
}

type canaryActionModel struct {
	Environment types.String `tfsdk:"environment"`
	Service     types.String `tfsdk:"service"`
	Wait        types.String `tfsdk:"wait"`
}

// defaultActionWait is how long abort and promote wait for the running apply.
const defaultActionWait = 2 * time.Minute

var canaryActionDescriptions = map[rollout.CanaryCommand]string{
	rollout.CommandAbort: "Aborts a canary in flight: at its next analysis the apply running it puts every user back on the stable revision, " +
		"removes the canary and baseline, and fails with \"aborted by action\". The configuration still asks for the new image, so the next apply starts the canary again; revert the change of image to stay on stable.",
	rollout.CommandPromote: "Promotes a canary in flight: at its next analysis the apply running it skips the steps left, sends every user to the canary " +
		"(still only if its containers run and the router reports them UP) and completes the rollout.",
	rollout.CommandHold: "Holds a canary in flight at its weight: the apply running it stays at the current step, still judging it every interval " +
		"(a failing analysis still aborts it), until the promote or abort action, or the apply's timeout, which aborts it.",
}

func (a *canaryAction) Metadata(_ context.Context, req action.MetadataRequest, resp *action.MetadataResponse) {
	resp.TypeName = req.ProviderTypeName + "_canary_" + string(a.command)
}

func (a *canaryAction) Schema(_ context.Context, _ action.SchemaRequest, resp *action.SchemaResponse) {
	resp.Schema = schema.Schema{
		MarkdownDescription: canaryActionDescriptions[a.command],
		Attributes: map[string]schema.Attribute{
			"environment": schema.StringAttribute{
				Required: true, Description: "The environment whose canary to act on: its release_environment's name.",
				Validators: []validator.String{nameValidator()},
			},
			"service": schema.StringAttribute{
				Required: true, Description: "The service of that environment, such as `web`.",
				Validators: []validator.String{nameValidator()},
			},
			"wait": schema.StringAttribute{
				Optional: true,
				Description: "How long abort and promote wait for the running apply to carry the command out (it does at its next analysis), " +
					"such as `2m` (the default). The command stays on the host when the wait ends first. Hold does not wait.",
			},
		},
	}
}

func (a *canaryAction) Configure(_ context.Context, req action.ConfigureRequest, resp *action.ConfigureResponse) {
	a.data = providerDataFrom(req.ProviderData, &resp.Diagnostics)
}

func (a *canaryAction) Invoke(ctx context.Context, req action.InvokeRequest, resp *action.InvokeResponse) {
	var cfg canaryActionModel
	resp.Diagnostics.Append(req.Config.Get(ctx, &cfg)...)
	if resp.Diagnostics.HasError() {
		return
	}
	wait := defaultActionWait
	if !cfg.Wait.IsNull() {
		d, err := time.ParseDuration(cfg.Wait.ValueString())
		if err != nil || d <= 0 {
			resp.Diagnostics.AddAttributeError(path.Root("wait"), "Invalid Duration", fmt.Sprintf("wait must be a positive duration such as 30s or 2m, got %q.", cfg.Wait.ValueString()))
			return
		}
		wait = d
	}
	env, service := cfg.Environment.ValueString(), cfg.Service.ValueString()
	st, err := observeEnvironment(ctx, a.data, env, service, "")
	if err != nil {
		addDockerError(&resp.Diagnostics, a.data, "Cannot Read Environment", err)
		return
	}
	if !st.Found {
		resp.Diagnostics.AddAttributeError(path.Root("environment"), "Environment Not Found",
			fmt.Sprintf("No container of %s/%s runs on the Docker host %s. Check environment and service against the release_environment.", env, service, a.data.engine.Host()))
		return
	}
	rev, err := rollout.SendCommand(ctx, a.data.engine, st, env, service, a.command)
	var none *rollout.NoCanaryError
	switch {
	case errors.As(err, &none):
		resp.Diagnostics.AddAttributeError(path.Root("environment"), "No Canary In Flight",
			fmt.Sprintf("%s/%s serves revision %d and has no canary to %s: the route gives no traffic to a canary. Nothing was changed.", env, service, st.Revision, a.command))
		return
	case err != nil:
		addDockerError(&resp.Diagnostics, a.data, "Cannot Leave The Command", err)
		return
	}
	progress(resp, fmt.Sprintf("%s left for the canary of revision %d of %s/%s; the apply running it reads it at its next analysis", a.command, rev, env, service))
	if a.command == rollout.CommandHold {
		return
	}
	carried, err := rollout.AwaitCommand(ctx, a.data.engine, clock.Real{}, env, service, a.command, rev, wait)
	switch {
	case err != nil && ctx.Err() != nil:
		return
	case err != nil:
		addDockerError(&resp.Diagnostics, a.data, "Cannot Read The Command", err)
		return
	case !carried:
		resp.Diagnostics.AddWarning("Command Not Carried Out Yet",
			fmt.Sprintf("No apply carried out %s for the canary of revision %d of %s/%s within %s: none is running it now (an interrupted apply, or a canary held at a manual step), or its analyses are further apart. "+
				"The command stays on the host, and the next apply that resumes the canary carries it out at its first analysis.", a.command, rev, env, service, wait))
		return
	}
	a.data.invalidate()
	after, err := observeEnvironment(ctx, a.data, env, service, "")
	if err != nil {
		addDockerError(&resp.Diagnostics, a.data, "Cannot Read Environment", err)
		return
	}
	switch {
	case after.Canary != nil:
		progress(resp, fmt.Sprintf("the command was taken, and a canary of revision %d still gets %d%% of traffic", after.Canary.Revision, after.Canary.Weight))
	default:
		progress(resp, fmt.Sprintf("done: every user of %s/%s is on revision %d", env, service, after.Revision))
	}
}

func progress(resp *action.InvokeResponse, msg string) {
	if resp.SendProgress != nil {
		resp.SendProgress(action.InvokeProgressEvent{Message: msg})
	}
}
