package provider

import (
	"context"

	"github.com/hashicorp/terraform-plugin-framework/diag"

	"github.com/releasekit/terraform-provider-release/internal/imageref"
)

// checkPromotion is the promotion gate: the digest must be one the upstream
// environment verified. Unknown values (an upstream changing in the same
// plan) are checked again at apply, when they are known.
func checkPromotion(ctx context.Context, plan environmentModel, diags *diag.Diagnostics) {
	if plan.PromoteFrom.IsNull() || plan.PromoteFrom.IsUnknown() || plan.Image.IsUnknown() {
		return
	}
	var up verifiedModel
	diags.Append(plan.PromoteFrom.As(ctx, &up, objectAsOptions)...)
	if diags.HasError() || up.Digests.IsUnknown() || up.Serving.IsUnknown() {
		return
	}
	ref, err := imageref.ParsePinned(plan.Image.ValueString())
	if err != nil {
		return // the image's own validator reports it
	}
	var verified []string
	diags.Append(up.Digests.ElementsAs(ctx, &verified, false)...)
	for _, d := range verified {
		if d == ref.Digest {
			return
		}
	}
	addNotVerifiedUpstreamError(diags, plan.Name.ValueString()+"/"+plan.Service.ValueString(), ref.Digest,
		up.Environment.ValueString()+"/"+up.Service.ValueString(), up.Serving.ValueString(), verified)
}
