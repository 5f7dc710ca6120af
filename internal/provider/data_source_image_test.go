package provider

import (
	"fmt"
	"testing"

	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/knownvalue"
	"github.com/hashicorp/terraform-plugin-testing/statecheck"
	"github.com/hashicorp/terraform-plugin-testing/tfjsonpath"
)

func TestAccImageDataSource(t *testing.T) {
	repo := testStackEnv(t, "RELEASE_TEST_IMAGE_REPOSITORY")
	v1 := testStackEnv(t, "RELEASE_TEST_IMAGE_V1_DIGEST")
	v2 := testStackEnv(t, "RELEASE_TEST_IMAGE_V2_DIGEST")
	resource.Test(t, resource.TestCase{
		PreCheck:                 func() { testAccPreCheck(t) },
		ProtoV6ProviderFactories: testAccProviders,
		Steps: []resource.TestStep{
			{
				Config: fmt.Sprintf(`
data "release_image" "by_tag" {
  repository = %[1]q
  tag        = "2.0.0"
}
data "release_image" "by_digest" {
  repository = %[1]q
  digest     = %[2]q
}
`, repo, v1),
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue("data.release_image.by_tag", tfjsonpath.New("digest"), knownvalue.StringExact(v2)),
					statecheck.ExpectKnownValue("data.release_image.by_tag", tfjsonpath.New("ref"), knownvalue.StringExact(repo+"@"+v2)),
					statecheck.ExpectKnownValue("data.release_image.by_digest", tfjsonpath.New("ref"), knownvalue.StringExact(repo+"@"+v1)),
				},
			},
			{
				Config: fmt.Sprintf(`
data "release_image" "missing" {
  repository = %q
  tag        = "0.0.0-missing"
}
`, repo),
				ExpectError: expectDiag(`Image Tag Not Found`),
			},
		},
	})
}
