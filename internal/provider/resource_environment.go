package provider

import (
	"context"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/hashicorp/terraform-plugin-framework-timeouts/resource/timeouts"
	"github.com/hashicorp/terraform-plugin-framework-validators/int64validator"
	"github.com/hashicorp/terraform-plugin-framework-validators/stringvalidator"
	"github.com/hashicorp/terraform-plugin-framework/attr"
	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/resource"
	"github.com/hashicorp/terraform-plugin-framework/resource/identityschema"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/int64default"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/objectdefault"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/planmodifier"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/stringdefault"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/stringplanmodifier"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
	"github.com/hashicorp/terraform-plugin-framework/tfsdk"
	"github.com/hashicorp/terraform-plugin-framework/types"
	"github.com/hashicorp/terraform-plugin-log/tflog"

	"github.com/releasekit/terraform-provider-release/internal/canary"
	"github.com/releasekit/terraform-provider-release/internal/imageref"
	"github.com/releasekit/terraform-provider-release/internal/naming"
	"github.com/releasekit/terraform-provider-release/internal/rollout"
	"github.com/releasekit/terraform-provider-release/internal/router"
	"github.com/releasekit/terraform-provider-release/internal/validators"
)

var (
	_ resource.ResourceWithConfigure   = (*environmentResource)(nil)
	_ resource.ResourceWithImportState = (*environmentResource)(nil)
	_ resource.ResourceWithModifyPlan  = (*environmentResource)(nil)
	_ resource.ResourceWithIdentity    = (*environmentResource)(nil)
)

// environmentIdentity is what identifies an environment on its Docker host
// (Terraform 1.12 and later: import blocks with identity, terraform query).
type environmentIdentity struct {
	Name    types.String `tfsdk:"name"`
	Service types.String `tfsdk:"service"`
}

func (r *environmentResource) IdentitySchema(_ context.Context, _ resource.IdentitySchemaRequest, resp *resource.IdentitySchemaResponse) {
	resp.IdentitySchema = identityschema.Schema{
		Attributes: map[string]identityschema.Attribute{
			"name":    identityschema.StringAttribute{RequiredForImport: true, Description: "The environment's name, such as `production`."},
			"service": identityschema.StringAttribute{RequiredForImport: true, Description: "The service the environment releases, such as `web`."},
		},
	}
}

// setIdentity records the identity of the environment name/service.
func setEnvironmentIdentity(ctx context.Context, identity *tfsdk.ResourceIdentity, name, service types.String, diags *diag.Diagnostics) {
	if identity != nil {
		diags.Append(identity.Set(ctx, environmentIdentity{Name: name, Service: service})...)
	}
}

// NewEnvironmentResource returns the release_environment resource.
func NewEnvironmentResource() resource.Resource {
	return &environmentResource{}
}

// environmentResource binds a pinned digest to an environment's service and
// switches to it without downtime.
type environmentResource struct {
	data *providerData
}

func (r *environmentResource) Configure(_ context.Context, req resource.ConfigureRequest, resp *resource.ConfigureResponse) {
	r.data = providerDataFrom(req.ProviderData, &resp.Diagnostics)
}

func (r *environmentResource) Metadata(_ context.Context, req resource.MetadataRequest, resp *resource.MetadataResponse) {
	resp.TypeName = req.ProviderTypeName + "_environment"
}

func (r *environmentResource) Schema(ctx context.Context, _ resource.SchemaRequest, resp *resource.SchemaResponse) {
	keep := []planmodifier.String{stringplanmodifier.UseStateForUnknown()}
	resp.Schema = schema.Schema{
		Description: "Which pinned digest serves an environment's service, behind a `release_router`. Changing `image` is a zero-downtime " +
			"hard switch: the new containers start beside the old ones, traffic moves only once every one is healthy, the old ones are " +
			"drained and stopped, and the last `history_limit` revisions are kept for an instant rollback. Reverting `image` to an earlier " +
			"digest is that rollback.",
		Attributes: map[string]schema.Attribute{
			"id": schema.StringAttribute{
				Description: "`<name>/<service>`, the import ID.", Computed: true, PlanModifiers: keep,
			},
			"name": schema.StringAttribute{
				Description: "Environment name, such as `staging` or `production`: 1 to 32 lowercase letters, digits and dashes. Changing it replaces the environment.",
				Required:    true, Validators: []validator.String{nameValidator()},
				PlanModifiers: []planmodifier.String{stringplanmodifier.RequiresReplace()},
			},
			"service": schema.StringAttribute{
				Description: "Service name within the environment, such as `web`: 1 to 32 lowercase letters, digits and dashes. Changing it replaces the environment.",
				Required:    true, Validators: []validator.String{nameValidator()},
				PlanModifiers: []planmodifier.String{stringplanmodifier.RequiresReplace()},
			},
			"image": schema.StringAttribute{
				Description: "The pinned image, `repository@sha256:…`: use `release_image.<name>.ref`. A tag is refused at plan time, so that every environment runs exactly the bytes that were tested.",
				Required:    true, Validators: []validator.String{validators.PinnedReference()},
			},
			"replicas": schema.Int64Attribute{
				Description: "Number of containers. Defaults to 1.",
				Optional:    true, Computed: true, Default: int64default.StaticInt64(defaultReplicas), Validators: []validator.Int64{int64validator.Between(1, 50)},
			},
			"port": schema.Int64Attribute{
				Description: "Port the application listens on inside its container. Defaults to 8080.",
				Optional:    true, Computed: true, Default: int64default.StaticInt64(defaultPort), Validators: []validator.Int64{int64validator.Between(1, 65535)},
			},
			"listen_port": schema.Int64Attribute{
				Description: "The router's listener port (one of its `ports[*].internal`) that serves this environment's service. Defaults to 80.",
				Optional:    true, Computed: true, Default: int64default.StaticInt64(defaultListenPort), Validators: []validator.Int64{int64validator.Between(1, 65535)},
			},
			"env": schema.MapAttribute{
				Description: "Environment variables of the containers. The provider adds RELEASE_ENVIRONMENT, RELEASE_SERVICE and RELEASE_REVISION. " +
					"Sensitive: plans show `(sensitive value)`, and in the log lines of a container that fails its health check, values that look like secrets (8 characters or more, not one plain word) are masked. " +
					"They are still kept in the state; for secrets that must not be, use `env_wo`.",
				Optional: true, Sensitive: true, ElementType: types.StringType,
			},
			"env_wo": schema.MapAttribute{
				Description: "Environment variables of the containers that are never stored in the state or shown in a plan (write-only, Terraform 1.11 and newer), " +
					"such as `DATABASE_URL`; an ephemeral resource's value or a variable can be given. Since Terraform keeps no copy, a change is not seen: " +
					"raise `env_wo_version` to release the new values. A name may not be in both `env` and `env_wo`.",
				Optional: true, WriteOnly: true, ElementType: types.StringType,
			},
			"env_wo_version": schema.Int64Attribute{
				Description: "The version of `env_wo`: required with it; changing it releases a new revision with the values `env_wo` has then.",
				Optional:    true,
			},
			"command": schema.ListAttribute{
				Description: "Command (arguments to the image's entrypoint). Defaults to the image's own.",
				Optional:    true, ElementType: types.StringType,
			},
			"health_check": schema.SingleNestedAttribute{
				Description: "How containers are checked. While a new container starts, the provider gates it: a small static probe in the router " +
					"(at `/.release-probe`) sends `GET path` to the container's address on the environment's network, as the router's own checks " +
					"will, at once, then after 20ms, waiting twice as long after each check up to `interval`, until `healthy_threshold` checks pass " +
					"in a row; only then is the container routed, after one passing check of the router's own. From then on only the router checks " +
					"it, over HTTP every `interval`, and sends it no traffic after 3 failed checks until one passes. Nothing runs inside the " +
					"containers: they carry no Docker `HEALTHCHECK` (an image's own is disabled too), so `docker ps` shows no health status for them.",
				Optional: true, Computed: true,
				Default: objectdefault.StaticValue(defaultHealthCheck()),
				Attributes: map[string]schema.Attribute{
					"path": schema.StringAttribute{Description: "HTTP path that answers 2xx when the container is ready, requested by the gate's probe inside a starting container and by the router afterwards. Defaults to `/healthz`.",
						Optional: true, Computed: true, Default: stringdefault.StaticString(defaultHealthPath), Validators: []validator.String{healthPathValidator()}},
					"interval": schema.StringAttribute{Description: "Time between the router's checks of a routed container, such as `1s`, and the longest wait between the gate's checks of a starting one. Defaults to `1s`.",
						Optional: true, Computed: true, Default: stringdefault.StaticString(defaultHealthInterval), Validators: []validator.String{durationValidator(100 * time.Millisecond)}},
					"timeout": schema.StringAttribute{Description: "Time a check may take, the gate's and the router's. Defaults to `2s`.",
						Optional: true, Computed: true, Default: stringdefault.StaticString(defaultHealthTimeout), Validators: []validator.String{durationValidator(100 * time.Millisecond)}},
					"healthy_threshold": schema.Int64Attribute{Description: "Checks of the gate that must pass in a row before the container gets traffic. Defaults to 1.",
						Optional: true, Computed: true, Default: int64default.StaticInt64(defaultHealthHealthyThreshold), Validators: []validator.Int64{int64validator.Between(1, 5)}},
					"start_timeout": schema.StringAttribute{Description: "How long a new container may take to pass the gate before the apply fails with its last log lines (traffic stays where it was); a container that exits fails it at once. Defaults to `60s`.",
						Optional: true, Computed: true, Default: stringdefault.StaticString(defaultHealthStartTimeout), Validators: []validator.String{durationValidator(time.Second)}},
				},
			},
			"router": schema.StringAttribute{
				Description: "The `release_router` that serves this environment: `release_router.<name>.id`.",
				Required:    true, Validators: []validator.String{nameValidator()},
			},
			"history_limit": schema.Int64Attribute{
				Description: "Earlier revisions whose stopped containers are kept for a rollback without a pull. Defaults to 3.",
				Optional:    true, Computed: true, Default: int64default.StaticInt64(defaultHistoryLimit), Validators: []validator.Int64{int64validator.Between(0, 20)},
			},
			"stop_timeout": schema.StringAttribute{
				Description: "How long a retired container may finish its requests after SIGTERM before it is killed. Defaults to `10s`.",
				Optional:    true, Computed: true, Default: stringdefault.StaticString(defaultStopTimeout), Validators: []validator.String{durationValidator(0)},
			},
			"network": schema.StringAttribute{
				Description: "User-defined network the containers run on; the router joins it. Defaults to a network of the environment's own, " +
					"`release-<name>-<service>`, created and removed with it, so environments cannot reach each other. Docker's default address " +
					"pools hold about 30 networks per host: beyond that, share one, such as `release_router.<name>.network`.",
				Optional: true, Computed: true,
			},
			"swarm": swarmAttribute("Run the environment on the Docker Swarm whose manager the provider talks to: each revision's track (stable, canary, " +
				"baseline) is a Swarm service (endpoint mode `dnsrr`) with a task per replica, on an attachable overlay network, and Swarm spreads " +
				"the tasks over the nodes, restarts them and moves them off drained nodes. Without it, replicas are containers on the Docker host. " +
				"Setting or removing it releases a new revision, as any configuration change does. `swarm = {}` takes Swarm's placement as it is."),
			"timeouts": timeouts.Attributes(ctx, timeouts.Opts{Create: true, Update: true, Delete: true}),
			"digest": schema.StringAttribute{
				Description: "The digest serving now, from `image`.", Computed: true,
			},
			"revision": schema.Int64Attribute{
				Description: "The revision serving now; each switch to another digest or configuration makes a new one, a rollback to a retained one reuses it.",
				Computed:    true,
			},
			"deployed_at": schema.StringAttribute{
				Description: "When the serving revision was started (RFC 3339).", Computed: true,
			},
			"history": schema.ListAttribute{
				Description: "Earlier revisions, newest first: revision, digest, image and when each was deployed.",
				Computed:    true, ElementType: historyEntryType,
			},
			"drift": schema.StringAttribute{
				Description: "How the host differs from the last apply (containers removed or stopped, the route lost or edited, a canary left mid-way by an interrupted apply); null when it matches. Apply repairs it.",
				Computed:    true,
			},
			"canary": schema.StringAttribute{
				Description: "A canary policy, `release_canary.<name>.id` (the policy encoded in one string; `canary_policy` shows it in plans as attributes). When set, a new revision released while another serves goes through the " +
					"canary's steps and analysis, and is promoted only when they pass; a failed or inconclusive analysis puts every user back on " +
					"the serving revision and fails the apply with a report. The first release and a rollback to a retained revision switch at " +
					"once. Null: every release is a health-gated hard switch.",
				Optional: true, Validators: []validator.String{canaryIDValidator(), stringvalidator.ConflictsWith(path.MatchRoot("canary_policy"))},
			},
			"canary_policy": schema.ObjectAttribute{
				Description: "The canary policy as attributes, `release_canary.<name>.policy`: the same as `canary`, and the plan shows its steps, " +
					"analysis and limits instead of an encoded id. Set one of `canary` and `canary_policy`.",
				Optional: true, AttributeTypes: policyTypes,
			},
			"rollout": schema.StringAttribute{
				Description: "How the change in this plan is released, decided from the containers and route on the host: `hard switch (first release)`, `hard switch`, " +
					"`canary: ` and the canary's schedule, `rollback to revision N: …`, `repair of revision N …`, or the resume or abort of a canary an interrupted " +
					"apply left. The apply takes the same decision and changes nothing if the host has changed since the plan. Kept from the last release when nothing changes.",
				Computed: true,
			},
			"verified": schema.SingleNestedAttribute{
				Description: "The digests that completed a rollout in this environment (including the canary analysis, when it had one), the serving one first. " +
					"Give it to a downstream environment's `promote_from`.",
				Computed: true,
				Attributes: map[string]schema.Attribute{
					"environment": schema.StringAttribute{Description: "This environment's name.", Computed: true},
					"service":     schema.StringAttribute{Description: "This environment's service.", Computed: true},
					"serving":     schema.StringAttribute{Description: "The digest serving now.", Computed: true},
					"digests":     schema.ListAttribute{Description: "Every verified digest, the serving one first.", Computed: true, ElementType: types.StringType},
				},
			},
			"promote_from": schema.SingleNestedAttribute{
				Description: "The promotion gate: an upstream environment's `verified`, such as `release_environment.staging.verified` or " +
					"`data.release_environment.staging.verified` from another state. A plan that would release a digest the upstream has not " +
					"verified is an error naming what the upstream runs and has verified.",
				Optional: true,
				Attributes: map[string]schema.Attribute{
					"environment": schema.StringAttribute{Description: "The upstream environment.", Required: true},
					"service":     schema.StringAttribute{Description: "The upstream service.", Required: true},
					"serving":     schema.StringAttribute{Description: "The digest the upstream serves.", Required: true},
					"digests":     schema.ListAttribute{Description: "The digests the upstream has verified.", Required: true, ElementType: types.StringType},
				},
			},
		},
	}
}

// ModifyPlan shows what a switch will do: the new digest, and the revision,
// history and deploy time that the switch will set.
func (r *environmentResource) ModifyPlan(ctx context.Context, req resource.ModifyPlanRequest, resp *resource.ModifyPlanResponse) {
	if req.Plan.Raw.IsNull() {
		return
	}
	var plan environmentModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &plan)...)
	if resp.Diagnostics.HasError() {
		return
	}
	if !plan.Name.IsUnknown() && !plan.Service.IsUnknown() {
		plan.ID = types.StringValue(plan.Name.ValueString() + "/" + plan.Service.ValueString())
		if plan.Network.IsUnknown() || plan.Network.IsNull() {
			var cfgNetwork types.String
			resp.Diagnostics.Append(req.Config.GetAttribute(ctx, path.Root("network"), &cfgNetwork)...)
			if cfgNetwork.IsNull() {
				plan.Network = types.StringValue(ownNetworkName(plan))
			}
		}
	}
	if ref, err := imageref.ParsePinned(plan.Image.ValueString()); err == nil && !plan.Image.IsUnknown() {
		plan.Digest = types.StringValue(ref.Digest)
	} else {
		plan.Digest = types.StringUnknown()
	}
	r.checkSwarmAtPlan(ctx, plan, &resp.Diagnostics)
	if req.State.Raw.IsNull() {
		checkWriteOnlyEnv(ctx, req.Config, plan, &resp.Diagnostics)
		r.checkNewEnvironmentAtPlan(ctx, plan, &resp.Diagnostics)
		checkPromotion(ctx, plan, &resp.Diagnostics)
		plan.Rollout = r.plannedRollout(ctx, plan)
		plan.Verified = plannedVerified(plan)
		resp.Diagnostics.Append(resp.Plan.Set(ctx, &plan)...)
		return
	}
	var state environmentModel
	resp.Diagnostics.Append(req.State.Get(ctx, &state)...)
	if resp.Diagnostics.HasError() {
		return
	}
	if !plan.Image.Equal(state.Image) {
		checkPromotion(ctx, plan, &resp.Diagnostics)
	}
	checkWriteOnlyEnv(ctx, req.Config, plan, &resp.Diagnostics)
	changed := releaseChanged(plan, state)
	if changed || !state.Drift.IsNull() {
		plan.Revision, plan.DeployedAt, plan.History = types.Int64Unknown(), types.StringUnknown(), types.ListUnknown(historyEntryType)
		plan.Verified = plannedVerified(plan)
		// The same decision the apply will take, from what the host runs now.
		plan.Rollout = r.plannedRollout(ctx, plan)
	} else {
		plan.Revision, plan.DeployedAt, plan.History, plan.Verified = state.Revision, state.DeployedAt, state.History, state.Verified
		plan.Rollout = state.Rollout
	}
	plan.Drift = types.StringNull()
	resp.Diagnostics.Append(resp.Plan.Set(ctx, &plan)...)
}

func (r *environmentResource) Create(ctx context.Context, req resource.CreateRequest, resp *resource.CreateResponse) {
	if !r.checkNewEnvironmentAtCreate(ctx, req.Plan, &resp.Diagnostics) {
		return
	}
	var name, service types.String
	resp.Diagnostics.Append(req.Plan.GetAttribute(ctx, path.Root("name"), &name)...)
	resp.Diagnostics.Append(req.Plan.GetAttribute(ctx, path.Root("service"), &service)...)
	setEnvironmentIdentity(ctx, resp.Identity, name, service, &resp.Diagnostics)
	r.apply(ctx, req.Plan.Get, req.Config, timeouts.Value.Create, &resp.State, &resp.Diagnostics, types.StringNull(), true)
}

func (r *environmentResource) Read(ctx context.Context, req resource.ReadRequest, resp *resource.ReadResponse) {
	var state environmentModel
	resp.Diagnostics.Append(req.State.Get(ctx, &state)...)
	if resp.Diagnostics.HasError() {
		return
	}
	setEnvironmentIdentity(ctx, resp.Identity, state.Name, state.Service, &resp.Diagnostics)
	found := r.read(ctx, &state, &resp.Diagnostics)
	if resp.Diagnostics.HasError() {
		return
	}
	if !found {
		resp.State.RemoveResource(ctx)
		return
	}
	resp.Diagnostics.Append(resp.State.Set(ctx, &state)...)
}

// read fills state from what the host runs; false when the environment has
// no container on the host. Read, and the list resource, use it.
func (r *environmentResource) read(ctx context.Context, state *environmentModel, diags *diag.Diagnostics) bool {
	st, err := observeEnvironment(ctx, r.data, state.Name.ValueString(), state.Service.ValueString(), state.Router.ValueString())
	if err != nil {
		addDockerError(diags, r.data, "Cannot Read Environment", err)
		return false
	}
	if !st.Found {
		return false
	}
	if state.Router.IsNull() && len(st.Containers) > 0 {
		state.Router = types.StringValue(st.Containers[0].Labels[naming.LabelRouter])
	}
	if state.Image.IsNull() || st.Image != "" {
		state.Image = types.StringValue(st.Image)
	}
	if state.Replicas.IsNull() {
		state.Replicas = types.Int64Value(int64(len(filterRevision(st))))
		// An import: Swarm services serving say the environment is on a swarm.
		if servesServices(st) {
			state.Swarm = types.ObjectValueMust(swarmTypes, map[string]attr.Value{"constraints": types.ListNull(types.StringType)})
		}
	}
	// What the host records wins over the state: an import's defaults, or
	// a listener or port changed outside Terraform, show in the next plan.
	if st.ListenPort > 0 {
		state.ListenPort = types.Int64Value(int64(st.ListenPort))
	}
	if st.Port > 0 {
		state.Port = types.Int64Value(int64(st.Port))
	}
	if state.Network.IsNull() {
		state.Network = types.StringValue(ownNetworkName(*state))
		for _, c := range st.Containers {
			for n := range c.IPs {
				state.Network = types.StringValue(n)
			}
		}
	}
	r.setObserved(state, st)
	var drift []string
	drift = append(drift, st.Drift...)
	if !state.Replicas.IsNull() && int64(st.Running) < state.Replicas.ValueInt64() {
		drift = append(drift, fmt.Sprintf("%d of %d containers run", st.Running, state.Replicas.ValueInt64()))
	}
	state.Drift = driftValue(dedupe(drift))
	return true
}

func (r *environmentResource) Update(ctx context.Context, req resource.UpdateRequest, resp *resource.UpdateResponse) {
	var plan, prior environmentModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &plan)...)
	resp.Diagnostics.Append(req.State.Get(ctx, &prior)...)
	if resp.Diagnostics.HasError() {
		return
	}
	// The plan decided the rollout when the release changed or drifted; else it kept the last one.
	promised := releaseChanged(plan, prior) || !prior.Drift.IsNull()
	setEnvironmentIdentity(ctx, resp.Identity, plan.Name, plan.Service, &resp.Diagnostics)
	r.apply(ctx, req.Plan.Get, req.Config, timeouts.Value.Update, &resp.State, &resp.Diagnostics, prior.Image, promised)
}

func (r *environmentResource) Delete(ctx context.Context, req resource.DeleteRequest, resp *resource.DeleteResponse) {
	var state environmentModel
	resp.Diagnostics.Append(req.State.Get(ctx, &state)...)
	if resp.Diagnostics.HasError() {
		return
	}
	timeout, diags := state.Timeouts.Delete(ctx, 10*time.Minute)
	resp.Diagnostics.Append(diags...)
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	name, service := state.Name.ValueString(), state.Service.ValueString()
	routerID := ""
	o, err := router.Observe(ctx, r.data.engine, state.Router.ValueString())
	if err != nil {
		addDockerError(&resp.Diagnostics, r.data, "Cannot Read Router", err)
		return
	}
	if o.Found {
		release, ok := r.data.holdRouter(ctx, o.Spec.Name, o.Spec.Image, &resp.Diagnostics)
		if !ok {
			return
		}
		defer release()
		if o.Running {
			routerID = o.ID
		} else if err := router.DetachStopped(ctx, r.data.engine, o.ID, ownNetworkName(state), router.RouteFileName(name, service)); err != nil {
			// A stopped router cannot reload, but its route file can be emptied and its
			// network link removed, so that it starts again without this environment.
			addDockerError(&resp.Diagnostics, r.data, "Cannot Delete Environment", err)
			return
		}
	}
	stop, _ := time.ParseDuration(state.StopTimeout.ValueString())
	defer r.data.invalidate()
	if err := r.data.deployer.Destroy(ctx, name, service, routerID, stop); err != nil {
		addDockerError(&resp.Diagnostics, r.data, "Cannot Delete Environment", err)
	}
}

// ImportState takes <name>/<service>.
func (r *environmentResource) ImportState(ctx context.Context, req resource.ImportStateRequest, resp *resource.ImportStateResponse) {
	id := req.ID
	if id == "" && req.Identity != nil {
		// An import block with identity = { name = …, service = … }.
		var ident environmentIdentity
		resp.Diagnostics.Append(req.Identity.Get(ctx, &ident)...)
		if resp.Diagnostics.HasError() {
			return
		}
		id = ident.Name.ValueString() + "/" + ident.Service.ValueString()
	}
	name, service, ok := strings.Cut(id, "/")
	if !ok || router.ValidateName(name) != nil || router.ValidateName(service) != nil {
		resp.Diagnostics.AddError("Invalid Import ID", fmt.Sprintf("Import a release_environment as <environment>/<service>, such as production/web, or by identity with name and service (got %q).", id))
		return
	}
	setImported(ctx, &resp.State, name, service, &resp.Diagnostics)
	setEnvironmentIdentity(ctx, resp.Identity, types.StringValue(name), types.StringValue(service), &resp.Diagnostics)
}

// attributeSetter is a state or a list result's resource.
type attributeSetter interface {
	SetAttribute(context.Context, path.Path, any) diag.Diagnostics
}

// setImported is what an import knows before the read: the name, and for
// the settings the containers' labels do not hold, their defaults.
func setImported(ctx context.Context, state attributeSetter, name, service string, diags *diag.Diagnostics) {
	diags.Append(state.SetAttribute(ctx, path.Root("name"), name)...)
	diags.Append(state.SetAttribute(ctx, path.Root("service"), service)...)
	diags.Append(state.SetAttribute(ctx, path.Root("id"), name+"/"+service)...)
	for attr, v := range map[string]any{"port": defaultPort, "listen_port": defaultListenPort, "history_limit": defaultHistoryLimit, "stop_timeout": defaultStopTimeout} {
		diags.Append(state.SetAttribute(ctx, path.Root(attr), v)...)
	}
	diags.Append(state.SetAttribute(ctx, path.Root("health_check"), defaultHealthCheck())...)
}

// apply is Create and Update: a switch to the plan, within the operation's timeout.
func (r *environmentResource) apply(ctx context.Context, get func(context.Context, any) diag.Diagnostics, config tfsdk.Config,
	timeout func(timeouts.Value, context.Context, time.Duration) (time.Duration, diag.Diagnostics),
	state *tfsdk.State, diags *diag.Diagnostics, priorImage types.String, promised bool) {
	var plan environmentModel
	diags.Append(get(ctx, &plan)...)
	if diags.HasError() {
		return
	}
	// The gate again, now that an upstream changed in the same apply is
	// known; only for a release, as at plan.
	if !plan.Image.Equal(priorImage) {
		checkPromotion(ctx, plan, diags)
		if diags.HasError() {
			return
		}
	}
	spec, d := r.spec(ctx, plan)
	diags.Append(d...)
	spec.SecretEnv = writeOnlyEnv(ctx, config, diags)
	if diags.HasError() {
		return
	}
	if promised && !plan.Rollout.IsUnknown() {
		spec.Planned = plan.Rollout.ValueString()
	}
	// A canary may take its longest schedule on top of the usual switch.
	def := 20 * time.Minute
	if spec.Canary != nil {
		def += spec.Canary.Longest()
	}
	limit, d := timeout(plan.Timeouts, ctx, def)
	diags.Append(d...)
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	r.deploy(ctx, &plan, spec, diags)
	if !diags.HasError() {
		diags.Append(state.Set(ctx, &plan)...)
	}
}

// deploy runs the switch and fills the computed attributes from what the host then runs.
func (r *environmentResource) deploy(ctx context.Context, plan *environmentModel, spec rollout.Spec, diags *diag.Diagnostics) {
	t := time.Now()
	phase := func(name string) {
		tflog.Info(ctx, fmt.Sprintf("phase %s in %s", name, time.Since(t).Round(time.Millisecond)))
		t = time.Now()
	}
	began := t
	// The provider's whole share of the apply, beside Terraform's own.
	defer func() {
		tflog.Info(ctx, fmt.Sprintf("phase whole release in %s", time.Since(began).Round(time.Millisecond)))
	}()
	o, err := router.Observe(ctx, r.data.routes.Via(r.data.engine), spec.Router.Name)
	if err != nil {
		addDockerError(diags, r.data, "Cannot Read Router", err)
		return
	}
	if !o.Found || !o.Running {
		addRouterNotRunningError(diags, r.data, spec.Router.Name)
		return
	}
	if !hasListener(o.Spec, spec.Router.ListenPort) {
		addNoSuchListenerError(diags, spec.Router.Name, spec.Router.ListenPort, o.Spec)
		return
	}
	if !checkListenerIsNotMetrics(diags, spec.Router.Name, spec.Router.ListenPort, o.Spec) {
		return
	}
	spec.Router.ContainerID, spec.Router.MetricsPort = o.ID, o.Spec.MetricsPort
	// One apply at a time per router; listeners are claimed under its lease.
	phase("router read")
	release, ok := r.data.holdRouter(ctx, o.Spec.Name, o.Spec.Image, diags)
	if !ok {
		return
	}
	phase("lease held")
	defer release()
	other, err := r.data.claims.claim(ctx, r.data.routes, spec)
	if err != nil {
		addDockerError(diags, r.data, "Cannot Read Router", err)
		return
	}
	if other != "" {
		addListenerUsedError(diags, spec.Router.Name, spec.Router.ListenPort, other)
		return
	}

	phase("listener claimed")
	defer r.data.invalidate()
	deployer := *r.data.deployer
	deployer.Log = func(msg string, kv ...any) {
		fields := map[string]any{}
		for i := 0; i+1 < len(kv); i += 2 {
			fields[fmt.Sprint(kv[i])] = kv[i+1]
		}
		tflog.Info(ctx, msg, fields)
	}
	var policy canary.Policy
	if spec.Canary != nil {
		policy = *spec.Canary
	}
	res, err := deployer.Deploy(ctx, spec)
	if policy.ReportPath != "" && res.CanaryReport != "" {
		if werr := os.WriteFile(policy.ReportPath, []byte(res.CanaryReport), 0o644); werr != nil {
			addReportNotWrittenWarning(diags, policy.ReportPath, werr)
		}
	}
	if err != nil {
		// A route it had before is still in the router's files, which the next claim reads.
		r.data.claims.release(spec)
		addSwitchError(diags, r.data, spec, policy, err)
		return
	}
	planned := *plan
	r.setObserved(plan, res.Status)
	plan.Drift = types.StringNull()
	if plan.Rollout.IsUnknown() {
		plan.Rollout = types.StringValue(res.Decision.String())
	}
	if res.Held != nil {
		// The apply did what the plan said, up to the manual step: the state
		// keeps the planned digest (Terraform holds the apply to it); the
		// next refresh reads the stable one serving beside the canary, and
		// the plan shows the canary's continuation.
		plan.Digest = planned.Digest
		plan.Verified = verifiedServing(plan.Verified, planned.Verified)
		addCanaryHeldWarning(diags, spec, res.Held)
	}
}

func hasListener(s router.Spec, port int) bool {
	for _, p := range s.Ports {
		if p.Internal == port {
			return true
		}
	}
	return false
}

// releaseChanged says whether the plan changes what serves, as opposed to
// settings that take effect at the next release (canary, history_limit,
// stop_timeout, timeouts, promote_from).
func releaseChanged(plan, state environmentModel) bool {
	return !plan.Image.Equal(state.Image) || !plan.Replicas.Equal(state.Replicas) || !plan.Port.Equal(state.Port) ||
		!plan.ListenPort.Equal(state.ListenPort) || !plan.Env.Equal(state.Env) || !plan.EnvWoVersion.Equal(state.EnvWoVersion) || !plan.Command.Equal(state.Command) ||
		!plan.HealthCheck.Equal(state.HealthCheck) || !plan.Router.Equal(state.Router) || !plan.Network.Equal(state.Network) ||
		!plan.Swarm.Equal(state.Swarm)
}

// plannedRollout is the rollout's decision for the plan, from what the
// host runs now: the apply takes the same decision and refuses to go on if
// the host has changed in between. Unknown while the plan holds unknown
// values or the host cannot be read (the apply then reports it).
func (r *environmentResource) plannedRollout(ctx context.Context, plan environmentModel) types.String {
	for _, v := range []attr.Value{plan.Name, plan.Service, plan.Image, plan.Replicas, plan.Port, plan.ListenPort, plan.Env, plan.EnvWoVersion, plan.Command,
		plan.HealthCheck, plan.Router, plan.Network, plan.Swarm, plan.Canary, plan.CanaryPolicy} {
		if tv, err := v.ToTerraformValue(ctx); err != nil || !tv.IsFullyKnown() {
			return types.StringUnknown()
		}
	}
	if r.data == nil {
		return types.StringUnknown()
	}
	spec, diags := r.spec(ctx, plan)
	if diags.HasError() {
		return types.StringUnknown()
	}
	st, err := observeEnvironment(ctx, r.data, spec.Environment, spec.Service, spec.Router.Name)
	if err != nil {
		return types.StringUnknown()
	}
	return types.StringValue(rollout.Decide(st, spec).String())
}
