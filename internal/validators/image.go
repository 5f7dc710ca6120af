// Package validators holds the attribute validators that check image
// references at plan time, with messages that say how to write them, and
// StringCheck, which every string validator of the provider is built on.
package validators

import (
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
	"github.com/hashicorp/terraform-plugin-framework/types"

	"github.com/releasekit/terraform-provider-release/internal/imageref"
)

// parsed checks a value with an image reference parser: description is both
// what the value is and, after "Invalid ", the diagnostic's title.
func parsed(description string, check func(string) error) validator.String {
	return StringCheck(description, "Invalid "+description, check, func(attr path.Path, _ types.String, err error) string {
		return "The value of " + attr.String() + " is not valid: " + err.Error() + "."
	})
}

// Repository checks <registry host>/<path>.
func Repository() validator.String {
	return parsed("image repository", func(s string) error { _, err := imageref.ParseRepository(s); return err })
}

// Tag checks a tag's grammar.
func Tag() validator.String {
	return parsed("image tag", imageref.ValidateTag)
}

// Digest checks sha256:<64 hex>.
func Digest() validator.String {
	return parsed("image digest", imageref.ValidateDigest)
}

// Platform checks os/arch[/variant].
func Platform() validator.String {
	return parsed("platform", func(s string) error { _, err := imageref.ParsePlatform(s); return err })
}

// PinnedReference checks repository@sha256:…, the only image form an environment takes.
func PinnedReference() validator.String {
	return parsed("pinned image reference", func(s string) error { _, err := imageref.ParsePinned(s); return err })
}
