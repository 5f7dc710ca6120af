package provider

import (
	"context"
	"sort"

	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/list"
	"github.com/hashicorp/terraform-plugin-framework/list/schema"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/types"

	"github.com/releasekit/terraform-provider-release/internal/naming"
	"github.com/releasekit/terraform-provider-release/internal/rollout"
)

var _ list.ListResourceWithConfigure = (*routerListResource)(nil)

// NewRouterListResource returns the list resource of release_router.
func NewRouterListResource() list.ListResource {
	return &routerListResource{}
}

// routerListResource (its Metadata and Configure are the resource's) finds
// the routers on the provider's Docker host from their containers' labels,
// for terraform query (Terraform 1.14 and later).
type routerListResource struct {
	routerResource
}

func (r *routerListResource) ListResourceConfigSchema(_ context.Context, _ list.ListResourceSchemaRequest, resp *list.ListResourceSchemaResponse) {
	resp.Schema = schema.Schema{
		MarkdownDescription: "Lists the routers on the provider's Docker host, read from their containers as `terraform import` reads them.",
	}
}

func (r *routerListResource) List(ctx context.Context, req list.ListRequest, stream *list.ListResultsStream) {
	managed, err := rollout.ListManaged(ctx, r.data.engine)
	if err != nil {
		var diags diag.Diagnostics
		addDockerError(&diags, r.data, "Cannot List Routers", err)
		stream.Results = list.ListResultsStreamDiagnostics(diags)
		return
	}
	var names []string
	for _, c := range managed {
		if naming.KindRouter.Is(c.Labels) && c.Labels[naming.LabelRouter] != "" {
			names = append(names, c.Labels[naming.LabelRouter])
		}
	}
	sort.Strings(names)
	stream.Results = func(push func(list.ListResult) bool) {
		for i, name := range names {
			if req.Limit > 0 && int64(i) >= req.Limit {
				return
			}
			result := req.NewListResult(ctx)
			result.DisplayName = name
			setRouterIdentity(ctx, result.Identity, types.StringValue(name), &result.Diagnostics)
			if req.IncludeResource {
				result.Diagnostics.Append(result.Resource.SetAttribute(ctx, path.Root("name"), name)...)
				var m routerModel
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
