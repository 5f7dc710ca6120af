package provider

import (
	"context"
	"sort"

	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/list"
	"github.com/hashicorp/terraform-plugin-framework/list/schema"
	"github.com/hashicorp/terraform-plugin-framework/types"

	"github.com/releasekit/terraform-provider-release/internal/naming"
	"github.com/releasekit/terraform-provider-release/internal/rollout"
)

var _ list.ListResourceWithConfigure = (*environmentListResource)(nil)

// NewEnvironmentListResource returns the list resource of release_environment.
func NewEnvironmentListResource() list.ListResource {
	return &environmentListResource{}
}

// environmentListResource (its Metadata and Configure are the resource's) finds the environments on the provider's Docker
// host from their containers' labels, for terraform query (Terraform 1.14
// and later). Each result is what an import of it reads.
type environmentListResource struct {
	environmentResource
}

type environmentListConfig struct {
	Router types.String `tfsdk:"router"`
}

func (r *environmentListResource) ListResourceConfigSchema(_ context.Context, _ list.ListResourceSchemaRequest, resp *list.ListResourceSchemaResponse) {
	resp.Schema = schema.Schema{
		MarkdownDescription: "Lists the environments on the provider's Docker host, one result per environment and service, " +
			"read from the labels of their containers as `terraform import` reads them.",
		Attributes: map[string]schema.Attribute{
			"router": schema.StringAttribute{
				Optional:    true,
				Description: "Only the environments routed through this release_router (its name). All of the host's when unset.",
			},
		},
	}
}

func (r *environmentListResource) List(ctx context.Context, req list.ListRequest, stream *list.ListResultsStream) {
	var cfg environmentListConfig
	if diags := req.Config.Get(ctx, &cfg); diags.HasError() {
		stream.Results = list.ListResultsStreamDiagnostics(diags)
		return
	}
	managed, err := rollout.ListManaged(ctx, r.data.engine)
	if err != nil {
		var diags diag.Diagnostics
		addDockerError(&diags, r.data, "Cannot List Environments", err)
		stream.Results = list.ListResultsStreamDiagnostics(diags)
		return
	}
	type key struct{ name, service string }
	seen := map[key]bool{}
	var keys []key
	for _, c := range managed {
		if !naming.KindApp.Is(c.Labels) || (!cfg.Router.IsNull() && c.Labels[naming.LabelRouter] != cfg.Router.ValueString()) {
			continue
		}
		k := key{c.Labels[naming.LabelEnvironment], c.Labels[naming.LabelService]}
		if k.name != "" && k.service != "" && !seen[k] {
			seen[k] = true
			keys = append(keys, k)
		}
	}
	sort.Slice(keys, func(i, j int) bool {
		if keys[i].name != keys[j].name {
			return keys[i].name < keys[j].name
		}
		return keys[i].service < keys[j].service
	})
	stream.Results = func(push func(list.ListResult) bool) {
		for i, k := range keys {
			if req.Limit > 0 && int64(i) >= req.Limit {
				return
			}
			result := req.NewListResult(ctx)
			result.DisplayName = k.name + "/" + k.service
			setEnvironmentIdentity(ctx, result.Identity, types.StringValue(k.name), types.StringValue(k.service), &result.Diagnostics)
			if req.IncludeResource {
				setImported(ctx, result.Resource, k.name, k.service, &result.Diagnostics)
				var m environmentModel
				result.Diagnostics.Append(result.Resource.Get(ctx, &m)...)
				if !result.Diagnostics.HasError() && r.read(ctx, &m, &result.Diagnostics) {
					result.Diagnostics.Append(result.Resource.Set(ctx, &m)...)
				}
			}
			if !push(result) {
				return
			}
		}
	}
}
