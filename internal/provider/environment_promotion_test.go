package provider

import (
	"context"
	"strings"
	"testing"

	"github.com/hashicorp/terraform-plugin-framework/attr"
	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/types"

	"github.com/releasekit/terraform-provider-release/internal/rollout"
)

var (
	digest1 = "sha256:" + strings.Repeat("1", 64)
	digest2 = "sha256:" + strings.Repeat("2", 64)
	digest3 = "sha256:" + strings.Repeat("3", 64)
)

// promotionPlan is production's plan releasing digest, promoted from upstream.
func promotionPlan(digest string, upstream types.Object) environmentModel {
	return environmentModel{
		Name:        types.StringValue("production"),
		Service:     types.StringValue("web"),
		Image:       types.StringValue("registry.example.com/shop/web@" + digest),
		PromoteFrom: upstream,
	}
}

func upstreamVerified(serving types.String, digests types.List) types.Object {
	return types.ObjectValueMust(verifiedType.AttrTypes, map[string]attr.Value{
		"environment": types.StringValue("staging"), "service": types.StringValue("web"), "serving": serving, "digests": digests,
	})
}

func stringList(s ...string) types.List {
	vs := []attr.Value{}
	for _, v := range s {
		vs = append(vs, types.StringValue(v))
	}
	return types.ListValueMust(types.StringType, vs)
}

func TestCheckPromotionPasses(t *testing.T) {
	ctx := context.Background()
	staging := rollout.Status{Revision: 2, Digest: digest2, Recorded: map[int]bool{1: true, 2: true}, History: []rollout.HistoryEntry{{Revision: 1, Digest: digest1}}}
	cases := map[string]environmentModel{
		// What staging gives production's promote_from, serving or an earlier verified digest.
		"serving digest":               promotionPlan(digest2, verifiedValue("staging", "web", staging)),
		"earlier verified":             promotionPlan(digest1, verifiedValue("staging", "web", staging)),
		"no promote_from":              promotionPlan(digest3, types.ObjectNull(verifiedType.AttrTypes)),
		"upstream unknown":             promotionPlan(digest3, types.ObjectUnknown(verifiedType.AttrTypes)),
		"upstream digests known later": promotionPlan(digest3, upstreamVerified(types.StringValue(digest2), types.ListUnknown(types.StringType))),
		"upstream serving known later": promotionPlan(digest3, upstreamVerified(types.StringUnknown(), stringList(digest2))),
		// staging releasing in the same plan: plannedVerified knows only what will serve.
		"upstream planned": promotionPlan(digest3, plannedVerified(environmentModel{
			Name: types.StringValue("staging"), Service: types.StringValue("web"), Digest: types.StringValue(digest3),
		})),
		"image unknown": {Name: types.StringValue("production"), Service: types.StringValue("web"), Image: types.StringUnknown(),
			PromoteFrom: verifiedValue("staging", "web", staging)},
		// The image's own validator reports a tag.
		"image not pinned": {Name: types.StringValue("production"), Service: types.StringValue("web"), Image: types.StringValue("registry.example.com/shop/web:1.0"),
			PromoteFrom: verifiedValue("staging", "web", staging)},
	}
	for name, plan := range cases {
		t.Run(name, func(t *testing.T) {
			var diags diag.Diagnostics
			checkPromotion(ctx, plan, &diags)
			if len(diags) != 0 {
				t.Fatalf("want no diagnostics, got %v", diags)
			}
		})
	}
}

func TestCheckPromotionRefusesUnverified(t *testing.T) {
	ctx := context.Background()
	cases := []struct {
		name     string
		upstream types.Object
		detail   string
	}{
		{
			name:     "verified others",
			upstream: verifiedValue("staging", "web", rollout.Status{Revision: 2, Digest: digest2, Recorded: map[int]bool{1: true, 2: true}, History: []rollout.HistoryEntry{{Revision: 1, Digest: digest1}}}),
			detail: "production/web would release " + digest3 + ", which staging/web has not verified.\n\n" +
				"staging/web serves " + digest2 + " and has verified: " + digest2 + ", " + digest1 + ".\n\n" +
				"Release this digest to staging/web first and let its rollout (and canary) complete, or set image to a verified digest.",
		},
		{
			name:     "upstream never released",
			upstream: upstreamVerified(types.StringValue(""), stringList()),
			detail: "production/web would release " + digest3 + ", which staging/web has not verified.\n\n" +
				"staging/web serves nothing and has verified: nothing yet.\n\n" +
				"Release this digest to staging/web first and let its rollout (and canary) complete, or set image to a verified digest.",
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var diags diag.Diagnostics
			checkPromotion(ctx, promotionPlan(digest3, c.upstream), &diags)
			if len(diags) != 1 {
				t.Fatalf("want one diagnostic, got %v", diags)
			}
			d := diags[0]
			if d.Severity() != diag.SeverityError || d.Summary() != "Digest Not Verified Upstream" || d.Detail() != c.detail {
				t.Errorf("got %s %q: %q\nwant error %q: %q", d.Severity(), d.Summary(), d.Detail(), "Digest Not Verified Upstream", c.detail)
			}
			if wp, ok := d.(diag.DiagnosticWithPath); !ok || !wp.Path().Equal(path.Root("image")) {
				t.Errorf("diagnostic not on image: %v", d)
			}
		})
	}
}
