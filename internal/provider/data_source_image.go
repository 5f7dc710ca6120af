package provider

import (
	"context"

	"github.com/hashicorp/terraform-plugin-framework/datasource"
	"github.com/hashicorp/terraform-plugin-framework/datasource/schema"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
	"github.com/hashicorp/terraform-plugin-framework/types"

	"github.com/releasekit/terraform-provider-release/internal/validators"
)

var (
	_ datasource.DataSourceWithConfigure      = (*imageDataSource)(nil)
	_ datasource.DataSourceWithValidateConfig = (*imageDataSource)(nil)
)

// NewImageDataSource returns the release_image data source.
func NewImageDataSource() datasource.DataSource {
	return &imageDataSource{}
}

// imageDataSource looks a tag or digest up on every read, pinning nothing.
type imageDataSource struct {
	data *providerData
}

func (d *imageDataSource) Configure(_ context.Context, req datasource.ConfigureRequest, resp *datasource.ConfigureResponse) {
	d.data = providerDataFrom(req.ProviderData, &resp.Diagnostics)
}

func (d *imageDataSource) Metadata(_ context.Context, req datasource.MetadataRequest, resp *datasource.MetadataResponse) {
	resp.TypeName = req.ProviderTypeName + "_image"
}

func (d *imageDataSource) Schema(_ context.Context, _ datasource.SchemaRequest, resp *datasource.SchemaResponse) {
	resp.Schema = schema.Schema{
		Description: "Looks up the digest a tag points at now, or checks that a digest exists, without pinning it. " +
			"Use the `release_image` resource to pin a digest for a release; this data source follows the tag on every refresh.",
		Attributes: map[string]schema.Attribute{
			"id": schema.StringAttribute{
				Description: "The resolved reference, the same as `ref`.",
				Computed:    true,
			},
			"repository": schema.StringAttribute{
				Description: "Repository including its registry host, such as `registry.example.com/shop/web`; Docker Hub is `docker.io/<path>` (`docker.io/nginx` is `docker.io/library/nginx`).",
				Required:    true,
				Validators:  []validator.String{validators.Repository()},
			},
			"tag": schema.StringAttribute{
				Description: "Tag to look up. Exactly one of `tag` and `digest` is set.",
				Optional:    true,
				Validators:  []validator.String{validators.Tag()},
			},
			"digest": schema.StringAttribute{
				Description: "Digest the tag points at now, or a digest to check for existence.",
				Optional:    true,
				Computed:    true,
				Validators:  []validator.String{validators.Digest()},
			},
			"platform": schema.StringAttribute{
				Description: "Pick one platform's manifest from a multi-platform index, such as `linux/amd64`.",
				Optional:    true,
				Validators:  []validator.String{validators.Platform()},
			},
			"ref": schema.StringAttribute{
				Description: "The reference `repository@digest`.",
				Computed:    true,
			},
		},
	}
}

func (d *imageDataSource) ValidateConfig(ctx context.Context, req datasource.ValidateConfigRequest, resp *datasource.ValidateConfigResponse) {
	var cfg imageModel
	resp.Diagnostics.Append(req.Config.Get(ctx, &cfg)...)
	if resp.Diagnostics.HasError() || cfg.Tag.IsUnknown() || cfg.Digest.IsUnknown() {
		return
	}
	if cfg.Tag.IsNull() == cfg.Digest.IsNull() {
		resp.Diagnostics.AddAttributeError(path.Root("tag"), "Set Exactly One of Tag and Digest",
			"The release_image data source looks up either a tag (such as \"2.0.0\") or a digest (\"sha256:…\"): set exactly one.")
	}
}

func (d *imageDataSource) Read(ctx context.Context, req datasource.ReadRequest, resp *datasource.ReadResponse) {
	var cfg imageModel
	resp.Diagnostics.Append(req.Config.Get(ctx, &cfg)...)
	if resp.Diagnostics.HasError() {
		return
	}
	query, diags := imageQuery(cfg)
	resp.Diagnostics.Append(diags...)
	if resp.Diagnostics.HasError() {
		return
	}
	res, err := d.data.registry.Resolve(ctx, query)
	if err != nil {
		addRegistryError(&resp.Diagnostics, err, false)
		return
	}
	if !cfg.Digest.IsNull() && res.Digest != cfg.Digest.ValueString() {
		resp.Diagnostics.AddAttributeError(path.Root("digest"), "Digest Is a Multi-Platform Index",
			"The digest "+cfg.Digest.ValueString()+" is an index; its manifest for "+cfg.Platform.ValueString()+" is "+res.Digest+
				". Set digest to that manifest's digest, or remove platform.")
		return
	}
	cfg.Digest = types.StringValue(res.Digest)
	cfg.Ref = types.StringValue(query.Repository.String() + "@" + res.Digest)
	cfg.ID = cfg.Ref
	resp.Diagnostics.Append(resp.State.Set(ctx, &cfg)...)
}
