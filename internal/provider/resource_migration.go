package provider

import (
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"sort"
	"time"

	"github.com/hashicorp/terraform-plugin-framework-timeouts/resource/timeouts"
	"github.com/hashicorp/terraform-plugin-framework-validators/listvalidator"
	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/resource"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/booldefault"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/planmodifier"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/stringplanmodifier"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
	"github.com/hashicorp/terraform-plugin-framework/types"

	"github.com/releasekit/terraform-provider-release/internal/docker"
	"github.com/releasekit/terraform-provider-release/internal/imageref"
	"github.com/releasekit/terraform-provider-release/internal/migration"
	"github.com/releasekit/terraform-provider-release/internal/naming"
	"github.com/releasekit/terraform-provider-release/internal/rollout"
	"github.com/releasekit/terraform-provider-release/internal/validators"
)

var (
	_ resource.ResourceWithConfigure  = (*migrationResource)(nil)
	_ resource.ResourceWithModifyPlan = (*migrationResource)(nil)
)

// NewMigrationResource returns the release_migration resource.
func NewMigrationResource() resource.Resource {
	return &migrationResource{}
}

// migrationResource runs a release's up script at create and its down
// script at destroy, from the release's own pinned image.
type migrationResource struct {
	data *providerData
}

type migrationModel struct {
	ID                types.String   `tfsdk:"id"`
	Image             types.String   `tfsdk:"image"`
	UpCommand         types.List     `tfsdk:"up_command"`
	DownCommand       types.List     `tfsdk:"down_command"`
	Env               types.Map      `tfsdk:"env"`
	Network           types.String   `tfsdk:"network"`
	AllowReplace      types.Bool     `tfsdk:"allow_replace"`
	AllowIrreversible types.Bool     `tfsdk:"allow_irreversible"`
	Environments      types.List     `tfsdk:"environments"`
	Swarm             types.Object   `tfsdk:"swarm"`
	Timeouts          timeouts.Value `tfsdk:"timeouts"`
	Output            types.String   `tfsdk:"output"`
	AppliedAt         types.String   `tfsdk:"applied_at"`
}

func (r *migrationResource) Configure(_ context.Context, req resource.ConfigureRequest, resp *resource.ConfigureResponse) {
	r.data = providerDataFrom(req.ProviderData, &resp.Diagnostics)
}

func (r *migrationResource) Metadata(_ context.Context, req resource.MetadataRequest, resp *resource.MetadataResponse) {
	resp.TypeName = req.ProviderTypeName + "_migration"
}

func (r *migrationResource) Schema(ctx context.Context, _ resource.SchemaRequest, resp *resource.SchemaResponse) {
	resp.Schema = schema.Schema{
		Description: "A database migration that moves with a release: create runs `up_command` in a container of the release's pinned image, " +
			"destroy runs `down_command` from the same image. The image, the down command and its environment are kept in state, so a " +
			"revert of the configuration can undo the migration after the code that created it is gone. Always give it " +
			"`lifecycle { create_before_destroy = true }`: only then does Terraform switch traffic back before the down runs.",
		Attributes: map[string]schema.Attribute{
			"id": schema.StringAttribute{
				Description:   "Key of the migration on the host: a hash of the image, commands, environment and network.",
				Computed:      true,
				PlanModifiers: []planmodifier.String{stringplanmodifier.UseStateForUnknown()},
			},
			"image": schema.StringAttribute{
				Description: "The release's pinned image, `repository@sha256:…` (`release_image.<name>.ref`): the migration runs from exactly the code it belongs to.",
				Required:    true, Validators: []validator.String{validators.PinnedReference()},
			},
			"up_command": schema.ListAttribute{
				Description: "Command line that applies the migration, such as `[\"/app\", \"migrate\", \"up\"]`; it replaces the image's entrypoint. Success is exit code 0.",
				Required:    true, ElementType: types.StringType, Validators: []validator.List{listvalidator.SizeAtLeast(1)},
			},
			"down_command": schema.ListAttribute{
				Description: "Command line that reverts the migration, run at destroy; it replaces the image's entrypoint. Without one, destroy refuses unless `allow_irreversible` is true.",
				Optional:    true, ElementType: types.StringType, Validators: []validator.List{listvalidator.SizeAtLeast(1)},
			},
			"env": schema.MapAttribute{
				Description: "Environment of both commands, such as `DATABASE_URL`. Sensitive: kept in state for the down command, never logged, and redacted from the output.",
				Optional:    true, Sensitive: true, ElementType: types.StringType,
			},
			"network": schema.StringAttribute{
				Description: "Docker network the commands run on, to reach the database. Defaults to Docker's default bridge.",
				Optional:    true,
			},
			"allow_replace": schema.BoolAttribute{
				Description: "Allow a change of `image` or the commands to replace the migration: the old down command runs, then the new up command. " +
					"Off by default, because a migration is normally immutable: add a new release_migration instead.",
				Optional: true, Computed: true, Default: booldefault.StaticBool(false),
			},
			"allow_irreversible": schema.BoolAttribute{
				Description: "Allow destroying a migration without `down_command`: the change stays in the database and only the record is removed.",
				Optional:    true, Computed: true, Default: booldefault.StaticBool(false),
			},
			"environments": schema.ListAttribute{
				Description: "The environments whose database this migration changes, such as `[\"staging\"]`. A down refuses while one of them " +
					"still serves the migration's image. Defaults to every environment on the Docker host, which is safe but too broad when " +
					"environments with databases of their own share a host. Each name must be an environment on the host: a down refuses a name that " +
					"is not there and never was (a misspelt name would leave the environment that was meant unprotected), and a plan that changes it " +
					"refuses one too; a new migration only warns, since its environment may be created after it in the same apply. " +
					"Changing it changes nothing on the host.",
				Optional: true, ElementType: types.StringType,
			},
			"swarm": swarmAttribute("Run the commands as Swarm replicated jobs (one task, never restarted) on the swarm whose manager the provider talks to, " +
				"as `release_environment.swarm` runs an environment there; `network` must then be an attachable overlay, or unset. " +
				"Where the commands run is not part of the migration: changing it changes nothing on the host."),
			"timeouts": timeouts.Attributes(ctx, timeouts.Opts{Create: true, Delete: true}),
			"output": schema.StringAttribute{
				Description: "The last lines the up command printed, with sensitive values redacted.",
				Computed:    true,
			},
			"applied_at": schema.StringAttribute{
				Description: "When the up command finished (RFC 3339).",
				Computed:    true,
			},
		},
	}
}

// ModifyPlan keeps a migration immutable unless replacement is allowed,
// and checks that `environments` names environments on the host.
func (r *migrationResource) ModifyPlan(ctx context.Context, req resource.ModifyPlanRequest, resp *resource.ModifyPlanResponse) {
	if req.Plan.Raw.IsNull() {
		// A destroy: the environments are noted as they are before the apply
		// destroys any, for the down to tell them from a typo.
		var state migrationModel
		if req.State.Raw.IsNull() || req.State.Get(ctx, &state).HasError() {
			return
		}
		seen, d := seenEnvironments(ctx, req.Private)
		resp.Diagnostics.Append(d...)
		if spec, d := r.spec(ctx, state); !d.HasError() && r.data != nil {
			resp.Diagnostics.Append(r.recordSeen(ctx, spec, seen, resp.Private)...)
		}
		return
	}
	var plan, state migrationModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &plan)...)
	if resp.Diagnostics.HasError() {
		return
	}
	checkSwarmManager(ctx, r.data, plan.Swarm, "remove `swarm` to run the commands in containers on this host", &resp.Diagnostics)
	if req.State.Raw.IsNull() {
		// The environment may be created after the migration, in this same
		// apply (it depends on it): a name not on the host is only a warning
		// now, and the down refuses it unless the environment was seen since.
		if missing, onHost, ok := r.unknownEnvironments(ctx, plan.Environments, nil, false); ok && len(missing) > 0 {
			addEnvironmentsNotOnHostWarning(&resp.Diagnostics, r.data.engine.Host(), missing, onHost)
		}
		return
	}
	resp.Diagnostics.Append(req.State.Get(ctx, &state)...)
	if resp.Diagnostics.HasError() {
		return
	}
	if !plan.Environments.Equal(state.Environments) {
		seen, d := seenEnvironments(ctx, req.Private)
		resp.Diagnostics.Append(d...)
		if missing, onHost, ok := r.unknownEnvironments(ctx, plan.Environments, seen, false); ok && len(missing) > 0 {
			addUnknownEnvironmentsError(&resp.Diagnostics, r.data.engine.Host(), missing, onHost, "Nothing was changed.")
			return
		}
	}
	var changed []path.Path
	if !plan.Image.Equal(state.Image) {
		changed = append(changed, path.Root("image"))
	}
	if !plan.UpCommand.Equal(state.UpCommand) {
		changed = append(changed, path.Root("up_command"))
	}
	if !plan.DownCommand.Equal(state.DownCommand) {
		changed = append(changed, path.Root("down_command"))
	}
	if !plan.Env.Equal(state.Env) || !plan.Network.Equal(state.Network) {
		// A different environment or network is a different run: the recorded one must not be reused.
		changed = append(changed, path.Root("env"))
	}
	if len(changed) == 0 {
		plan.ID, plan.Output, plan.AppliedAt = state.ID, state.Output, state.AppliedAt
		resp.Diagnostics.Append(resp.Plan.Set(ctx, &plan)...)
		return
	}
	if !plan.AllowReplace.ValueBool() {
		resp.Diagnostics.AddAttributeError(changed[0], "Migration Cannot Change",
			"A migration that has run is immutable: changing its image, commands, environment or network would mean running the old down "+
				"command and the new up command against the database. To release a new schema change, add a new release_migration that "+
				"depends on this one. If replacing this one is really intended, set allow_replace = true.")
		return
	}
	resp.RequiresReplace = changed
}

func (r *migrationResource) spec(ctx context.Context, m migrationModel) (migration.Spec, diag.Diagnostics) {
	var diags diag.Diagnostics
	ref, err := imageref.ParsePinned(m.Image.ValueString())
	if err != nil {
		addImageNotPinnedError(&diags, err)
		return migration.Spec{}, diags
	}
	s := migration.Spec{Image: m.Image.ValueString(), Digest: ref.Digest, Network: m.Network.ValueString(), Env: map[string]string{}}
	diags.Append(m.UpCommand.ElementsAs(ctx, &s.UpCommand, false)...)
	if !m.DownCommand.IsNull() {
		diags.Append(m.DownCommand.ElementsAs(ctx, &s.DownCommand, false)...)
	}
	if !m.Env.IsNull() {
		diags.Append(m.Env.ElementsAs(ctx, &s.Env, false)...)
	}
	if !m.Environments.IsNull() {
		diags.Append(m.Environments.ElementsAs(ctx, &s.Environments, false)...)
	}
	onSwarm, d := swarmSpec(ctx, m.Swarm)
	diags.Append(d...)
	if onSwarm != nil {
		s.Swarm = &migration.Swarm{Constraints: onSwarm.Constraints}
	}
	return s, diags
}

func (r *migrationResource) runner() *migration.Runner {
	return &migration.Runner{Host: r.data.engine, RegistryAuth: r.data.pullAuth}
}

func (r *migrationResource) Create(ctx context.Context, req resource.CreateRequest, resp *resource.CreateResponse) {
	var plan migrationModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &plan)...)
	if resp.Diagnostics.HasError() {
		return
	}
	spec, diags := r.spec(ctx, plan)
	resp.Diagnostics.Append(diags...)
	if resp.Diagnostics.HasError() {
		return
	}
	timeout, diags := plan.Timeouts.Create(ctx, 30*time.Minute)
	resp.Diagnostics.Append(diags...)
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()

	res, err := r.runner().Up(ctx, spec)
	if err != nil {
		addMigrationRunError(&resp.Diagnostics, r.data, "Migration Up Failed", spec, err,
			"The migration is not recorded as applied. Fix the cause and apply again; the environments that depend on it were not changed.")
		return
	}
	resp.Diagnostics.Append(r.recordSeen(ctx, spec, nil, resp.Private)...)
	plan.ID = types.StringValue(spec.Key())
	plan.Output = types.StringValue(migration.Redact(res.Output, spec.Env))
	plan.AppliedAt = types.StringValue(res.FinishedAt.UTC().Format(time.RFC3339Nano))
	if res.Adopted {
		resp.Diagnostics.AddWarning("Migration Already Applied",
			"An earlier run of this exact migration had already finished on "+r.data.engine.Host()+" (an apply was interrupted after it), so it was recorded without running it again.")
	}
	resp.Diagnostics.Append(resp.State.Set(ctx, &plan)...)
}

// Read keeps the state: the database is the migration's truth and the
// provider does not query it. It notes which named environments are on
// the host now (in private state), so that a down later knows them from a typo.
func (r *migrationResource) Read(ctx context.Context, req resource.ReadRequest, resp *resource.ReadResponse) {
	var state migrationModel
	resp.Diagnostics.Append(req.State.Get(ctx, &state)...)
	if resp.Diagnostics.HasError() {
		return
	}
	seen, d := seenEnvironments(ctx, req.Private)
	resp.Diagnostics.Append(d...)
	if spec, d := r.spec(ctx, state); !d.HasError() && r.data != nil {
		// A destroy killed after the down finished left the migration in
		// state: it is reverted, and the plan says so by not having it.
		reverted, err := r.runner().Reverted(ctx, spec)
		if err != nil {
			addDockerError(&resp.Diagnostics, r.data, "Cannot Read Migration", err)
			return
		}
		if reverted {
			resp.State.RemoveResource(ctx)
			return
		}
		resp.Diagnostics.Append(r.recordSeen(ctx, spec, seen, resp.Private)...)
	}
	resp.Diagnostics.Append(resp.State.Set(ctx, &state)...)
}

// Update changes only settings that do not touch the database (timeouts,
// flags, environments); environments must name environments on the host.
func (r *migrationResource) Update(ctx context.Context, req resource.UpdateRequest, resp *resource.UpdateResponse) {
	var plan, prior migrationModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &plan)...)
	resp.Diagnostics.Append(req.State.Get(ctx, &prior)...)
	if resp.Diagnostics.HasError() {
		return
	}
	if !plan.Environments.Equal(prior.Environments) {
		seen, d := seenEnvironments(ctx, req.Private)
		resp.Diagnostics.Append(d...)
		missing, onHost, ok := r.unknownEnvironments(ctx, plan.Environments, seen, true)
		if !ok {
			addDockerError(&resp.Diagnostics, r.data, "Cannot Check Environments", fmt.Errorf("the environments on the host could not be listed"))
			return
		}
		if len(missing) > 0 {
			addUnknownEnvironmentsError(&resp.Diagnostics, r.data.engine.Host(), missing, onHost, "Nothing was changed.")
			return
		}
		if spec, d := r.spec(ctx, plan); !d.HasError() {
			resp.Diagnostics.Append(r.recordSeen(ctx, spec, seen, resp.Private)...)
		}
	}
	resp.Diagnostics.Append(resp.State.Set(ctx, &plan)...)
}

func (r *migrationResource) Delete(ctx context.Context, req resource.DeleteRequest, resp *resource.DeleteResponse) {
	var state migrationModel
	resp.Diagnostics.Append(req.State.Get(ctx, &state)...)
	if resp.Diagnostics.HasError() {
		return
	}
	spec, diags := r.spec(ctx, state)
	resp.Diagnostics.Append(diags...)
	if resp.Diagnostics.HasError() {
		return
	}
	timeout, diags := state.Timeouts.Delete(ctx, 30*time.Minute)
	resp.Diagnostics.Append(diags...)
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()

	if len(spec.DownCommand) == 0 {
		if !state.AllowIrreversible.ValueBool() {
			resp.Diagnostics.AddError("Migration Has No Down Command",
				fmt.Sprintf("The migration from %s has no down_command, so destroying it cannot undo its change. It stays in state. "+
					"Set allow_irreversible = true and apply, then destroy, to drop only the record and keep the change in the database.", spec.Image))
			return
		}
		if err := r.runner().Forget(ctx, spec); err != nil {
			addDockerError(&resp.Diagnostics, r.data, "Cannot Remove Migration Record", err)
		}
		return
	}

	// A name that is not on the host and never was is a typo: the serving
	// check would pass over the environment that was meant.
	seen, d := seenEnvironments(ctx, req.Private)
	resp.Diagnostics.Append(d...)
	missing, onHost, ok := r.unknownEnvironments(ctx, state.Environments, seen, true)
	if !ok {
		addDockerError(&resp.Diagnostics, r.data, "Cannot Check Environments", fmt.Errorf("the environments on the host could not be listed"))
		return
	}
	if len(missing) > 0 {
		addUnknownEnvironmentsError(&resp.Diagnostics, r.data.engine.Host(), missing, onHost,
			"The down command was not run and the migration stays in state, still applied. Set environments to the environments whose "+
				"database it changed and apply, then destroy it again.")
		return
	}
	if err := migration.CheckNotServing(ctx, r.data.engine, spec); err != nil {
		if !addStillServingError(&resp.Diagnostics, err) {
			addDockerError(&resp.Diagnostics, r.data, "Cannot Check Environments", err)
		}
		return
	}
	if _, err := r.runner().Down(ctx, spec); err != nil {
		addMigrationRunError(&resp.Diagnostics, r.data, "Migration Down Failed", spec, err,
			"The migration stays in state, still applied. Fix the cause and destroy again.")
	}
}

// privateSeen is the private-state key of the named environments the
// provider has seen on the host, as a JSON list.
const privateSeen = "environments_seen"

// privateData is the private state of a request or response.
type privateData interface {
	GetKey(ctx context.Context, key string) ([]byte, diag.Diagnostics)
}

// seenEnvironments reads the named environments seen on the host so far.
func seenEnvironments(ctx context.Context, p privateData) (map[string]bool, diag.Diagnostics) {
	seen := map[string]bool{}
	if p == nil || reflect.ValueOf(p).IsNil() {
		return seen, nil
	}
	b, diags := p.GetKey(ctx, privateSeen)
	var names []string
	if len(b) > 0 {
		_ = json.Unmarshal(b, &names)
	}
	for _, n := range names {
		seen[n] = true
	}
	return seen, diags
}

// recordSeen adds the named environments that are on the host now to
// those seen before, in the response's private state.
func (r *migrationResource) recordSeen(ctx context.Context, spec migration.Spec, seen map[string]bool, p interface {
	SetKey(ctx context.Context, key string, value []byte) diag.Diagnostics
}) diag.Diagnostics {
	if len(spec.Environments) == 0 || r.data == nil {
		return nil
	}
	onHost, err := r.environmentsOnHost(ctx, false)
	if err != nil {
		return nil // a later look records them
	}
	names := []string{}
	for _, n := range spec.Environments {
		if seen[n] || onHost[n] {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	b, _ := json.Marshal(names)
	return p.SetKey(ctx, privateSeen, b)
}

// environmentsOnHost lists the environments that have containers on the
// host; fresh skips the listing shared by a refresh.
func (r *migrationResource) environmentsOnHost(ctx context.Context, fresh bool) (map[string]bool, error) {
	var managed []docker.Container
	var err error
	if fresh {
		managed, err = rollout.ListManaged(ctx, r.data.engine)
	} else {
		managed, err = r.data.snapshot.listing(ctx, r.data.engine)
	}
	if err != nil {
		return nil, err
	}
	out := map[string]bool{}
	for _, c := range managed {
		if naming.KindApp.Is(c.Labels) && c.Labels[naming.LabelEnvironment] != "" {
			out[c.Labels[naming.LabelEnvironment]] = true
		}
	}
	return out, nil
}

// unknownEnvironments returns the names in environments that are neither on
// the host nor seen before, and the environments on the host, sorted. ok is
// false when that cannot be told: names unknown, or the host unreadable.
func (r *migrationResource) unknownEnvironments(ctx context.Context, environments types.List, seen map[string]bool, fresh bool) (missing, onHost []string, ok bool) {
	if r.data == nil || environments.IsUnknown() {
		return nil, nil, false
	}
	if environments.IsNull() {
		return nil, nil, true
	}
	var names []types.String
	if d := environments.ElementsAs(ctx, &names, false); d.HasError() {
		return nil, nil, false
	}
	host, err := r.environmentsOnHost(ctx, fresh)
	if err != nil {
		return nil, nil, false
	}
	for _, n := range names {
		if n.IsUnknown() {
			return nil, nil, false
		}
		if !host[n.ValueString()] && !seen[n.ValueString()] {
			missing = append(missing, n.ValueString())
		}
	}
	for n := range host {
		onHost = append(onHost, n)
	}
	sort.Strings(onHost)
	return missing, onHost, true
}
