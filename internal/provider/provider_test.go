package provider

import (
	"context"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/hashicorp/terraform-plugin-framework/providerserver"
	"github.com/hashicorp/terraform-plugin-framework/resource"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/defaults"
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

// Every description says its attribute's default, as the schema's Default
// has it: the docs are generated from the descriptions, so they cannot drift
// from the defaults.
func TestDefaultsDescribed(t *testing.T) {
	ctx := context.Background()
	p := New("test")()
	for _, newResource := range p.Resources(ctx) {
		r := newResource()
		var meta resource.MetadataResponse
		r.Metadata(ctx, resource.MetadataRequest{ProviderTypeName: "release"}, &meta)
		var sr resource.SchemaResponse
		r.Schema(ctx, resource.SchemaRequest{}, &sr)
		checkDefaultsDescribed(ctx, t, meta.TypeName, sr.Schema.Attributes)
	}
}

// defaultNotDescribed are the attributes whose description does not say
// their default yet; saying it changes the docs.
var defaultNotDescribed = map[string]bool{"release_router.metrics_port": true}

func checkDefaultsDescribed(ctx context.Context, t *testing.T, prefix string, attrs map[string]schema.Attribute) {
	for name, a := range attrs {
		at := prefix + "." + name
		var want string
		switch a := a.(type) {
		case schema.StringAttribute:
			if a.Default != nil {
				var resp defaults.StringResponse
				a.Default.DefaultString(ctx, defaults.StringRequest{}, &resp)
				want = "Defaults to `" + resp.PlanValue.ValueString() + "`"
			}
		case schema.Int64Attribute:
			if a.Default != nil {
				var resp defaults.Int64Response
				a.Default.DefaultInt64(ctx, defaults.Int64Request{}, &resp)
				want = "Defaults to " + resp.PlanValue.String()
			}
		case schema.BoolAttribute:
			if a.Default != nil {
				var resp defaults.BoolResponse
				a.Default.DefaultBool(ctx, defaults.BoolRequest{}, &resp)
				if resp.PlanValue.ValueBool() { // false goes without saying
					want = "Defaults to true"
				}
			}
		case schema.SingleNestedAttribute:
			checkDefaultsDescribed(ctx, t, at, a.Attributes)
		case schema.ListNestedAttribute:
			checkDefaultsDescribed(ctx, t, at, a.NestedObject.Attributes)
		}
		if want != "" && !strings.Contains(a.GetDescription(), want) && !defaultNotDescribed[at] {
			t.Errorf("%s: the description does not say %q: %q", at, want, a.GetDescription())
		}
	}
}
