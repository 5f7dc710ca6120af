package provider

import (
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/terraform-plugin-framework-validators/stringvalidator"
	"github.com/hashicorp/terraform-plugin-framework/attr"
	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/resource"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/booldefault"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/float64default"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/int64default"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/objectdefault"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/stringdefault"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
	"github.com/hashicorp/terraform-plugin-framework/types"
	"github.com/hashicorp/terraform-plugin-framework/types/basetypes"

	"github.com/releasekit/terraform-provider-release/internal/canary"
)

var (
	_ resource.ResourceWithModifyPlan     = (*canaryResource)(nil)
	_ resource.ResourceWithValidateConfig = (*canaryResource)(nil)
	_ resource.ResourceWithImportState    = (*canaryResource)(nil)
	_ resource.ResourceWithUpgradeState   = (*canaryResource)(nil)
)

// NewCanaryResource returns the release_canary resource.
func NewCanaryResource() resource.Resource {
	return &canaryResource{}
}

// canaryResource is a reusable canary policy. It creates nothing on a host:
// its id carries the whole policy to the environments that use it.
type canaryResource struct{}

type canaryModel struct {
	ID               types.String `tfsdk:"id"`
	Steps            []stepModel  `tfsdk:"steps"`
	Analysis         types.Object `tfsdk:"analysis"`
	Baseline         types.Bool   `tfsdk:"baseline"`
	OnInterrupt      types.String `tfsdk:"on_interrupt"`
	ReportPath       types.String `tfsdk:"report_path"`
	Schedule         types.String `tfsdk:"schedule"`
	ShortestDuration types.String `tfsdk:"shortest_duration"`
	RequestsNeeded   types.String `tfsdk:"requests_needed"`
	LongestDuration  types.String `tfsdk:"longest_duration"`
	Policy           types.Object `tfsdk:"policy"`
}

type stepModel struct {
	Weight types.Int64  `tfsdk:"weight"`
	Pause  types.String `tfsdk:"pause"`
}

type analysisModel struct {
	Interval          types.String  `tfsdk:"interval"`
	MinRequests       types.Int64   `tfsdk:"min_requests"`
	MaxErrorRate      types.Float64 `tfsdk:"max_error_rate"`
	MaxLatency        types.String  `tfsdk:"max_latency"`
	Prometheus        types.Object  `tfsdk:"prometheus"`
	Queries           types.List    `tfsdk:"queries"`
	Errors            types.Object  `tfsdk:"errors"`
	FailureLimit      types.Int64   `tfsdk:"failure_limit"`
	InconclusiveLimit types.Int64   `tfsdk:"inconclusive_limit"`
	FalseAlarmRate    types.Float64 `tfsdk:"false_alarm_rate"`
	MustCatch         types.Float64 `tfsdk:"must_catch"`
	OnUnderpowered    types.String  `tfsdk:"on_underpowered"`
	SlowRequests      types.Bool    `tfsdk:"slow_requests"`
}

type prometheusModel struct {
	URL         types.String `tfsdk:"url"`
	Username    types.String `tfsdk:"username"`
	PasswordEnv types.String `tfsdk:"password_env"`
}

type queryModel struct {
	Name  types.String  `tfsdk:"name"`
	Query types.String  `tfsdk:"query"`
	Min   types.Float64 `tfsdk:"min"`
	Max   types.Float64 `tfsdk:"max"`
}

type errorsModel struct {
	Metric           types.String `tfsdk:"metric"`
	Label            types.String `tfsdk:"label"`
	NewTypeIntervals types.Int64  `tfsdk:"new_type_intervals"`
	DetectDecrease   types.Bool   `tfsdk:"detect_decrease"`
}

var (
	prometheusTypes = map[string]attr.Type{"url": types.StringType, "username": types.StringType, "password_env": types.StringType}
	queryTypes      = map[string]attr.Type{"name": types.StringType, "query": types.StringType, "min": types.Float64Type, "max": types.Float64Type}
	errorsTypes     = map[string]attr.Type{"metric": types.StringType, "label": types.StringType, "new_type_intervals": types.Int64Type, "detect_decrease": types.BoolType}
	analysisTypes   = map[string]attr.Type{
		"interval": types.StringType, "min_requests": types.Int64Type, "max_error_rate": types.Float64Type, "max_latency": types.StringType,
		"prometheus": types.ObjectType{AttrTypes: prometheusTypes}, "queries": types.ListType{ElemType: types.ObjectType{AttrTypes: queryTypes}},
		"errors": types.ObjectType{AttrTypes: errorsTypes}, "failure_limit": types.Int64Type, "inconclusive_limit": types.Int64Type,
		"false_alarm_rate": types.Float64Type, "must_catch": types.Float64Type, "on_underpowered": types.StringType,
		"slow_requests": types.BoolType,
	}
)

func (r *canaryResource) Metadata(_ context.Context, req resource.MetadataRequest, resp *resource.MetadataResponse) {
	resp.TypeName = req.ProviderTypeName + "_canary"
}

func (r *canaryResource) Schema(_ context.Context, _ resource.SchemaRequest, resp *resource.SchemaResponse) {
	duration := []validator.String{durationValidator(time.Second)}
	resp.Schema = schema.Schema{
		// Version 1 added the judgment's settings (false_alarm_rate, must_catch,
		// on_underpowered, slow_requests) and requests_needed.
		Version: 1,
		Description: "A canary release policy, reusable across environments and modules: the steps of traffic a new release gets, " +
			"and how each step is judged on live metrics before the next. It creates nothing on a host; `release_environment.canary` " +
			"takes its `id`, which carries the whole policy. The plan shows the schedule and how long a canary takes.",
		Attributes: map[string]schema.Attribute{
			"id": schema.StringAttribute{
				Description: "The policy, encoded: give it to `release_environment.canary`. It changes exactly when the policy does.",
				Computed:    true,
			},
			"steps": schema.ListNestedAttribute{
				Description: "Steps in order: the canary gets `weight` percent of traffic for `pause`, analysed every `analysis.interval`. " +
					"Weights rise from step to step; after the last step the canary is promoted to 100%.",
				Required: true,
				NestedObject: schema.NestedAttributeObject{Attributes: map[string]schema.Attribute{
					"weight": schema.Int64Attribute{Description: "Percent of traffic to the canary, 1 to 99.", Required: true},
					"pause": schema.StringAttribute{Description: "How long the step lasts, such as `2m`; or `manual`: the apply ends with the canary held at the step's weight, " +
						"and the next apply continues from the step after it (the plan shows `continue the canary …`). The `release_canary_promote` action on a held canary is carried out by that next apply.",
						Required: true, Validators: []validator.String{pauseValidator()}},
				}},
			},
			"analysis": schema.SingleNestedAttribute{
				Description: "How each step is judged. Every check (the 5xx comparison with the baseline, the 5xx ceiling, known and new error types, " +
					"the share of slow requests) is an exact sequential test with a share of one false-alarm budget, `false_alarm_rate`, for the whole canary: " +
					"a canary no worse than its baseline is aborted in at most that share of runs, however many looks and checks. A look with fewer than " +
					"`min_requests` on a side is inconclusive, never a pass; a canary whose test could not have caught `must_catch` is underpowered, never promoted silently.",
				Optional: true, Computed: true,
				Default: objectdefault.StaticValue(types.ObjectValueMust(analysisTypes, map[string]attr.Value{
					"interval": types.StringValue(canary.Format(canary.DefaultInterval)), "min_requests": types.Int64Value(canary.DefaultMinRequests), "max_error_rate": types.Float64Null(),
					"max_latency": types.StringNull(), "prometheus": types.ObjectNull(prometheusTypes),
					"queries": types.ListNull(types.ObjectType{AttrTypes: queryTypes}), "errors": types.ObjectNull(errorsTypes),
					"failure_limit": types.Int64Value(canary.DefaultFailureLimit), "inconclusive_limit": types.Int64Value(canary.DefaultInconclusiveLimit),
					"false_alarm_rate": types.Float64Value(canary.DefaultFalseAlarmRate), "must_catch": types.Float64Null(), "on_underpowered": types.StringValue(canary.DefaultOnUnderpowered),
					"slow_requests": types.BoolValue(false),
				})),
				Attributes: map[string]schema.Attribute{
					"interval": schema.StringAttribute{Description: "Time between analyses. Defaults to `30s`.",
						Optional: true, Computed: true, Default: stringdefault.StaticString(canary.Format(canary.DefaultInterval)), Validators: duration},
					"min_requests": schema.Int64Attribute{Description: "Requests each side needs before a check counts. Defaults to 100.",
						Optional: true, Computed: true, Default: int64default.StaticInt64(canary.DefaultMinRequests)},
					"max_error_rate": schema.Float64Attribute{Description: "Fails a canary whose share of 5xx responses is significantly above this fraction, such as 0.01. " +
						"Read from the router's per-server metrics: no change to the application is needed.", Optional: true},
					"max_latency": schema.StringAttribute{Description: "Fails a canary whose mean response time, from the router, is above this, such as `250ms`.",
						Optional: true, Validators: []validator.String{durationValidator(time.Millisecond)}},
					"prometheus": schema.SingleNestedAttribute{
						Description: "The Prometheus server `queries` and `errors` are read from.",
						Optional:    true,
						Attributes: map[string]schema.Attribute{
							"url":      schema.StringAttribute{Description: "Base URL, such as `http://prometheus:9090`.", Required: true},
							"username": schema.StringAttribute{Description: "User for basic authentication.", Optional: true},
							"password_env": schema.StringAttribute{Description: "Name of the environment variable the provider reads the password from at apply, " +
								"so that no secret is stored in the policy or its id.", Optional: true},
						},
					},
					"queries": schema.ListNestedAttribute{
						Description: "Health metrics whose value for the canary must stay within `min`..`max`. The query is a template that can name " +
							"`{{.Track}}` (always `canary`: the query measures the canary), `{{.Environment}}`, `{{.Service}}`, `{{.Digest}}`, `{{.CanaryDigest}}`, `{{.StableDigest}}` and `{{.Interval}}`.",
						Optional: true,
						NestedObject: schema.NestedAttributeObject{Attributes: map[string]schema.Attribute{
							"name":  schema.StringAttribute{Description: "Name in the report: lowercase letters, digits, underscores.", Required: true},
							"query": schema.StringAttribute{Description: "PromQL returning one number.", Required: true},
							"min":   schema.Float64Attribute{Description: "Lowest acceptable value.", Optional: true},
							"max":   schema.Float64Attribute{Description: "Highest acceptable value.", Optional: true},
						}},
					},
					"errors": schema.SingleNestedAttribute{
						Description: "Error monitoring from the application's error counter. A new error type, seen on the canary but never on baseline " +
							"or stable, fails it once all its occurrences falling on the canary by chance is less likely than its share of the budget, given " +
							"the canary's share of the traffic (stable's requests before the canary count as exposure). A significant increase (and, with " +
							"`detect_decrease`, decrease) of a known error's rate fails it too; every type has its share of the budget.",
						Optional: true,
						Attributes: map[string]schema.Attribute{
							"metric": schema.StringAttribute{Description: "Counter of errors, such as `app_errors_total`.", Required: true},
							"label": schema.StringAttribute{Description: "Label that holds the error type. Defaults to `type`.",
								Optional: true, Computed: true, Default: stringdefault.StaticString(canary.DefaultErrorLabel)},
							"new_type_intervals": schema.Int64Attribute{Description: "No longer used: a new type is judged by the exact occurrence test, " +
								"whatever the intervals it appears in. Defaults to 2.",
								DeprecationMessage: "new_type_intervals no longer changes the judgment: new error types are judged by an exact occurrence test. Remove it.",
								Optional:           true, Computed: true, Default: int64default.StaticInt64(canary.DefaultNewTypeIntervals)},
							"detect_decrease": schema.BoolAttribute{Description: "Also fail on a significant decrease of a known error's rate.",
								Optional: true, Computed: true, Default: booldefault.StaticBool(canary.DefaultDetectDecrease)},
						},
					},
					"failure_limit": schema.Int64Attribute{Description: "Failed analyses before the canary is aborted. Defaults to 1.",
						Optional: true, Computed: true, Default: int64default.StaticInt64(canary.DefaultFailureLimit)},
					"inconclusive_limit": schema.Int64Attribute{Description: "Inconclusive analyses in a row at the end of a step before the canary is aborted; no data never promotes. " +
						"Also how many intervals `on_underpowered = \"extend\"` adds to the last step. Defaults to 3.",
						Optional: true, Computed: true, Default: int64default.StaticInt64(canary.DefaultInconclusiveLimit)},
					"false_alarm_rate": schema.Float64Attribute{Description: "The whole canary's false-alarm budget: the largest share of canaries no worse than their " +
						"baseline that are aborted, over every look and every check together (the report shows each check's share). Defaults to 0.01.",
						Optional: true, Computed: true, Default: float64default.StaticFloat64(canary.DefaultFalseAlarmRate)},
					"must_catch": schema.Float64Attribute{Description: "The canary 5xx rate its test must be able to catch with 80% power, such as `0.02`. " +
						"At the end of each step the report shows the power the 5xx comparison has against it by the end of the schedule, at the traffic seen; " +
						"after the last step, below 80% the canary is underpowered and `on_underpowered` decides. Defaults to the smaller of 3× the baseline's 5xx rate and that rate plus " +
						"1 point (the baseline's rate taken as at least 0.1%). Raise it for a low-traffic service whose canaries are too small to catch less.",
						Optional: true},
					"slow_requests": schema.BoolAttribute{Description: "Also judge the canary's share of slow requests: bounds near the median, the 90th and the " +
						"99th percentile of the baseline's first `min_requests` response times (from the router's request log) are fixed, and a canary whose share " +
						"of requests slower than any of them is significantly higher fails. The check takes 1.5 parts in 7.5 of the false-alarm budget from the " +
						"5xx comparison. Defaults to false.",
						Optional: true, Computed: true, Default: booldefault.StaticBool(false)},
					"on_underpowered": schema.StringAttribute{Description: "What a canary whose test could not catch `must_catch` does: `abort` (every user back on stable; " +
						"the error says about how many more requests it needed), `extend` (analyse the last step up to `inconclusive_limit` more intervals, then abort) " +
						"or `promote` (go on, with a warning in the report). Defaults to `abort`.",
						Optional: true, Computed: true, Default: stringdefault.StaticString(canary.DefaultOnUnderpowered),
						Validators: []validator.String{stringvalidator.OneOf("abort", "extend", "promote")}},
				},
			},
			"baseline": schema.BoolAttribute{
				Description: "Run a fresh container of the stable version beside the canary, with the same traffic, and judge the canary against it (fair: same age, same load). Defaults to true.",
				Optional:    true, Computed: true, Default: booldefault.StaticBool(canary.DefaultBaseline),
			},
			"on_interrupt": schema.StringAttribute{
				Description: "What the next apply does with a canary that an interrupted apply left mid-way: `abort` (every user back on stable, canary removed) or `resume`. Defaults to `abort`.",
				Optional:    true, Computed: true, Default: stringdefault.StaticString(canary.DefaultOnInterrupt),
				Validators: []validator.String{stringvalidator.OneOf("abort", "resume")},
			},
			"report_path": schema.StringAttribute{
				Description: "If set, the analysis report of each canary is also written to this file as Markdown, ready for a pull-request comment.",
				Optional:    true,
			},
			"schedule": schema.StringAttribute{
				Description: "The schedule in one line, as a reviewer reads it in the plan.", Computed: true,
			},
			"requests_needed": schema.StringAttribute{
				Description: "About how many canary requests this schedule needs for its 5xx comparison to catch `must_catch` with 80% power, " +
					"at a 0.1% and a 1% baseline 5xx rate: a canary that gets fewer is underpowered (see `analysis.on_underpowered`).", Computed: true,
			},
			"shortest_duration": schema.StringAttribute{
				Description: "How long a canary that passes every analysis takes.", Computed: true,
			},
			"longest_duration": schema.StringAttribute{
				Description: "How long a canary can take before it is promoted or aborted, with every inconclusive retry.", Computed: true,
			},
			"policy": schema.ObjectAttribute{
				Description: "The whole policy as attributes, defaults filled in: give it to `release_environment.canary_policy`, and a plan shows " +
					"the steps, analysis and limits where a reviewer reads them.",
				Computed: true, AttributeTypes: policyTypes,
			},
		},
	}
}

func (r *canaryResource) ValidateConfig(ctx context.Context, req resource.ValidateConfigRequest, resp *resource.ValidateConfigResponse) {
	var m canaryModel
	resp.Diagnostics.Append(req.Config.Get(ctx, &m)...)
	if resp.Diagnostics.HasError() {
		return
	}
	p, known, diags := canaryPolicy(ctx, m)
	resp.Diagnostics.Append(diags...)
	if !known || resp.Diagnostics.HasError() {
		return
	}
	for _, pr := range p.Validate() {
		resp.Diagnostics.AddAttributeError(problemPath(pr.Path), "Invalid Canary Policy", pr.Path+": "+pr.Message+".")
	}
}

// ModifyPlan puts the id and schedule into the plan.
func (r *canaryResource) ModifyPlan(ctx context.Context, req resource.ModifyPlanRequest, resp *resource.ModifyPlanResponse) {
	if req.Plan.Raw.IsNull() {
		return
	}
	var m canaryModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &m)...)
	if resp.Diagnostics.HasError() {
		return
	}
	p, known, diags := canaryPolicy(ctx, m)
	resp.Diagnostics.Append(diags...)
	if !known || resp.Diagnostics.HasError() {
		return
	}
	setComputed(&m, p)
	resp.Diagnostics.Append(resp.Plan.Set(ctx, &m)...)
}

func (r *canaryResource) Create(ctx context.Context, req resource.CreateRequest, resp *resource.CreateResponse) {
	r.save(ctx, req.Plan.Get, &resp.State, &resp.Diagnostics)
}

func (r *canaryResource) Update(ctx context.Context, req resource.UpdateRequest, resp *resource.UpdateResponse) {
	r.save(ctx, req.Plan.Get, &resp.State, &resp.Diagnostics)
}

func (r *canaryResource) save(ctx context.Context, get func(context.Context, any) diag.Diagnostics, state interface {
	Set(context.Context, any) diag.Diagnostics
}, diags *diag.Diagnostics) {
	var m canaryModel
	diags.Append(get(ctx, &m)...)
	if diags.HasError() {
		return
	}
	p, _, d := canaryPolicy(ctx, m)
	diags.Append(d...)
	if diags.HasError() {
		return
	}
	setComputed(&m, p)
	diags.Append(state.Set(ctx, &m)...)
}

func (r *canaryResource) Read(ctx context.Context, req resource.ReadRequest, resp *resource.ReadResponse) {
	var m canaryModel
	resp.Diagnostics.Append(req.State.Get(ctx, &m)...)
	if !resp.Diagnostics.HasError() {
		resp.Diagnostics.Append(resp.State.Set(ctx, &m)...)
	}
}

func (r *canaryResource) Delete(context.Context, resource.DeleteRequest, *resource.DeleteResponse) {}

// UpgradeState rebuilds a state written before the judgment's settings
// existed from its id, which carries the whole policy: the new settings
// take their defaults, the id stays the same, and the next plan is empty.
func (r *canaryResource) UpgradeState(context.Context) map[int64]resource.StateUpgrader {
	return map[int64]resource.StateUpgrader{
		0: {StateUpgrader: func(ctx context.Context, req resource.UpgradeStateRequest, resp *resource.UpgradeStateResponse) {
			var prior struct {
				ID string `json:"id"`
			}
			if req.RawState == nil || json.Unmarshal(req.RawState.JSON, &prior) != nil {
				resp.Diagnostics.AddError("Unreadable Canary Policy State", "The state of this release_canary, written by an earlier version of the provider, cannot be read. Remove it with terraform state rm and import it again with its id.")
				return
			}
			p, err := canary.Decode(prior.ID)
			if err != nil {
				resp.Diagnostics.AddError("Unreadable Canary Policy State", fmt.Sprintf("The id in the state of this release_canary, written by an earlier version of the provider, cannot be read: %v. Remove it with terraform state rm and import it again with its id.", err))
				return
			}
			resp.Diagnostics.Append(resp.State.Set(ctx, policyModel(p))...)
		}},
	}
}

// ImportState takes a policy's id.
func (r *canaryResource) ImportState(ctx context.Context, req resource.ImportStateRequest, resp *resource.ImportStateResponse) {
	p, err := canary.Decode(req.ID)
	if err != nil {
		resp.Diagnostics.AddError("Invalid Import ID", "Import a release_canary by its id (release_canary.<name>.id): "+err.Error())
		return
	}
	m := policyModel(p)
	resp.Diagnostics.Append(resp.State.Set(ctx, &m)...)
}

// policyTypes are the attributes of a policy object (release_canary.policy,
// release_environment.canary_policy): the policy's own settings.
var policyTypes = map[string]attr.Type{
	"steps":    types.ListType{ElemType: types.ObjectType{AttrTypes: stepTypes}},
	"analysis": types.ObjectType{AttrTypes: analysisTypes}, "baseline": types.BoolType, "on_interrupt": types.StringType, "report_path": types.StringType,
}

var stepTypes = map[string]attr.Type{"weight": types.Int64Type, "pause": types.StringType}

// policyObject is a policy as a policy object.
func policyObject(p canary.Policy) types.Object {
	m := policySettings(p)
	steps := make([]attr.Value, 0, len(m.Steps))
	for _, s := range m.Steps {
		steps = append(steps, types.ObjectValueMust(stepTypes, map[string]attr.Value{"weight": s.Weight, "pause": s.Pause}))
	}
	return types.ObjectValueMust(policyTypes, map[string]attr.Value{
		"steps": types.ListValueMust(types.ObjectType{AttrTypes: stepTypes}, steps), "analysis": m.Analysis,
		"baseline": m.Baseline, "on_interrupt": m.OnInterrupt, "report_path": m.ReportPath,
	})
}

// policyFromObject reads a policy object back, with the checks of a
// release_canary; known is false while any value is unknown.
func policyFromObject(ctx context.Context, o types.Object) (canary.Policy, bool, diag.Diagnostics) {
	var diags diag.Diagnostics
	attrs := o.Attributes()
	m := canaryModel{Analysis: types.ObjectNull(analysisTypes), Baseline: types.BoolNull(), OnInterrupt: types.StringNull(), ReportPath: types.StringNull()}
	if v, ok := attrs["analysis"].(types.Object); ok {
		m.Analysis = v
	}
	if v, ok := attrs["baseline"].(types.Bool); ok {
		m.Baseline = v
	}
	if v, ok := attrs["on_interrupt"].(types.String); ok {
		m.OnInterrupt = v
	}
	if v, ok := attrs["report_path"].(types.String); ok {
		m.ReportPath = v
	}
	steps, ok := attrs["steps"].(types.List)
	if !ok || steps.IsUnknown() {
		return canary.Policy{}, false, diags
	}
	diags.Append(steps.ElementsAs(ctx, &m.Steps, false)...)
	p, known, d := canaryPolicy(ctx, m)
	diags.Append(d...)
	return p, known, diags
}

func setComputed(m *canaryModel, p canary.Policy) {
	m.Policy = policyObject(p)
	m.ID = types.StringValue(p.ID())
	m.Schedule = types.StringValue(p.Schedule())
	m.ShortestDuration = types.StringValue(canary.Format(p.Shortest()))
	m.RequestsNeeded = types.StringValue(p.NeedsText())
	m.LongestDuration = types.StringValue(canary.Format(p.Longest()))
}

// canaryPolicy converts the model; known is false while any value is unknown.
func canaryPolicy(ctx context.Context, m canaryModel) (canary.Policy, bool, diag.Diagnostics) {
	var diags diag.Diagnostics
	p := canary.Policy{Baseline: m.Baseline.ValueBool(), OnInterrupt: m.OnInterrupt.ValueString(), ReportPath: m.ReportPath.ValueString()}
	if m.Baseline.IsNull() {
		p.Baseline = canary.DefaultBaseline
	}
	if m.OnInterrupt.IsNull() {
		p.OnInterrupt = canary.DefaultOnInterrupt
	}
	known := !m.Analysis.IsUnknown() && !m.Baseline.IsUnknown() && !m.OnInterrupt.IsUnknown() && !m.ReportPath.IsUnknown()
	for _, s := range m.Steps {
		if s.Weight.IsUnknown() || s.Pause.IsUnknown() {
			known = false
			continue
		}
		if s.Pause.ValueString() == canary.ManualPause {
			p.Steps = append(p.Steps, canary.Step{Weight: int(s.Weight.ValueInt64()), Manual: true})
			continue
		}
		d, _ := time.ParseDuration(s.Pause.ValueString())
		p.Steps = append(p.Steps, canary.Step{Weight: int(s.Weight.ValueInt64()), Pause: canary.Duration(d)})
	}
	p.Analysis = canary.Analysis{Interval: canary.Duration(canary.DefaultInterval), MinRequests: canary.DefaultMinRequests,
		FailureLimit: canary.DefaultFailureLimit, InconclusiveLimit: canary.DefaultInconclusiveLimit}
	if m.Analysis.IsNull() || m.Analysis.IsUnknown() {
		return p, known, diags
	}
	var a analysisModel
	diags.Append(m.Analysis.As(ctx, &a, basetypes.ObjectAsOptions{UnhandledNullAsEmpty: true, UnhandledUnknownAsEmpty: true})...)
	for _, v := range []attr.Value{a.Interval, a.MinRequests, a.MaxErrorRate, a.MaxLatency, a.Prometheus, a.Queries, a.Errors, a.FailureLimit, a.InconclusiveLimit,
		a.FalseAlarmRate, a.MustCatch, a.OnUnderpowered, a.SlowRequests} {
		if v.IsUnknown() {
			known = false
		}
	}
	if !a.Interval.IsNull() {
		d, _ := time.ParseDuration(a.Interval.ValueString())
		p.Analysis.Interval = canary.Duration(d)
	}
	if !a.MinRequests.IsNull() {
		p.Analysis.MinRequests = int(a.MinRequests.ValueInt64())
	}
	p.Analysis.MaxErrorRate = a.MaxErrorRate.ValueFloat64()
	if !a.MaxLatency.IsNull() {
		d, _ := time.ParseDuration(a.MaxLatency.ValueString())
		p.Analysis.MaxLatency = canary.Duration(d)
	}
	if !a.FailureLimit.IsNull() {
		p.Analysis.FailureLimit = int(a.FailureLimit.ValueInt64())
	}
	if !a.InconclusiveLimit.IsNull() {
		p.Analysis.InconclusiveLimit = int(a.InconclusiveLimit.ValueInt64())
	}
	p.Analysis.FalseAlarmRate = canary.DefaultFalseAlarmRate
	if !a.FalseAlarmRate.IsNull() {
		p.Analysis.FalseAlarmRate = a.FalseAlarmRate.ValueFloat64()
	}
	p.Analysis.MustCatch = a.MustCatch.ValueFloat64()
	p.Analysis.SlowRequests = a.SlowRequests.ValueBool()
	p.Analysis.OnUnderpowered = canary.DefaultOnUnderpowered
	if !a.OnUnderpowered.IsNull() {
		p.Analysis.OnUnderpowered = a.OnUnderpowered.ValueString()
	}
	if !a.Prometheus.IsNull() && !a.Prometheus.IsUnknown() {
		var pm prometheusModel
		diags.Append(a.Prometheus.As(ctx, &pm, basetypes.ObjectAsOptions{})...)
		p.Analysis.Prometheus = &canary.Prometheus{URL: pm.URL.ValueString(), Username: pm.Username.ValueString(), PasswordEnv: pm.PasswordEnv.ValueString()}
	}
	if !a.Queries.IsNull() && !a.Queries.IsUnknown() {
		var qs []queryModel
		diags.Append(a.Queries.ElementsAs(ctx, &qs, false)...)
		for _, q := range qs {
			cq := canary.Query{Name: q.Name.ValueString(), Query: q.Query.ValueString()}
			if !q.Min.IsNull() {
				v := q.Min.ValueFloat64()
				cq.Min = &v
			}
			if !q.Max.IsNull() {
				v := q.Max.ValueFloat64()
				cq.Max = &v
			}
			p.Analysis.Queries = append(p.Analysis.Queries, cq)
		}
	}
	if !a.Errors.IsNull() && !a.Errors.IsUnknown() {
		var em errorsModel
		diags.Append(a.Errors.As(ctx, &em, basetypes.ObjectAsOptions{UnhandledNullAsEmpty: true})...)
		e := canary.Errors{Metric: em.Metric.ValueString(), Label: em.Label.ValueString(), NewTypeIntervals: int(em.NewTypeIntervals.ValueInt64()), DetectDecrease: em.DetectDecrease.ValueBool()}
		if em.Label.IsNull() {
			e.Label = canary.DefaultErrorLabel
		}
		if em.NewTypeIntervals.IsNull() {
			e.NewTypeIntervals = canary.DefaultNewTypeIntervals
		}
		p.Analysis.Errors = &e
	}
	return p, known, diags
}

// policyModel is the state of an imported policy.
func policyModel(p canary.Policy) canaryModel {
	m := policySettings(p)
	setComputed(&m, p)
	return m
}

// policySettings are a policy's settings as a model, without the computed attributes.
func policySettings(p canary.Policy) canaryModel {
	m := canaryModel{Baseline: types.BoolValue(p.Baseline), OnInterrupt: types.StringValue(p.OnInterrupt), ReportPath: types.StringNull()}
	if p.ReportPath != "" {
		m.ReportPath = types.StringValue(p.ReportPath)
	}
	for _, s := range p.Steps {
		m.Steps = append(m.Steps, stepModel{Weight: types.Int64Value(int64(s.Weight)), Pause: types.StringValue(s.PauseText())})
	}
	a := p.Analysis
	vals := map[string]attr.Value{
		"interval": types.StringValue(canary.Format(time.Duration(a.Interval))), "min_requests": types.Int64Value(int64(a.MinRequests)),
		"max_error_rate": types.Float64Null(), "max_latency": types.StringNull(), "prometheus": types.ObjectNull(prometheusTypes),
		"queries": types.ListNull(types.ObjectType{AttrTypes: queryTypes}), "errors": types.ObjectNull(errorsTypes),
		"failure_limit": types.Int64Value(int64(a.FailureLimit)), "inconclusive_limit": types.Int64Value(int64(a.InconclusiveLimit)),
		"false_alarm_rate": types.Float64Value(a.FalseAlarmRate), "must_catch": types.Float64Null(), "on_underpowered": types.StringValue(p.UnderpoweredAction()),
		"slow_requests": types.BoolValue(a.SlowRequests),
	}
	if a.FalseAlarmRate <= 0 {
		vals["false_alarm_rate"] = types.Float64Value(canary.DefaultFalseAlarmRate)
	}
	if a.MustCatch > 0 {
		vals["must_catch"] = types.Float64Value(a.MustCatch)
	}
	if a.MaxErrorRate > 0 {
		vals["max_error_rate"] = types.Float64Value(a.MaxErrorRate)
	}
	if a.MaxLatency > 0 {
		vals["max_latency"] = types.StringValue(canary.Format(time.Duration(a.MaxLatency)))
	}
	if pr := a.Prometheus; pr != nil {
		vals["prometheus"] = types.ObjectValueMust(prometheusTypes, map[string]attr.Value{
			"url": types.StringValue(pr.URL), "username": optionalString(pr.Username), "password_env": optionalString(pr.PasswordEnv)})
	}
	if len(a.Queries) > 0 {
		var qs []attr.Value
		for _, q := range a.Queries {
			qv := map[string]attr.Value{"name": types.StringValue(q.Name), "query": types.StringValue(q.Query), "min": types.Float64Null(), "max": types.Float64Null()}
			if q.Min != nil {
				qv["min"] = types.Float64Value(*q.Min)
			}
			if q.Max != nil {
				qv["max"] = types.Float64Value(*q.Max)
			}
			qs = append(qs, types.ObjectValueMust(queryTypes, qv))
		}
		vals["queries"] = types.ListValueMust(types.ObjectType{AttrTypes: queryTypes}, qs)
	}
	if e := a.Errors; e != nil {
		vals["errors"] = types.ObjectValueMust(errorsTypes, map[string]attr.Value{"metric": types.StringValue(e.Metric), "label": types.StringValue(e.Label),
			"new_type_intervals": types.Int64Value(int64(e.NewTypeIntervals)), "detect_decrease": types.BoolValue(e.DetectDecrease)})
	}
	m.Analysis = types.ObjectValueMust(analysisTypes, vals)
	return m
}

func optionalString(s string) types.String {
	if s == "" {
		return types.StringNull()
	}
	return types.StringValue(s)
}

var pathPart = regexp.MustCompile(`^([a-z_]+)(?:\[(\d+)\])?$`)

// problemPath turns "analysis.queries[0].name" into an attribute path.
func problemPath(s string) path.Path {
	var p path.Path
	for i, part := range strings.Split(s, ".") {
		m := pathPart.FindStringSubmatch(part)
		if m == nil {
			break
		}
		if i == 0 {
			p = path.Root(m[1])
		} else {
			p = p.AtName(m[1])
		}
		if m[2] != "" {
			n, _ := strconv.Atoi(m[2])
			p = p.AtListIndex(n)
		}
	}
	return p
}
