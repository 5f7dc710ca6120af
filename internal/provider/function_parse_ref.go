package provider

import (
	"context"

	"github.com/hashicorp/terraform-plugin-framework/attr"
	"github.com/hashicorp/terraform-plugin-framework/function"
	"github.com/hashicorp/terraform-plugin-framework/types"

	"github.com/releasekit/terraform-provider-release/internal/imageref"
)

// parseRefFunction is provider::release::parse_ref: a pinned reference in
// its parts, for outputs, tags and checks.
type parseRefFunction struct{}

func NewParseRefFunction() function.Function { return &parseRefFunction{} }

var parsedRefType = map[string]attr.Type{
	"registry": types.StringType, "repository": types.StringType, "name": types.StringType, "tag": types.StringType, "digest": types.StringType,
}

func (f *parseRefFunction) Metadata(_ context.Context, _ function.MetadataRequest, resp *function.MetadataResponse) {
	resp.Name = "parse_ref"
}

func (f *parseRefFunction) Definition(_ context.Context, _ function.DefinitionRequest, resp *function.DefinitionResponse) {
	resp.Definition = function.Definition{
		Summary: "Splits a pinned image reference into registry, repository and digest.",
		MarkdownDescription: "Splits a pinned reference (`<repository>[:<tag>]@sha256:<digest>`, such as a `release_image`'s `ref` or an " +
			"environment's `image`) into `registry` (the host as written; Docker Hub is `docker.io`), `repository` (the path in the registry, " +
			"with `library/` for Docker Hub's official images), `name` (`<registry>/<repository>`), `tag` (empty when the reference has none) " +
			"and `digest`. A reference that is not pinned to a digest is an error that says how to pin it.",
		Parameters: []function.Parameter{
			function.StringParameter{Name: "ref", MarkdownDescription: "A pinned image reference."},
		},
		Return: function.ObjectReturn{AttributeTypes: parsedRefType},
	}
}

func (f *parseRefFunction) Run(ctx context.Context, req function.RunRequest, resp *function.RunResponse) {
	var ref string
	resp.Error = req.Arguments.Get(ctx, &ref)
	if resp.Error != nil {
		return
	}
	parsed, err := imageref.ParsePinned(ref)
	if err != nil {
		resp.Error = function.NewArgumentFuncError(0, err.Error())
		return
	}
	value, diags := types.ObjectValue(parsedRefType, map[string]attr.Value{
		"registry":   types.StringValue(parsed.Repository.Host),
		"repository": types.StringValue(parsed.Repository.Path),
		"name":       types.StringValue(parsed.Repository.String()),
		"tag":        types.StringValue(parsed.Tag),
		"digest":     types.StringValue(parsed.Digest),
	})
	if diags.HasError() {
		resp.Error = function.FuncErrorFromDiags(ctx, diags)
		return
	}
	resp.Error = resp.Result.Set(ctx, value)
}
