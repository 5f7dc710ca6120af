package provider

import (
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/hashicorp/terraform-plugin-framework/providerserver"
	"github.com/hashicorp/terraform-plugin-go/tfprotov6"
)

// testAccProviders serves the provider in-process to the real Terraform CLI.
var testAccProviders = map[string]func() (tfprotov6.ProviderServer, error){
	"release": providerserver.NewProtocol6WithError(New("test")()),
}

// testStackEnv returns a variable that scripts/stack.sh exports. Acceptance
// tests fail, not skip, without it: a skipped test must never pass for a run one.
func testStackEnv(t testing.TB, name string) string {
	t.Helper()
	if os.Getenv("TF_ACC") == "" {
		// As resource.Test does: acceptance tests run only when asked for (make testacc).
		t.Skip("acceptance test: set TF_ACC=1 and start the stack (make testacc)")
	}
	v := os.Getenv(name)
	if v == "" {
		t.Fatalf("%s is not set: start the test stack with `scripts/stack.sh up` and `eval \"$(scripts/stack.sh env)\"`, or run `make testacc`", name)
	}
	return v
}

func testAccPreCheck(t testing.TB) {
	t.Helper()
	for _, name := range []string{"RELEASE_TEST_REGISTRY", "RELEASE_TEST_IMAGE_REPOSITORY", "RELEASE_TEST_IMAGE_V1_DIGEST", "RELEASE_TEST_IMAGE_V2_DIGEST"} {
		testStackEnv(t, name)
	}
}

// expectDiag compiles a pattern for a diagnostic as Terraform prints it: its
// spaces match any whitespace, because Terraform wraps long lines.
func expectDiag(pattern string) *regexp.Regexp {
	return regexp.MustCompile(strings.ReplaceAll(pattern, " ", `\s+`))
}
