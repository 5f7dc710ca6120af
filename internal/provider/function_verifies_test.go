package provider

import (
	"context"
	"regexp"
	"strings"
	"testing"

	"github.com/hashicorp/terraform-plugin-framework/attr"
	"github.com/hashicorp/terraform-plugin-framework/function"
	"github.com/hashicorp/terraform-plugin-framework/types"
	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/knownvalue"
	"github.com/hashicorp/terraform-plugin-testing/statecheck"
	"github.com/hashicorp/terraform-plugin-testing/tfversion"
)

func TestAccFunctionVerifies(t *testing.T) {
	other := "sha256:" + strings.Repeat("cd", 32)
	verified := `{ environment = "staging", service = "web", serving = "` + testDigest + `", digests = ["` + testDigest + `"] }`
	resource.Test(t, resource.TestCase{
		PreCheck:                 func() { testAccPreCheck(t) },
		TerraformVersionChecks:   []tfversion.TerraformVersionCheck{tfversion.SkipBelow(tfversion.Version1_8_0)},
		ProtoV6ProviderFactories: testAccProviders,
		Steps: []resource.TestStep{
			{
				Config: `
locals { staging = ` + verified + ` }
output "digest"    { value = provider::release::verifies(local.staging, "` + testDigest + `") }
output "reference" { value = provider::release::verifies(local.staging, "docker.io/nginx@` + testDigest + `") }
output "other"     { value = provider::release::verifies(local.staging, "` + other + `") }
output "none"      { value = provider::release::verifies({ environment = "staging", service = "web", serving = null, digests = [] }, "` + testDigest + `") }
`,
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownOutputValue("digest", knownvalue.Bool(true)),
					statecheck.ExpectKnownOutputValue("reference", knownvalue.Bool(true)),
					statecheck.ExpectKnownOutputValue("other", knownvalue.Bool(false)),
					statecheck.ExpectKnownOutputValue("none", knownvalue.Bool(false)),
				},
			},
			{
				// A precondition, as a deployment job would guard production with it.
				Config: `
locals { staging = ` + verified + ` }
output "production" {
  value = "` + other + `"
  precondition {
    condition     = provider::release::verifies(local.staging, "` + other + `")
    error_message = "production's digest was never verified by staging."
  }
}
`,
				ExpectError: regexp.MustCompile(`production's digest was never verified by staging`),
			},
			{
				Config:      `output "x" { value = provider::release::verifies(` + verified + `, "latest") }`,
				ExpectError: regexp.MustCompile(`(?s)digest:.*not\s+pinned\s+to\s+a\s+digest`),
			},
		},
	})
}

// The functions' logic, without Terraform.
func TestFunctionsRun(t *testing.T) {
	ctx := context.Background()
	run := func(f function.Function, args ...attr.Value) (attr.Value, *function.FuncError) {
		resp := function.RunResponse{Result: function.NewResultData(types.DynamicUnknown())}
		var def function.DefinitionResponse
		f.Definition(ctx, function.DefinitionRequest{}, &def)
		switch def.Definition.Return.(type) {
		case function.BoolReturn:
			resp.Result = function.NewResultData(types.BoolUnknown())
		case function.ObjectReturn:
			resp.Result = function.NewResultData(types.ObjectUnknown(parsedRefType))
		}
		f.Run(ctx, function.RunRequest{Arguments: function.NewArgumentsData(args)}, &resp)
		return resp.Result.Value(), resp.Error
	}
	got, ferr := run(NewParseRefFunction(), types.StringValue("index.docker.io/grafana/grafana:11@"+testDigest))
	if ferr != nil {
		t.Fatal(ferr)
	}
	attrs := got.(types.Object).Attributes()
	if attrs["registry"].(types.String).ValueString() != "docker.io" || attrs["repository"].(types.String).ValueString() != "grafana/grafana" ||
		attrs["tag"].(types.String).ValueString() != "11" || attrs["digest"].(types.String).ValueString() != testDigest {
		t.Errorf("parse_ref = %v", got)
	}
	if _, ferr := run(NewParseRefFunction(), types.StringValue("nginx@"+testDigest)); ferr == nil || !strings.Contains(ferr.Text, "registry host") {
		t.Errorf("a reference without a registry: %v", ferr)
	}
	verified := types.ObjectValueMust(verifiedType.AttrTypes, map[string]attr.Value{
		"environment": types.StringValue("staging"), "service": types.StringValue("web"), "serving": types.StringValue(testDigest),
		"digests": types.ListValueMust(types.StringType, []attr.Value{types.StringValue(testDigest)}),
	})
	for digest, want := range map[string]bool{testDigest: true, "registry.example.com/shop/web:1@" + testDigest: true, "sha256:" + strings.Repeat("0", 64): false} {
		got, ferr := run(NewVerifiesFunction(), verified, types.StringValue(digest))
		if ferr != nil || got.(types.Bool).ValueBool() != want {
			t.Errorf("verifies(%s) = %v, %v; want %t", digest, got, ferr, want)
		}
	}
}
