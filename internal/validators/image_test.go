package validators

import (
	"context"
	"testing"

	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
	"github.com/hashicorp/terraform-plugin-framework/types"
)

func TestImageValidators(t *testing.T) {
	ctx := context.Background()
	cases := []struct {
		v                      validator.String
		description, good, bad string
		attr                   path.Path
	}{
		{Repository(), "image repository", "registry.example.com/shop/web", "Shop/Web", path.Root("repository")},
		{Tag(), "image tag", "1.0", "-1.0", path.Root("tag")},
		{Digest(), "image digest", "sha256:" + hex64, "sha256:abc", path.Root("digest")},
		{Platform(), "platform", "linux/amd64", "linux", path.Root("platform")},
		{PinnedReference(), "pinned image reference", "registry.example.com/shop/web@sha256:" + hex64, "registry.example.com/shop/web:1.0", path.Root("image")},
	}
	for _, c := range cases {
		t.Run(c.description, func(t *testing.T) {
			if c.v.Description(ctx) != c.description || c.v.MarkdownDescription(ctx) != c.description {
				t.Errorf("description %q, want %q", c.v.Description(ctx), c.description)
			}
			for _, ok := range []types.String{types.StringNull(), types.StringUnknown(), types.StringValue(c.good)} {
				var resp validator.StringResponse
				c.v.ValidateString(ctx, validator.StringRequest{Path: c.attr, ConfigValue: ok}, &resp)
				if resp.Diagnostics.HasError() {
					t.Errorf("%s: unexpected %v", ok, resp.Diagnostics)
				}
			}
			var resp validator.StringResponse
			c.v.ValidateString(ctx, validator.StringRequest{Path: c.attr, ConfigValue: types.StringValue(c.bad)}, &resp)
			if len(resp.Diagnostics) != 1 {
				t.Fatalf("%q: want one diagnostic, got %v", c.bad, resp.Diagnostics)
			}
			d := resp.Diagnostics[0]
			wantPrefix := "The value of " + c.attr.String() + " is not valid: "
			if d.Summary() != "Invalid "+c.description || len(d.Detail()) <= len(wantPrefix) || d.Detail()[:len(wantPrefix)] != wantPrefix || d.Detail()[len(d.Detail())-1] != '.' {
				t.Errorf("%q: got %q: %q", c.bad, d.Summary(), d.Detail())
			}
		})
	}
}

const hex64 = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
