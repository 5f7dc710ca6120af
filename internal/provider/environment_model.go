package provider

import (
	"context"
	"fmt"
	"time"

	"github.com/hashicorp/terraform-plugin-framework-timeouts/resource/timeouts"
	"github.com/hashicorp/terraform-plugin-framework-validators/listvalidator"
	"github.com/hashicorp/terraform-plugin-framework-validators/stringvalidator"
	"github.com/hashicorp/terraform-plugin-framework/attr"
	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
	"github.com/hashicorp/terraform-plugin-framework/tfsdk"
	"github.com/hashicorp/terraform-plugin-framework/types"

	"github.com/releasekit/terraform-provider-release/internal/canary"
	"github.com/releasekit/terraform-provider-release/internal/imageref"
	"github.com/releasekit/terraform-provider-release/internal/naming"
	"github.com/releasekit/terraform-provider-release/internal/rollout"
)

type environmentModel struct {
	ID           types.String   `tfsdk:"id"`
	Name         types.String   `tfsdk:"name"`
	Service      types.String   `tfsdk:"service"`
	Image        types.String   `tfsdk:"image"`
	Replicas     types.Int64    `tfsdk:"replicas"`
	Port         types.Int64    `tfsdk:"port"`
	ListenPort   types.Int64    `tfsdk:"listen_port"`
	Env          types.Map      `tfsdk:"env"`
	EnvWo        types.Map      `tfsdk:"env_wo"`
	EnvWoVersion types.Int64    `tfsdk:"env_wo_version"`
	Command      types.List     `tfsdk:"command"`
	HealthCheck  types.Object   `tfsdk:"health_check"`
	Router       types.String   `tfsdk:"router"`
	HistoryLimit types.Int64    `tfsdk:"history_limit"`
	StopTimeout  types.String   `tfsdk:"stop_timeout"`
	Network      types.String   `tfsdk:"network"`
	Swarm        types.Object   `tfsdk:"swarm"`
	Timeouts     timeouts.Value `tfsdk:"timeouts"`
	Digest       types.String   `tfsdk:"digest"`
	Revision     types.Int64    `tfsdk:"revision"`
	DeployedAt   types.String   `tfsdk:"deployed_at"`
	History      types.List     `tfsdk:"history"`
	Drift        types.String   `tfsdk:"drift"`
	Canary       types.String   `tfsdk:"canary"`
	CanaryPolicy types.Object   `tfsdk:"canary_policy"`
	Rollout      types.String   `tfsdk:"rollout"`
	Verified     types.Object   `tfsdk:"verified"`
	PromoteFrom  types.Object   `tfsdk:"promote_from"`
}

// swarmModel places an environment's replicas on a Docker Swarm.
type swarmModel struct {
	Constraints types.List `tfsdk:"constraints"`
}

var swarmTypes = map[string]attr.Type{
	"constraints": types.ListType{ElemType: types.StringType},
}

// swarmAttribute is the swarm block of release_environment and release_migration.
func swarmAttribute(description string) schema.SingleNestedAttribute {
	return schema.SingleNestedAttribute{
		Description: description,
		Optional:    true,
		Attributes: map[string]schema.Attribute{
			"constraints": schema.ListAttribute{
				Description: "Swarm placement constraints, such as `node.role==worker` or `node.labels.zone==a`.",
				Optional:    true, ElementType: types.StringType,
				Validators: []validator.List{listvalidator.ValueStringsAre(stringvalidator.RegexMatches(swarmConstraintPattern, "must be a Swarm constraint such as `node.role==worker`"))},
			},
		},
	}
}

// swarmSpec is the swarm block as the rollout takes it: nil runs containers.
func swarmSpec(ctx context.Context, o types.Object) (*rollout.Swarm, diag.Diagnostics) {
	if o.IsNull() || o.IsUnknown() {
		return nil, nil
	}
	var m swarmModel
	diags := o.As(ctx, &m, objectAsOptions)
	s := &rollout.Swarm{}
	diags.Append(m.Constraints.ElementsAs(ctx, &s.Constraints, false)...)
	return s, diags
}

// ownNetworkName is the network an environment creates for itself when
// it names none: a bridge, or an overlay on a swarm.
func ownNetworkName(m environmentModel) string {
	if !m.Swarm.IsNull() {
		return naming.OverlayNetworkName(m.Name.ValueString(), m.Service.ValueString())
	}
	return naming.NetworkName(m.Name.ValueString(), m.Service.ValueString())
}

// verifiedModel is what an environment has verified, and what promote_from takes.
type verifiedModel struct {
	Environment types.String `tfsdk:"environment"`
	Service     types.String `tfsdk:"service"`
	Serving     types.String `tfsdk:"serving"`
	Digests     types.List   `tfsdk:"digests"`
}

var verifiedType = types.ObjectType{AttrTypes: map[string]attr.Type{
	"environment": types.StringType, "service": types.StringType, "serving": types.StringType, "digests": types.ListType{ElemType: types.StringType},
}}

type healthCheckModel struct {
	Path             types.String `tfsdk:"path"`
	Interval         types.String `tfsdk:"interval"`
	Timeout          types.String `tfsdk:"timeout"`
	HealthyThreshold types.Int64  `tfsdk:"healthy_threshold"`
	StartTimeout     types.String `tfsdk:"start_timeout"`
}

var healthCheckTypes = map[string]attr.Type{
	"path": types.StringType, "interval": types.StringType, "timeout": types.StringType,
	"healthy_threshold": types.Int64Type, "start_timeout": types.StringType,
}

// The defaults of release_environment's settings, for the schema and for
// an import (the containers' labels do not hold these settings).
const (
	defaultReplicas     int64 = 1
	defaultPort         int64 = 8080
	defaultListenPort   int64 = 80
	defaultHistoryLimit int64 = 3
	defaultStopTimeout        = "10s"

	defaultHealthPath                   = "/healthz"
	defaultHealthInterval               = "1s"
	defaultHealthTimeout                = "2s"
	defaultHealthHealthyThreshold int64 = 1
	defaultHealthStartTimeout           = "60s"
)

// defaultHealthCheck is health_check when it is not set.
func defaultHealthCheck() types.Object {
	return types.ObjectValueMust(healthCheckTypes, map[string]attr.Value{
		"path": types.StringValue(defaultHealthPath), "interval": types.StringValue(defaultHealthInterval), "timeout": types.StringValue(defaultHealthTimeout),
		"healthy_threshold": types.Int64Value(defaultHealthHealthyThreshold), "start_timeout": types.StringValue(defaultHealthStartTimeout),
	})
}

// historyEntryModel is one element of history.
type historyEntryModel struct {
	Revision   types.Int64  `tfsdk:"revision"`
	Digest     types.String `tfsdk:"digest"`
	Image      types.String `tfsdk:"image"`
	DeployedAt types.String `tfsdk:"deployed_at"`
}

var historyEntryType = types.ObjectType{AttrTypes: map[string]attr.Type{
	"revision": types.Int64Type, "digest": types.StringType, "image": types.StringType, "deployed_at": types.StringType,
}}

// setObserved fills the computed attributes from what the host runs.
func (r *environmentResource) setObserved(m *environmentModel, st rollout.Status) {
	m.ID = types.StringValue(m.Name.ValueString() + "/" + m.Service.ValueString())
	m.Digest = types.StringValue(st.Digest)
	m.Revision = types.Int64Value(int64(st.Revision))
	m.DeployedAt = types.StringValue(st.DeployedAt.Format(time.RFC3339))
	m.History = historyValue(st.History)
	m.Verified = verifiedValue(m.Name.ValueString(), m.Service.ValueString(), st)
}

// writeOnlyEnv reads env_wo from the configuration: write-only values
// are in no plan or state.
func writeOnlyEnv(ctx context.Context, config tfsdk.Config, diags *diag.Diagnostics) map[string]string {
	var wo types.Map
	diags.Append(config.GetAttribute(ctx, path.Root("env_wo"), &wo)...)
	if wo.IsNull() || wo.IsUnknown() {
		return nil
	}
	env := map[string]string{}
	diags.Append(wo.ElementsAs(ctx, &env, false)...)
	return env
}

// checkWriteOnlyEnv refuses env_wo without its version, and a name in both
// env and env_wo, at plan.
func checkWriteOnlyEnv(ctx context.Context, config tfsdk.Config, plan environmentModel, diags *diag.Diagnostics) {
	var wo types.Map
	diags.Append(config.GetAttribute(ctx, path.Root("env_wo"), &wo)...)
	if wo.IsNull() {
		return
	}
	if plan.EnvWoVersion.IsNull() {
		diags.AddAttributeError(path.Root("env_wo_version"), "Missing env_wo_version",
			"env_wo is set but env_wo_version is not. Terraform keeps no copy of write-only values, so the provider cannot see when they change: "+
				"set env_wo_version = 1, and raise it whenever env_wo changes to release the new values.")
	}
	if wo.IsUnknown() || plan.Env.IsNull() || plan.Env.IsUnknown() {
		return
	}
	for name := range wo.Elements() {
		if _, both := plan.Env.Elements()[name]; both {
			diags.AddAttributeError(path.Root("env_wo").AtMapKey(name), "Variable In env And env_wo",
				fmt.Sprintf("%s is set in both env and env_wo. Keep it in one: env_wo for a secret, which then stays out of the state.", name))
		}
	}
}

// spec converts the plan into the rollout's terms.
func (r *environmentResource) spec(ctx context.Context, m environmentModel) (rollout.Spec, diag.Diagnostics) {
	var diags diag.Diagnostics
	ref, err := imageref.ParsePinned(m.Image.ValueString())
	if err != nil {
		addImageNotPinnedError(&diags, err)
		return rollout.Spec{}, diags
	}
	var hc healthCheckModel
	diags.Append(m.HealthCheck.As(ctx, &hc, objectAsOptions)...)
	env := map[string]string{}
	diags.Append(m.Env.ElementsAs(ctx, &env, false)...)
	var cmd []string
	diags.Append(m.Command.ElementsAs(ctx, &cmd, false)...)
	parse := func(s types.String) time.Duration { d, _ := time.ParseDuration(s.ValueString()); return d }
	onSwarm, d := swarmSpec(ctx, m.Swarm)
	diags.Append(d...)
	// The policy is decoded here, once, and carried as a plain value.
	var policy *canary.Policy
	if !m.Canary.IsNull() && !m.Canary.IsUnknown() {
		p, err := canary.Decode(m.Canary.ValueString())
		if err != nil {
			addInvalidCanaryError(&diags, err)
			return rollout.Spec{}, diags
		}
		policy = &p
	}
	if !m.CanaryPolicy.IsNull() && !m.CanaryPolicy.IsUnknown() {
		p, known, d := policyFromObject(ctx, m.CanaryPolicy)
		diags.Append(d...)
		if problems := p.Validate(); known && len(problems) > 0 {
			for _, pr := range problems {
				diags.AddAttributeError(path.Root("canary_policy"), "Invalid Canary Policy", pr.Path+": "+pr.Message+".")
			}
		}
		if diags.HasError() {
			return rollout.Spec{}, diags
		}
		if known {
			policy = &p
		}
	}
	return rollout.Spec{
		Environment: m.Name.ValueString(),
		Service:     m.Service.ValueString(),
		Image:       m.Image.ValueString(),
		Digest:      ref.Digest,
		Replicas:    int(m.Replicas.ValueInt64()),
		Port:        int(m.Port.ValueInt64()),
		Env:         env,
		Command:     cmd,
		// The values of env_wo come from the configuration at apply (writeOnlyEnv); the version is what releases them.
		SecretEnvVersion: m.EnvWoVersion.ValueInt64(),
		Health: rollout.Health{
			Path: hc.Path.ValueString(), Interval: parse(hc.Interval), Timeout: parse(hc.Timeout),
			HealthyThreshold: int(hc.HealthyThreshold.ValueInt64()), StartTimeout: parse(hc.StartTimeout),
		},
		Router:        rollout.RouterRef{Name: m.Router.ValueString(), ListenPort: int(m.ListenPort.ValueInt64())},
		HistoryLimit:  int(m.HistoryLimit.ValueInt64()),
		StopTimeout:   parse(m.StopTimeout),
		SharedNetwork: sharedNetwork(m),
		Swarm:         onSwarm,
		Canary:        policy,
	}, diags
}

// plannedVerified is verified as a plan knows it: the digest that will
// serve once the apply succeeds; the full list is known after it.
func plannedVerified(plan environmentModel) types.Object {
	if plan.Name.IsUnknown() || plan.Service.IsUnknown() || plan.Digest.IsUnknown() {
		return types.ObjectUnknown(verifiedType.AttrTypes)
	}
	return types.ObjectValueMust(verifiedType.AttrTypes, map[string]attr.Value{
		"environment": plan.Name, "service": plan.Service, "serving": plan.Digest, "digests": types.ListUnknown(types.StringType),
	})
}

// verifiedValue is what an environment gives its downstream's promote_from.
func verifiedValue(name, service string, st rollout.Status) types.Object {
	digests := []attr.Value{}
	for _, d := range st.Verified() {
		digests = append(digests, types.StringValue(d))
	}
	return types.ObjectValueMust(verifiedType.AttrTypes, map[string]attr.Value{
		"environment": types.StringValue(name), "service": types.StringValue(service),
		"serving": types.StringValue(st.Digest), "digests": types.ListValueMust(types.StringType, digests),
	})
}

// verifiedServing is observed with the serving digest of planned, when the
// plan knew it.
func verifiedServing(observed, planned types.Object) types.Object {
	serving, ok := planned.Attributes()["serving"]
	if !ok || serving.IsUnknown() || observed.IsNull() || observed.IsUnknown() {
		return observed
	}
	attrs := observed.Attributes()
	attrs["serving"] = serving
	return types.ObjectValueMust(verifiedType.AttrTypes, attrs)
}

func historyValue(h []rollout.HistoryEntry) types.List {
	elems := make([]attr.Value, 0, len(h))
	for _, e := range h {
		elems = append(elems, types.ObjectValueMust(historyEntryType.AttrTypes, map[string]attr.Value{
			"revision": types.Int64Value(int64(e.Revision)), "digest": types.StringValue(e.Digest),
			"image": types.StringValue(e.Image), "deployed_at": types.StringValue(e.DeployedAt.Format(time.RFC3339)),
		}))
	}
	return types.ListValueMust(historyEntryType, elems)
}

// sharedNetwork is the configured network when it is not the environment's own.
func sharedNetwork(m environmentModel) string {
	own := ownNetworkName(m)
	if m.Network.IsNull() || m.Network.IsUnknown() || m.Network.ValueString() == own {
		return ""
	}
	return m.Network.ValueString()
}

func filterRevision(st rollout.Status) []string {
	var out []string
	for _, c := range st.Containers {
		if c.Labels[naming.LabelRevision] == fmt.Sprint(st.Revision) {
			out = append(out, c.Name)
		}
	}
	return out
}

func dedupe(s []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, v := range s {
		if !seen[v] {
			seen[v] = true
			out = append(out, v)
		}
	}
	return out
}
