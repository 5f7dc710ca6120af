package provider

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/hashicorp/terraform-plugin-framework-validators/int64validator"
	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/resource"
	"github.com/hashicorp/terraform-plugin-framework/resource/identityschema"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/int64default"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/planmodifier"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/stringdefault"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/stringplanmodifier"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
	"github.com/hashicorp/terraform-plugin-framework/tfsdk"
	"github.com/hashicorp/terraform-plugin-framework/types"

	"github.com/releasekit/terraform-provider-release/internal/docker"
	"github.com/releasekit/terraform-provider-release/internal/router"
	"github.com/releasekit/terraform-provider-release/internal/validators"
)

var (
	_ resource.ResourceWithConfigure   = (*routerResource)(nil)
	_ resource.ResourceWithImportState = (*routerResource)(nil)
	_ resource.ResourceWithModifyPlan  = (*routerResource)(nil)
	_ resource.ResourceWithIdentity    = (*routerResource)(nil)
)

// routerIdentity identifies a router on its Docker host.
type routerIdentity struct {
	Name types.String `tfsdk:"name"`
}

func (r *routerResource) IdentitySchema(_ context.Context, _ resource.IdentitySchemaRequest, resp *resource.IdentitySchemaResponse) {
	resp.IdentitySchema = identityschema.Schema{
		Attributes: map[string]identityschema.Attribute{
			"name": identityschema.StringAttribute{RequiredForImport: true, Description: "The router's name (its container is `release-router-<name>`)."},
		},
	}
}

func setRouterIdentity(ctx context.Context, identity *tfsdk.ResourceIdentity, name types.String, diags *diag.Diagnostics) {
	if identity != nil {
		diags.Append(identity.Set(ctx, routerIdentity{Name: name})...)
	}
}

// NewRouterResource returns the release_router resource.
func NewRouterResource() resource.Resource {
	return &routerResource{}
}

// routerResource is an HAProxy container that environments route through.
type routerResource struct {
	data *providerData
}

type routerModel struct {
	ID          types.String `tfsdk:"id"`
	Name        types.String `tfsdk:"name"`
	Image       types.String `tfsdk:"image"`
	Network     types.String `tfsdk:"network"`
	Ports       []portModel  `tfsdk:"ports"`
	MetricsPort types.Int64  `tfsdk:"metrics_port"`
	// HardStopAfter and TimeoutTunnel are durations, as written.
	HardStopAfter types.String `tfsdk:"hard_stop_after"`
	TimeoutTunnel types.String `tfsdk:"timeout_tunnel"`
	ContainerID   types.String `tfsdk:"container_id"`
	Drift         types.String `tfsdk:"drift"`
}

type portModel struct {
	Internal types.Int64  `tfsdk:"internal"`
	External types.Int64  `tfsdk:"external"`
	HostIP   types.String `tfsdk:"host_ip"`
}

func (r *routerResource) Configure(_ context.Context, req resource.ConfigureRequest, resp *resource.ConfigureResponse) {
	r.data = providerDataFrom(req.ProviderData, &resp.Diagnostics)
}

func (r *routerResource) Metadata(_ context.Context, req resource.MetadataRequest, resp *resource.MetadataResponse) {
	resp.TypeName = req.ProviderTypeName + "_router"
}

func (r *routerResource) Schema(_ context.Context, _ resource.SchemaRequest, resp *resource.SchemaResponse) {
	portNumber := []validator.Int64{int64validator.Between(1, 65535)}
	resp.Schema = schema.Schema{
		Description: "An HAProxy container on the Docker host that environments route through. The provider owns it: " +
			"each environment writes its own route file into it through the Docker API and applies it: servers added and removed, weights (a canary step, a promotion, a drain) and sticky users " +
			"through HAProxy's runtime API without a reload, any other change with a hitless reload, so a switch drops no connection and works over any Docker connection (unix, tcp, ssh) without a port of its own. " +
			"The files live in a Docker volume, so the split survives a restart of the router. Works with HAProxy 2.6 and newer.",
		Attributes: map[string]schema.Attribute{
			"id": schema.StringAttribute{
				Description:   "The router's name; environments take it as `router`.",
				Computed:      true,
				PlanModifiers: []planmodifier.String{stringplanmodifier.UseStateForUnknown()},
			},
			"name": schema.StringAttribute{
				Description:   "Name of the router, unique on the Docker host: 1 to 32 lowercase letters, digits and dashes. The container is `release-router-<name>`. Changing it replaces the router.",
				Required:      true,
				Validators:    []validator.String{nameValidator()},
				PlanModifiers: []planmodifier.String{stringplanmodifier.RequiresReplace()},
			},
			"image": schema.StringAttribute{
				Description: "HAProxy image, version 2.6 or newer, such as `haproxy:3.0`. The Docker daemon pulls it if it does not have it. " +
					"Changing it recreates the container in place, keeping its configuration: traffic pauses for that moment.",
				Required: true,
			},
			"network": schema.StringAttribute{
				Description: "A user-defined network the router joins, for example to be scraped by Prometheus; created if missing. " +
					"Defaults to `release-router-<name>`. Each environment also gets a network of its own, which the router joins.",
				Optional:      true,
				Computed:      true,
				PlanModifiers: []planmodifier.String{stringplanmodifier.UseStateForUnknown(), stringplanmodifier.RequiresReplace()},
			},
			"ports": schema.ListNestedAttribute{
				Description: "Listener ports published on the host. Each environment serves on one of them (`release_environment.listen_port`).",
				Required:    true,
				NestedObject: schema.NestedAttributeObject{Attributes: map[string]schema.Attribute{
					"internal": schema.Int64Attribute{Description: "Port the router listens on inside its container.", Required: true, Validators: portNumber},
					"external": schema.Int64Attribute{Description: "Port published on the Docker host.", Required: true, Validators: portNumber},
					"host_ip": schema.StringAttribute{
						Description: "Host IP address the port is published on, such as `127.0.0.1` or `::1`. Defaults to `127.0.0.1`; use `0.0.0.0` to serve other machines. " +
							"A host name such as `localhost` is refused: Docker publishes on addresses only.",
						Optional: true, Computed: true, Default: stringdefault.StaticString("127.0.0.1"),
						Validators: []validator.String{hostIPValidator()},
					},
				}},
			},
			"metrics_port": schema.Int64Attribute{
				Description: "Port inside the router's container that serves HAProxy's Prometheus exporter at `/metrics` (per-server responses by code and response times) and `/healthz`. Defaults to 8404. " +
					"Publish it by adding it to `ports` if Prometheus runs outside the router's network. It must not be the `listen_port` of an environment: " +
					"both would bind the same port and split its requests, so the plan refuses it when an environment on the host serves on it, and an environment's apply refuses it too.",
				Optional: true, Computed: true, Default: int64default.StaticInt64(8404), Validators: portNumber,
			},
			"hard_stop_after": schema.StringAttribute{
				Description: "How long HAProxy's previous worker may keep the connections it has after a reload (HAProxy's `hard-stop-after`), such as `5m`; " +
					"a reload happens only when a route's settings change (its health check, its listener), for a new or removed route, or when the runtime API does not confirm a change; releases and rollbacks change servers without one, and a canary takes one as it starts, before it has traffic (while it runs, its route logs each request to the count the provider keeps in the router). " +
					"Set it no shorter than the longest `stop_timeout` of the environments on this router, so that a reload never cuts a connection " +
					"(a WebSocket, an event stream, a long download) that the retirement of its revision would still let finish. " +
					"Defaults to `" + defaultHardStopAfter + "`; 1s to 24h. Changing it rewrites the router's base configuration with a hitless reload.",
				Optional: true, Computed: true, Default: stringdefault.StaticString(defaultHardStopAfter),
				Validators: []validator.String{routerDurationValidator()},
			},
			"timeout_tunnel": schema.StringAttribute{
				Description: "How long a tunnelled connection (a WebSocket, after its upgrade) may stay idle before the router closes it (HAProxy's `timeout tunnel`), such as `1h`. " +
					"Defaults to `" + defaultTimeoutTunnel + "`; 1s to 24h.",
				Optional: true, Computed: true, Default: stringdefault.StaticString(defaultTimeoutTunnel),
				Validators: []validator.String{routerDurationValidator()},
			},
			"container_id": schema.StringAttribute{
				Description: "ID of the router's container.",
				Computed:    true,
			},
			"drift": schema.StringAttribute{
				Description: "How the router on the host differs from the last apply (stopped, configuration changed or lost); null when it matches. Apply repairs it.",
				Computed:    true,
			},
		},
	}
}

func (r *routerResource) ModifyPlan(ctx context.Context, req resource.ModifyPlanRequest, resp *resource.ModifyPlanResponse) {
	if req.Plan.Raw.IsNull() {
		return
	}
	var plan, state routerModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &plan)...)
	if resp.Diagnostics.HasError() {
		return
	}
	if req.State.Raw.IsNull() {
		// The id and the default network follow from the name: known at plan,
		// so that environments keep a known router through a replacement.
		if !plan.Name.IsUnknown() {
			plan.ID = types.StringValue(plan.Name.ValueString())
			if plan.Network.IsUnknown() {
				plan.Network = types.StringValue(r.spec(plan).Network)
			}
		}
		resp.Diagnostics.Append(resp.Plan.Set(ctx, &plan)...)
		return
	}
	resp.Diagnostics.Append(req.State.Get(ctx, &state)...)
	if resp.Diagnostics.HasError() {
		return
	}
	if !plan.MetricsPort.Equal(state.MetricsPort) {
		r.checkMetricsPort(ctx, plan, &resp.Diagnostics)
	}
	// Drift found by refresh is planned away; everything else is unchanged.
	plan.Drift = types.StringNull()
	plan.ContainerID = state.ContainerID
	if !plan.Image.Equal(state.Image) || !portsEqual(plan.Ports, state.Ports) || !plan.MetricsPort.Equal(state.MetricsPort) {
		plan.ContainerID = types.StringUnknown()
	}
	resp.Diagnostics.Append(resp.Plan.Set(ctx, &plan)...)
}

// checkMetricsPort refuses a metrics_port that an environment on the host
// already serves on, read from the router's routes (when the router runs).
func (r *routerResource) checkMetricsPort(ctx context.Context, plan routerModel, diags *diag.Diagnostics) {
	if r.data == nil || plan.MetricsPort.IsUnknown() || plan.MetricsPort.IsNull() || plan.Name.IsUnknown() {
		return
	}
	o, err := router.Observe(ctx, r.data.engine, plan.Name.ValueString())
	if err != nil || !o.Found || !o.Running {
		return // nothing serves on it now; an environment's apply checks it again
	}
	files, err := r.data.snapshot.routerFiles(ctx, r.data.routes, o.ID)
	if err != nil {
		return
	}
	port := int(plan.MetricsPort.ValueInt64())
	if owner := router.ListenerOwner(files, port, ""); owner != "" {
		addMetricsPortServesEnvironmentError(diags, plan.Name.ValueString(), port, owner)
	}
}

func (r *routerResource) spec(m routerModel) router.Spec {
	s := router.Spec{Name: m.Name.ValueString(), Image: m.Image.ValueString(), Network: m.Network.ValueString(), MetricsPort: int(m.MetricsPort.ValueInt64())}
	// Validated at plan; a state of an earlier version has none (the defaults).
	s.HardStopAfter, _ = time.ParseDuration(m.HardStopAfter.ValueString())
	s.TimeoutTunnel, _ = time.ParseDuration(m.TimeoutTunnel.ValueString())
	if m.Network.IsNull() || m.Network.IsUnknown() || s.Network == "" {
		s.Network = "release-router-" + s.Name
	}
	for _, p := range m.Ports {
		s.Ports = append(s.Ports, docker.Port{Internal: int(p.Internal.ValueInt64()), External: int(p.External.ValueInt64()), HostIP: p.HostIP.ValueString()})
	}
	return s
}

func (r *routerResource) Create(ctx context.Context, req resource.CreateRequest, resp *resource.CreateResponse) {
	var plan routerModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &plan)...)
	if resp.Diagnostics.HasError() {
		return
	}
	spec := r.spec(plan)
	if o, err := router.Observe(ctx, r.data.engine, spec.Name); err != nil {
		addDockerError(&resp.Diagnostics, r.data, "Cannot Create Router", err)
		return
	} else if o.Found {
		resp.Diagnostics.AddAttributeError(path.Root("name"), "Router Already Exists",
			"A router container "+router.ContainerName(spec.Name)+" already exists on "+r.data.engine.Host()+". Import it with "+
				"`terraform import <address> "+spec.Name+"`, or choose another name.")
		return
	}
	id, err := router.Create(ctx, r.data.engine, spec, r.data.pullAuth(spec.Image))
	r.data.invalidate()
	if err != nil {
		addDockerError(&resp.Diagnostics, r.data, "Cannot Create Router", err)
		return
	}
	plan.ID = types.StringValue(spec.Name)
	plan.Network = types.StringValue(spec.Network)
	plan.ContainerID = types.StringValue(id)
	plan.Drift = types.StringNull()
	resp.Diagnostics.Append(resp.State.Set(ctx, &plan)...)
	setRouterIdentity(ctx, resp.Identity, plan.Name, &resp.Diagnostics)
}

func (r *routerResource) Read(ctx context.Context, req resource.ReadRequest, resp *resource.ReadResponse) {
	var state routerModel
	resp.Diagnostics.Append(req.State.Get(ctx, &state)...)
	if resp.Diagnostics.HasError() {
		return
	}
	setRouterIdentity(ctx, resp.Identity, state.Name, &resp.Diagnostics)
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

// read fills state from the router's container; false when there is none.
// Read, and the list resource, use it.
func (r *routerResource) read(ctx context.Context, state *routerModel, diags *diag.Diagnostics) bool {
	o, err := router.Observe(ctx, r.data.engine, state.Name.ValueString())
	if err != nil {
		addDockerError(diags, r.data, "Cannot Read Router", err)
		return false
	}
	if !o.Found {
		return false
	}
	state.ID = types.StringValue(o.Spec.Name)
	state.Image = types.StringValue(o.Spec.Image)
	state.Network = types.StringValue(o.Spec.Network)
	state.MetricsPort = types.Int64Value(int64(o.Spec.MetricsPort))
	state.ContainerID = types.StringValue(o.ID)
	state.HardStopAfter = observedDuration(state.HardStopAfter, o.Spec.HardStopAfter, defaultHardStopAfter)
	state.TimeoutTunnel = observedDuration(state.TimeoutTunnel, o.Spec.TimeoutTunnel, defaultTimeoutTunnel)
	state.Ports = nil
	for _, p := range o.Spec.Ports {
		state.Ports = append(state.Ports, portModel{Internal: types.Int64Value(int64(p.Internal)), External: types.Int64Value(int64(p.External)), HostIP: types.StringValue(p.HostIP)})
	}
	state.Drift = driftValue(o.Drift)
	return true
}

func (r *routerResource) Update(ctx context.Context, req resource.UpdateRequest, resp *resource.UpdateResponse) {
	var plan, state routerModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &plan)...)
	resp.Diagnostics.Append(req.State.Get(ctx, &state)...)
	if resp.Diagnostics.HasError() {
		return
	}
	spec := r.spec(plan)
	// Not while another apply releases through this router.
	release, ok := r.data.holdRouter(ctx, spec.Name, state.Image.ValueString(), &resp.Diagnostics)
	if !ok {
		return
	}
	defer release()
	defer r.data.invalidate()
	if !plan.Image.Equal(state.Image) || !portsEqual(plan.Ports, state.Ports) || !plan.MetricsPort.Equal(state.MetricsPort) {
		id, err := router.Recreate(ctx, r.data.engine, spec, r.data.pullAuth(spec.Image))
		if err != nil {
			addDockerError(&resp.Diagnostics, r.data, "Cannot Update Router", err)
			return
		}
		plan.ContainerID = types.StringValue(id)
	} else {
		o, err := router.Observe(ctx, r.data.engine, spec.Name)
		if err == nil && !o.Found {
			_, err = router.Create(ctx, r.data.engine, spec, r.data.pullAuth(spec.Image))
		} else if err == nil && (len(o.Drift) > 0 || o.Spec.HardStopAfter != spec.HardStopAfter || o.Spec.TimeoutTunnel != spec.TimeoutTunnel) {
			// Repair writes the base file with the planned timeouts.
			o.Spec.HardStopAfter, o.Spec.TimeoutTunnel = spec.HardStopAfter, spec.TimeoutTunnel
			err = router.Repair(ctx, r.data.engine, r.data.routes, o)
		}
		if err != nil {
			addDockerError(&resp.Diagnostics, r.data, "Cannot Repair Router", err)
			return
		}
		o, err = router.Observe(ctx, r.data.engine, spec.Name)
		if err != nil {
			addDockerError(&resp.Diagnostics, r.data, "Cannot Read Router", err)
			return
		}
		plan.ContainerID = types.StringValue(o.ID)
	}
	plan.Drift = types.StringNull()
	resp.Diagnostics.Append(resp.State.Set(ctx, &plan)...)
	setRouterIdentity(ctx, resp.Identity, plan.Name, &resp.Diagnostics)
}

func (r *routerResource) Delete(ctx context.Context, req resource.DeleteRequest, resp *resource.DeleteResponse) {
	var state routerModel
	resp.Diagnostics.Append(req.State.Get(ctx, &state)...)
	if resp.Diagnostics.HasError() {
		return
	}
	defer r.data.invalidate()
	if err := router.Destroy(ctx, r.data.engine, state.Name.ValueString(), r.spec(state).Network); err != nil {
		addDockerError(&resp.Diagnostics, r.data, "Cannot Delete Router", err)
	}
}

// ImportState takes the router's name.
func (r *routerResource) ImportState(ctx context.Context, req resource.ImportStateRequest, resp *resource.ImportStateResponse) {
	name := req.ID
	if name == "" && req.Identity != nil {
		var ident routerIdentity
		resp.Diagnostics.Append(req.Identity.Get(ctx, &ident)...)
		name = ident.Name.ValueString()
	}
	if err := router.ValidateName(name); err != nil {
		resp.Diagnostics.AddError("Invalid Import ID", "Import a release_router by its name, or by identity with name: "+err.Error())
		return
	}
	resp.Diagnostics.Append(resp.State.SetAttribute(ctx, path.Root("name"), name)...)
	setRouterIdentity(ctx, resp.Identity, types.StringValue(name), &resp.Diagnostics)
}

func portsEqual(a, b []portModel) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !a[i].Internal.Equal(b[i].Internal) || !a[i].External.Equal(b[i].External) || a[i].HostIP.ValueString() != b[i].HostIP.ValueString() {
			return false
		}
	}
	return true
}

// Defaults of release_router's timeouts, as router.RenderBase has them.
const (
	defaultHardStopAfter = "5m"
	defaultTimeoutTunnel = "1h"
)

// routerDurationValidator checks a router timeout: 1s to 24h.
func routerDurationValidator() validator.String {
	return validators.StringCheck("a duration from 1s to 24h, such as 30s, 5m or 1h", "Invalid Duration",
		func(s string) error {
			d, err := time.ParseDuration(s)
			if err == nil && (d < time.Second || d > 24*time.Hour) {
				err = fmt.Errorf("%s is not between 1s and 24h", d)
			}
			return err
		},
		func(attr path.Path, value types.String, _ error) string {
			return attr.String() + " must be a duration from 1s to 24h, such as 30s, 5m or 1h; got " + value.String() + "."
		})
}

// observedDuration is a timeout as read from the router: the state's value
// when it means the same duration (so "5m" stays "5m"), the observed one
// otherwise; unknown (0: the base file could not be read) keeps the state's,
// or the default for a state that has none (import, an earlier version).
func observedDuration(state types.String, observed time.Duration, def string) types.String {
	if observed <= 0 {
		if state.IsNull() || state.IsUnknown() || state.ValueString() == "" {
			return types.StringValue(def)
		}
		return state
	}
	if d, err := time.ParseDuration(state.ValueString()); err == nil && d == observed {
		return state
	}
	return types.StringValue(formatDuration(observed))
}

// formatDuration writes a duration in its largest whole unit: 5m, 1h, 90s, 1500ms.
func formatDuration(d time.Duration) string {
	switch {
	case d%time.Hour == 0:
		return fmt.Sprintf("%dh", d/time.Hour)
	case d%time.Minute == 0:
		return fmt.Sprintf("%dm", d/time.Minute)
	case d%time.Second == 0:
		return fmt.Sprintf("%ds", d/time.Second)
	}
	return fmt.Sprintf("%dms", d.Milliseconds())
}

func driftValue(drift []string) types.String {
	if len(drift) == 0 {
		return types.StringNull()
	}
	return types.StringValue(strings.Join(drift, "; "))
}
