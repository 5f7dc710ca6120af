package provider

import (
	"context"
	"slices"

	"github.com/hashicorp/terraform-plugin-framework/function"
	"github.com/hashicorp/terraform-plugin-framework/types"

	"github.com/releasekit/terraform-provider-release/internal/imageref"
)

// verifiesFunction is provider::release::verifies: whether an
// environment's verified object holds a digest, for precondition and check
// blocks (the promotion gate, asked before the plan of another resource).
type verifiesFunction struct{}

func NewVerifiesFunction() function.Function { return &verifiesFunction{} }

func (f *verifiesFunction) Metadata(_ context.Context, _ function.MetadataRequest, resp *function.MetadataResponse) {
	resp.Name = "verifies"
}

func (f *verifiesFunction) Definition(_ context.Context, _ function.DefinitionRequest, resp *function.DefinitionResponse) {
	resp.Definition = function.Definition{
		Summary: "Whether an environment has verified a digest.",
		MarkdownDescription: "Returns true when `verified` (a `release_environment`'s or the `release_environment` data source's `verified`) " +
			"lists `digest`, or the digest of a pinned reference: that environment served it with all of its traffic, which is what " +
			"`promote_from` requires. For `precondition` and `check` blocks, such as a deployment job's check that production only ever " +
			"runs what staging verified. A digest that is not `sha256:<64 hex>` and not a pinned reference is an error.",
		Parameters: []function.Parameter{
			function.ObjectParameter{Name: "verified", AttributeTypes: verifiedType.AttrTypes,
				MarkdownDescription: "An environment's `verified` object."},
			function.StringParameter{Name: "digest", MarkdownDescription: "A digest (`sha256:…`) or a pinned reference (`<repository>@sha256:…`)."},
		},
		Return: function.BoolReturn{},
	}
}

func (f *verifiesFunction) Run(ctx context.Context, req function.RunRequest, resp *function.RunResponse) {
	var verified verifiedModel
	var digest string
	resp.Error = req.Arguments.Get(ctx, &verified, &digest)
	if resp.Error != nil {
		return
	}
	if imageref.ValidateDigest(digest) != nil {
		ref, err := imageref.ParsePinned(digest)
		if err != nil {
			resp.Error = function.NewArgumentFuncError(1, "digest: "+err.Error())
			return
		}
		digest = ref.Digest
	}
	var digests []string
	if !verified.Digests.IsNull() {
		if diags := verified.Digests.ElementsAs(ctx, &digests, false); diags.HasError() {
			resp.Error = function.FuncErrorFromDiags(ctx, diags)
			return
		}
	}
	resp.Error = resp.Result.Set(ctx, types.BoolValue(slices.Contains(digests, digest)))
}
