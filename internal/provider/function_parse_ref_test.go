package provider

import (
	"regexp"
	"strings"
	"testing"

	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/knownvalue"
	"github.com/hashicorp/terraform-plugin-testing/statecheck"
	"github.com/hashicorp/terraform-plugin-testing/tfversion"
)

var testDigest = "sha256:" + strings.Repeat("ab", 32)

func TestAccFunctionParseRef(t *testing.T) {
	resource.Test(t, resource.TestCase{
		PreCheck:                 func() { testAccPreCheck(t) },
		TerraformVersionChecks:   []tfversion.TerraformVersionCheck{tfversion.SkipBelow(tfversion.Version1_8_0)},
		ProtoV6ProviderFactories: testAccProviders,
		Steps: []resource.TestStep{
			{
				Config: `
output "hub" {
  value = provider::release::parse_ref("docker.io/nginx:1.27@` + testDigest + `")
}
output "private" {
  value = provider::release::parse_ref("registry.example.com:5000/shop/web@` + testDigest + `")
}
`,
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownOutputValue("hub", knownvalue.ObjectExact(map[string]knownvalue.Check{
						"registry": knownvalue.StringExact("docker.io"), "repository": knownvalue.StringExact("library/nginx"),
						"name": knownvalue.StringExact("docker.io/library/nginx"), "tag": knownvalue.StringExact("1.27"), "digest": knownvalue.StringExact(testDigest),
					})),
					statecheck.ExpectKnownOutputValue("private", knownvalue.ObjectExact(map[string]knownvalue.Check{
						"registry": knownvalue.StringExact("registry.example.com:5000"), "repository": knownvalue.StringExact("shop/web"),
						"name": knownvalue.StringExact("registry.example.com:5000/shop/web"), "tag": knownvalue.StringExact(""), "digest": knownvalue.StringExact(testDigest),
					})),
				},
			},
			{
				Config:      `output "x" { value = provider::release::parse_ref("registry.example.com/shop/web:2.0") }`,
				ExpectError: regexp.MustCompile(`(?s)not\s+pinned\s+to\s+a\s+digest.*release_image`),
			},
		},
	})
}
