package provider

import (
	"context"
	"fmt"

	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/resource"
	"github.com/hashicorp/terraform-plugin-framework/resource/identityschema"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/planmodifier"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/stringplanmodifier"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
	"github.com/hashicorp/terraform-plugin-framework/tfsdk"
	"github.com/hashicorp/terraform-plugin-framework/types"

	"github.com/releasekit/terraform-provider-release/internal/imageref"
	"github.com/releasekit/terraform-provider-release/internal/registry"
	"github.com/releasekit/terraform-provider-release/internal/validators"
)

var (
	_ resource.ResourceWithConfigure      = (*imageResource)(nil)
	_ resource.ResourceWithModifyPlan     = (*imageResource)(nil)
	_ resource.ResourceWithValidateConfig = (*imageResource)(nil)
	_ resource.ResourceWithImportState    = (*imageResource)(nil)
	_ resource.ResourceWithIdentity       = (*imageResource)(nil)
)

// imageIdentity identifies a pin: the repository and the digest pinned.
type imageIdentity struct {
	Repository types.String `tfsdk:"repository"`
	Digest     types.String `tfsdk:"digest"`
}

func (r *imageResource) IdentitySchema(_ context.Context, _ resource.IdentitySchemaRequest, resp *resource.IdentitySchemaResponse) {
	resp.IdentitySchema = identityschema.Schema{
		Attributes: map[string]identityschema.Attribute{
			"repository": identityschema.StringAttribute{RequiredForImport: true, Description: "The image's repository, such as `registry.example.com/shop/web`."},
			"digest":     identityschema.StringAttribute{RequiredForImport: true, Description: "The pinned digest, `sha256:` and 64 hexadecimal digits."},
		},
	}
}

func setImageIdentity(ctx context.Context, identity *tfsdk.ResourceIdentity, m imageModel, diags *diag.Diagnostics) {
	if identity != nil {
		diags.Append(identity.Set(ctx, imageIdentity{Repository: m.Repository, Digest: m.Digest})...)
	}
}

// NewImageResource returns the release_image resource.
func NewImageResource() resource.Resource {
	return &imageResource{}
}

// imageResource pins a tag to a digest once, at create. The digest never
// follows the tag afterwards: a release is a specific artifact.
type imageResource struct {
	data *providerData
}

type imageModel struct {
	ID         types.String `tfsdk:"id"`
	Repository types.String `tfsdk:"repository"`
	Tag        types.String `tfsdk:"tag"`
	Digest     types.String `tfsdk:"digest"`
	Platform   types.String `tfsdk:"platform"`
	Ref        types.String `tfsdk:"ref"`
}

func (r *imageResource) Configure(_ context.Context, req resource.ConfigureRequest, resp *resource.ConfigureResponse) {
	r.data = providerDataFrom(req.ProviderData, &resp.Diagnostics)
}

func (r *imageResource) Metadata(_ context.Context, req resource.MetadataRequest, resp *resource.MetadataResponse) {
	resp.TypeName = req.ProviderTypeName + "_image"
}

func (r *imageResource) Schema(_ context.Context, _ resource.SchemaRequest, resp *resource.SchemaResponse) {
	resp.Schema = schema.Schema{
		Description: "An image artifact: a tag resolved once, at create, to an immutable digest. " +
			"The digest is what environments deploy (`ref`), so every environment runs the same bytes. " +
			"A tag that moves later never changes the pinned digest: the plan warns about the move, " +
			"and replacing the resource takes the new digest. Destroying it forgets the pin; the registry is not touched.",
		Attributes: map[string]schema.Attribute{
			"id": schema.StringAttribute{
				Description:   "The pinned reference, the same as `ref`.",
				Computed:      true,
				PlanModifiers: []planmodifier.String{stringplanmodifier.UseStateForUnknown()},
			},
			"repository": schema.StringAttribute{
				Description: "Repository including its registry host, such as `registry.example.com/shop/web` or `127.0.0.1:5000/shop/web`. " +
					"Docker Hub is `docker.io/<path>` (`docker.io/nginx` is `docker.io/library/nginx`, as the Docker CLI reads it); the plan checks a tag with a HEAD request, which Docker Hub does not count as a pull. " +
					"Changing it replaces the resource.",
				Required:   true,
				Validators: []validator.String{validators.Repository()},
			},
			"tag": schema.StringAttribute{
				Description: "Tag to resolve, such as `2.0.0`. Exactly one of `tag` and `digest` is set. The tag is resolved when the " +
					"resource is created (and shown in the plan); later moves of the tag are reported as warnings and never followed.",
				Optional:   true,
				Validators: []validator.String{validators.Tag()},
			},
			"digest": schema.StringAttribute{
				Description: "The pinned manifest digest (`sha256:…`). Set it instead of `tag` to pin a known digest, which is checked to " +
					"exist in the registry; otherwise it is computed from the tag. For a multi-platform image this is the index digest, " +
					"unless `platform` picks one platform's manifest.",
				Optional:   true,
				Computed:   true,
				Validators: []validator.String{validators.Digest()},
			},
			"platform": schema.StringAttribute{
				Description: "Pick one platform's manifest from a multi-platform index, such as `linux/amd64` or `linux/arm64/v8`. " +
					"For a single-platform image it is checked against the image's config. Changing it replaces the resource.",
				Optional:   true,
				Validators: []validator.String{validators.Platform()},
			},
			"ref": schema.StringAttribute{
				Description:   "The pinned reference `repository@digest`, for `release_environment.image` and `release_migration.image`.",
				Computed:      true,
				PlanModifiers: []planmodifier.String{stringplanmodifier.UseStateForUnknown()},
			},
		},
	}
}

func (r *imageResource) ValidateConfig(ctx context.Context, req resource.ValidateConfigRequest, resp *resource.ValidateConfigResponse) {
	var cfg imageModel
	resp.Diagnostics.Append(req.Config.Get(ctx, &cfg)...)
	if resp.Diagnostics.HasError() || cfg.Tag.IsUnknown() || cfg.Digest.IsUnknown() {
		return
	}
	switch {
	case cfg.Tag.IsNull() && cfg.Digest.IsNull():
		resp.Diagnostics.AddAttributeError(path.Root("tag"), "Missing Image Tag or Digest",
			"Set tag (such as \"2.0.0\") to resolve it to a digest, or digest (\"sha256:…\") to pin a known one.")
	case !cfg.Tag.IsNull() && !cfg.Digest.IsNull():
		resp.Diagnostics.AddAttributeError(path.Root("digest"), "Conflicting Image Tag and Digest",
			"Set either tag or digest, not both: with tag the digest is resolved from the registry and pinned.")
	}
}

// ModifyPlan resolves the tag at plan time, so that the plan a reviewer reads
// shows the digest that will be pinned, and reports tags that moved since.
func (r *imageResource) ModifyPlan(ctx context.Context, req resource.ModifyPlanRequest, resp *resource.ModifyPlanResponse) {
	if req.Plan.Raw.IsNull() || r.data == nil {
		return
	}
	var cfg, plan imageModel
	resp.Diagnostics.Append(req.Config.Get(ctx, &cfg)...)
	resp.Diagnostics.Append(req.Plan.Get(ctx, &plan)...)
	if resp.Diagnostics.HasError() {
		return
	}
	if cfg.Repository.IsUnknown() || cfg.Tag.IsUnknown() || cfg.Digest.IsUnknown() || cfg.Platform.IsUnknown() {
		if cfg.Digest.IsUnknown() || cfg.Digest.IsNull() {
			plan.Digest = types.StringUnknown()
		}
		plan.Ref, plan.ID = types.StringUnknown(), types.StringUnknown()
		resp.Diagnostics.Append(resp.Plan.Set(ctx, &plan)...)
		return
	}
	query, diags := imageQuery(cfg)
	resp.Diagnostics.Append(diags...)
	if resp.Diagnostics.HasError() {
		return
	}

	var state *imageModel
	if !req.State.Raw.IsNull() {
		state = &imageModel{}
		resp.Diagnostics.Append(req.State.Get(ctx, state)...)
		if resp.Diagnostics.HasError() {
			return
		}
	}

	var replace path.Paths
	if state != nil {
		if !cfg.Repository.Equal(state.Repository) {
			replace = append(replace, path.Root("repository"))
		}
		if !cfg.Platform.Equal(state.Platform) {
			replace = append(replace, path.Root("platform"))
		}
		if !cfg.Digest.IsNull() && !cfg.Digest.Equal(state.Digest) {
			replace = append(replace, path.Root("digest"))
		}
		if !cfg.Tag.IsNull() && !state.Tag.IsNull() && !cfg.Tag.Equal(state.Tag) {
			replace = append(replace, path.Root("tag"))
		}
	}

	if state != nil && len(replace) == 0 {
		// Same artifact: the pin holds. Check whether the tag moved.
		plan.Digest, plan.Ref, plan.ID = state.Digest, state.Ref, state.ID
		if !cfg.Tag.IsNull() {
			// A HEAD of the tag: no pull counted against a registry quota.
			digest, err := r.data.registry.TagDigest(ctx, query)
			switch {
			case err != nil:
				summary, detail, _ := registryDiagnostic(err)
				resp.Diagnostics.AddAttributeWarning(path.Root("tag"), "Could Not Check Tag: "+summary,
					"The pinned digest "+state.Digest.ValueString()+" is kept; whether the tag has moved is unknown.\n\n"+detail)
			case digest != state.Digest.ValueString() && state.Tag.IsNull():
				// The tag is being added to a resource that was pinned by digest
				// (e.g. after import): it names a different artifact, so replace.
				plan.Digest = types.StringValue(digest)
				plan.Ref = types.StringValue(query.Repository.String() + "@" + digest)
				plan.ID = plan.Ref
				replace = append(replace, path.Root("tag"))
			case digest != state.Digest.ValueString():
				resp.Diagnostics.AddAttributeWarning(path.Root("tag"), "Image Tag Moved",
					fmt.Sprintf("The tag %q of %s now points at %s, but this release_image keeps %s, the digest pinned when it was created. "+
						"Nothing deployed changes. To release the new image, replace this resource: terraform apply -replace=<address of this release_image>.",
						cfg.Tag.ValueString(), cfg.Repository.ValueString(), digest, state.Digest.ValueString()))
			}
		}
		resp.RequiresReplace = replace
		resp.Diagnostics.Append(resp.Plan.Set(ctx, &plan)...)
		return
	}

	res, err := r.data.registry.Resolve(ctx, query)
	if err != nil {
		addRegistryError(&resp.Diagnostics, err, false)
		return
	}
	if !cfg.Digest.IsNull() && res.Digest != cfg.Digest.ValueString() {
		resp.Diagnostics.AddAttributeError(path.Root("digest"), "Digest Is a Multi-Platform Index",
			fmt.Sprintf("The digest %s is an index; its manifest for %s is %s. Set digest to that manifest's digest, or remove platform to pin the whole index.",
				cfg.Digest.ValueString(), cfg.Platform.ValueString(), res.Digest))
		return
	}
	plan.Digest = types.StringValue(res.Digest)
	plan.Ref = types.StringValue(query.Repository.String() + "@" + res.Digest)
	plan.ID = plan.Ref
	resp.RequiresReplace = replace
	resp.Diagnostics.Append(resp.Plan.Set(ctx, &plan)...)
}

func (r *imageResource) Create(ctx context.Context, req resource.CreateRequest, resp *resource.CreateResponse) {
	var plan imageModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &plan)...)
	if resp.Diagnostics.HasError() {
		return
	}
	query, diags := imageQuery(plan)
	resp.Diagnostics.Append(diags...)
	if resp.Diagnostics.HasError() {
		return
	}
	res, err := r.data.registry.Resolve(ctx, query)
	if err != nil {
		addRegistryError(&resp.Diagnostics, err, false)
		return
	}
	// The plan showed a digest; pinning another would apply what nobody reviewed.
	if !plan.Digest.IsUnknown() && plan.Digest.ValueString() != res.Digest {
		resp.Diagnostics.AddAttributeError(path.Root("tag"), "Image Tag Moved During Apply",
			fmt.Sprintf("The plan pinned %s, but the tag %q of %s now points at %s. Nothing was pinned. Run terraform plan again to review the new digest.",
				plan.Digest.ValueString(), plan.Tag.ValueString(), plan.Repository.ValueString(), res.Digest))
		return
	}
	plan.Digest = types.StringValue(res.Digest)
	plan.Ref = types.StringValue(query.Repository.String() + "@" + res.Digest)
	plan.ID = plan.Ref
	resp.Diagnostics.Append(resp.State.Set(ctx, &plan)...)
	setImageIdentity(ctx, resp.Identity, plan, &resp.Diagnostics)
}

// Read keeps the pin as it is: the registry is consulted at plan time instead,
// so that an unreachable registry does not block plans of everything else.
func (r *imageResource) Read(ctx context.Context, req resource.ReadRequest, resp *resource.ReadResponse) {
	var state imageModel
	resp.Diagnostics.Append(req.State.Get(ctx, &state)...)
	if resp.Diagnostics.HasError() {
		return
	}
	resp.Diagnostics.Append(resp.State.Set(ctx, &state)...)
	setImageIdentity(ctx, resp.Identity, state, &resp.Diagnostics)
}

// Update only records a tag or digest attribute that names the pinned digest
// itself; any other change is a replacement.
func (r *imageResource) Update(ctx context.Context, req resource.UpdateRequest, resp *resource.UpdateResponse) {
	var plan imageModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &plan)...)
	if resp.Diagnostics.HasError() {
		return
	}
	resp.Diagnostics.Append(resp.State.Set(ctx, &plan)...)
	setImageIdentity(ctx, resp.Identity, plan, &resp.Diagnostics)
}

// Delete forgets the pin. Images stay in the registry: other states may pin them.
func (r *imageResource) Delete(context.Context, resource.DeleteRequest, *resource.DeleteResponse) {}

// ImportState takes repository@sha256:… or repository:tag@sha256:… and checks
// that the digest exists.
func (r *imageResource) ImportState(ctx context.Context, req resource.ImportStateRequest, resp *resource.ImportStateResponse) {
	id := req.ID
	if id == "" && req.Identity != nil {
		var ident imageIdentity
		resp.Diagnostics.Append(req.Identity.Get(ctx, &ident)...)
		id = ident.Repository.ValueString() + "@" + ident.Digest.ValueString()
	}
	ref, err := imageref.ParsePinned(id)
	if err != nil {
		resp.Diagnostics.AddError("Invalid Import ID",
			"Import a release_image by its pinned reference, <repository>@sha256:<digest> or <repository>:<tag>@sha256:<digest>, "+
				"such as registry.example.com/shop/web@sha256:…: "+err.Error())
		return
	}
	if r.data == nil {
		resp.Diagnostics.AddError("Provider Not Configured", "The provider was not configured before import. This is a bug in the provider.")
		return
	}
	if _, err := r.data.registry.Resolve(ctx, registry.Query{Repository: ref.Repository, Digest: ref.Digest}); err != nil {
		summary, detail, _ := registryDiagnostic(err)
		resp.Diagnostics.AddError(summary, detail)
		return
	}
	m := imageModel{
		ID:         types.StringValue(ref.String()),
		Repository: types.StringValue(ref.Repository.String()),
		Tag:        types.StringNull(),
		Digest:     types.StringValue(ref.Digest),
		Platform:   types.StringNull(),
		Ref:        types.StringValue(ref.String()),
	}
	if ref.Tag != "" {
		m.Tag = types.StringValue(ref.Tag)
	}
	resp.Diagnostics.Append(resp.State.Set(ctx, &m)...)
	setImageIdentity(ctx, resp.Identity, m, &resp.Diagnostics)
}

// imageQuery turns known configuration into a registry query.
func imageQuery(m imageModel) (registry.Query, diag.Diagnostics) {
	var diags diag.Diagnostics
	repo, err := imageref.ParseRepository(m.Repository.ValueString())
	if err != nil {
		diags.AddAttributeError(path.Root("repository"), "Invalid Image Repository", err.Error())
		return registry.Query{}, diags
	}
	q := registry.Query{Repository: repo, Tag: m.Tag.ValueString()}
	if q.Tag == "" {
		q.Digest = m.Digest.ValueString()
	}
	if !m.Platform.IsNull() {
		p, err := imageref.ParsePlatform(m.Platform.ValueString())
		if err != nil {
			diags.AddAttributeError(path.Root("platform"), "Invalid Platform", err.Error())
			return registry.Query{}, diags
		}
		q.Platform = &p
	}
	return q, diags
}
