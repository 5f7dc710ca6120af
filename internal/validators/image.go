// Package validators holds the attribute validators that check image
// references at plan time, with messages that say how to write them.
package validators

import (
	"context"

	"github.com/hashicorp/terraform-plugin-framework/schema/validator"

	"github.com/releasekit/terraform-provider-release/internal/imageref"
)

type parseValidator struct {
	description string
	check       func(string) error
}

func (v parseValidator) Description(context.Context) string         { return v.description }
func (v parseValidator) MarkdownDescription(context.Context) string { return v.description }

func (v parseValidator) ValidateString(_ context.Context, req validator.StringRequest, resp *validator.StringResponse) {
	if req.ConfigValue.IsNull() || req.ConfigValue.IsUnknown() {
		return
	}
	if err := v.check(req.ConfigValue.ValueString()); err != nil {
		resp.Diagnostics.AddAttributeError(req.Path, "Invalid "+v.description, "The value of "+req.Path.String()+" is not valid: "+err.Error()+".")
	}
}

// Repository checks <registry host>/<path>.
func Repository() validator.String {
	return parseValidator{"image repository", func(s string) error { _, err := imageref.ParseRepository(s); return err }}
}

// Tag checks a tag's grammar.
func Tag() validator.String {
	return parseValidator{"image tag", imageref.ValidateTag}
}

// Digest checks sha256:<64 hex>.
func Digest() validator.String {
	return parseValidator{"image digest", imageref.ValidateDigest}
}

// Platform checks os/arch[/variant].
func Platform() validator.String {
	return parseValidator{"platform", func(s string) error { _, err := imageref.ParsePlatform(s); return err }}
}

// PinnedReference checks repository@sha256:…, the only image form an environment takes.
func PinnedReference() validator.String {
	return parseValidator{"pinned image reference", func(s string) error { _, err := imageref.ParsePinned(s); return err }}
}
