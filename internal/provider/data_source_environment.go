package provider

import (
	"context"
	"fmt"
	"time"

	"github.com/hashicorp/terraform-plugin-framework/datasource"
	"github.com/hashicorp/terraform-plugin-framework/datasource/schema"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
	"github.com/hashicorp/terraform-plugin-framework/types"
	"github.com/releasekit/terraform-provider-release/internal/naming"
)

var _ datasource.DataSourceWithConfigure = (*environmentDataSource)(nil)

// NewEnvironmentDataSource returns the release_environment data source.
func NewEnvironmentDataSource() datasource.DataSource {
	return &environmentDataSource{}
}

// environmentDataSource reads what an environment runs from the Docker host
// alone, so another Terraform state (production's, say) can see what staging runs.
type environmentDataSource struct {
	data *providerData
}

type environmentDataModel struct {
	ID         types.String `tfsdk:"id"`
	Name       types.String `tfsdk:"name"`
	Service    types.String `tfsdk:"service"`
	Image      types.String `tfsdk:"image"`
	Digest     types.String `tfsdk:"digest"`
	Revision   types.Int64  `tfsdk:"revision"`
	DeployedAt types.String `tfsdk:"deployed_at"`
	Router     types.String `tfsdk:"router"`
	Running    types.Int64  `tfsdk:"running"`
	History    types.List   `tfsdk:"history"`
	Verified   types.Object `tfsdk:"verified"`
}

func (d *environmentDataSource) Configure(_ context.Context, req datasource.ConfigureRequest, resp *datasource.ConfigureResponse) {
	d.data = providerDataFrom(req.ProviderData, &resp.Diagnostics)
}

func (d *environmentDataSource) Metadata(_ context.Context, req datasource.MetadataRequest, resp *datasource.MetadataResponse) {
	resp.TypeName = req.ProviderTypeName + "_environment"
}

func (d *environmentDataSource) Schema(_ context.Context, _ datasource.SchemaRequest, resp *datasource.SchemaResponse) {
	resp.Schema = schema.Schema{
		Description: "What an environment's service runs, read from the Docker host alone (the containers' labels and the router's route), " +
			"without its Terraform state: the serving digest and revision, the history of earlier revisions with their times, and the digests it " +
			"has verified, which a production environment in another state takes as its `promote_from`.",
		Attributes: map[string]schema.Attribute{
			"id":          schema.StringAttribute{Description: "`<name>/<service>`.", Computed: true},
			"name":        schema.StringAttribute{Description: "Environment name.", Required: true, Validators: []validator.String{nameValidator()}},
			"service":     schema.StringAttribute{Description: "Service name.", Required: true, Validators: []validator.String{nameValidator()}},
			"image":       schema.StringAttribute{Description: "The serving image, `repository@sha256:…`.", Computed: true},
			"digest":      schema.StringAttribute{Description: "The serving digest.", Computed: true},
			"revision":    schema.Int64Attribute{Description: "The serving revision.", Computed: true},
			"deployed_at": schema.StringAttribute{Description: "When the serving revision was started (RFC 3339).", Computed: true},
			"router":      schema.StringAttribute{Description: "The router that serves it.", Computed: true},
			"running":     schema.Int64Attribute{Description: "Running containers of the serving revision.", Computed: true},
			"history": schema.ListAttribute{
				Description: "Earlier revisions, newest first: revision, digest, image and deploy time.",
				Computed:    true, ElementType: historyEntryType,
			},
			"verified": schema.SingleNestedAttribute{
				Description: "The digests that completed a rollout in this environment (including the canary analysis, when it had one), the serving one first. " +
					"Give it to `promote_from` of an environment in another state.",
				Computed: true,
				Attributes: map[string]schema.Attribute{
					"environment": schema.StringAttribute{Description: "The environment's name.", Computed: true},
					"service":     schema.StringAttribute{Description: "The environment's service.", Computed: true},
					"serving":     schema.StringAttribute{Description: "The digest serving now.", Computed: true},
					"digests":     schema.ListAttribute{Description: "Every verified digest, the serving one first.", Computed: true, ElementType: types.StringType},
				},
			},
		},
	}
}

func (d *environmentDataSource) Read(ctx context.Context, req datasource.ReadRequest, resp *datasource.ReadResponse) {
	var m environmentDataModel
	resp.Diagnostics.Append(req.Config.Get(ctx, &m)...)
	if resp.Diagnostics.HasError() {
		return
	}
	st, err := observeEnvironment(ctx, d.data, m.Name.ValueString(), m.Service.ValueString(), "")
	if err != nil {
		addDockerError(&resp.Diagnostics, d.data, "Cannot Read Environment", err)
		return
	}
	if !st.Found || st.Revision == 0 {
		resp.Diagnostics.AddError("Environment Not Found",
			fmt.Sprintf("No release of %s/%s runs on %s. Check the names, and that the provider points at the Docker host the environment runs on.",
				m.Name.ValueString(), m.Service.ValueString(), d.data.engine.Host()))
		return
	}
	m.ID = types.StringValue(m.Name.ValueString() + "/" + m.Service.ValueString())
	m.Image = types.StringValue(st.Image)
	m.Digest = types.StringValue(st.Digest)
	m.Revision = types.Int64Value(int64(st.Revision))
	m.DeployedAt = types.StringValue(st.DeployedAt.Format(time.RFC3339))
	m.Router = types.StringValue(st.Containers[0].Labels[naming.LabelRouter])
	m.Running = types.Int64Value(int64(st.Running))
	m.History = historyValue(st.History)
	m.Verified = verifiedValue(m.Name.ValueString(), m.Service.ValueString(), st)
	resp.Diagnostics.Append(resp.State.Set(ctx, &m)...)
}
