package provider

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// terraform query (Terraform 1.14) lists the environments behind a router,
// as the quickstart has them (staging and production of one service), and
// -generate-config-out writes configuration that a second working
// directory imports with no change to make.
func TestAccEnvironment_queryGeneratesImportableConfig(t *testing.T) {
	f := newEnvFixture(t)
	staging := f.env + "-staging"
	owner := newTFWorkspace(t, fmt.Sprintf(`
resource "release_router" "edge" {
  name  = %[1]q
  image = %[2]q
  ports = [{ internal = 80, external = %[3]d }, { internal = 81, external = %[4]d }]
}

resource "release_environment" "production" {
  name        = %[5]q
  service     = "web"
  image       = "%[6]s@%[7]s"
  router      = release_router.edge.id
  listen_port = 80
}

resource "release_environment" "staging" {
  name        = %[8]q
  service     = "web"
  image       = "%[6]s@%[9]s"
  router      = release_router.edge.id
  listen_port = 81
}
`, f.router, f.haproxy, f.port, freePort(t), f.env, f.repo, f.v1, staging, f.v2))
	owner.destroyOnCleanup()
	owner.mustRun("apply", "-auto-approve")

	// A second working directory, as a team adopting existing releases has.
	adopter := newTFWorkspace(t, "")
	query := fmt.Sprintf(`
list "release_environment" "behind_edge" {
  provider         = release
  include_resource = true
  config {
    router = %q
  }
}
`, f.router)
	if err := os.WriteFile(filepath.Join(adopter.dir, "adopt.tfquery.hcl"), []byte(query), 0o600); err != nil {
		t.Fatal(err)
	}
	out := adopter.mustRun("query", "-generate-config-out=generated.tf")
	for _, want := range []string{f.env + "/web", staging + "/web"} {
		if !strings.Contains(out, want) {
			t.Errorf("terraform query does not list %s:\n%s", want, out)
		}
	}
	generated, err := os.ReadFile(filepath.Join(adopter.dir, "generated.tf"))
	if err != nil {
		t.Fatalf("terraform query wrote no configuration: %v\n%s", err, out)
	}
	if got := strings.Count(string(generated), "import {"); got != 2 {
		t.Fatalf("the generated configuration has %d import blocks, want 2:\n%s", got, generated)
	}
	t.Logf("generated configuration:\n%s", generated)
	// Staging listens on the router's second listener: read from its route,
	// not defaulted (an adopter's next release would otherwise move it).
	if !regexp.MustCompile(`listen_port\s*=\s*81\n`).Match(generated) {
		t.Errorf("the generated staging environment does not listen on 81:\n%s", generated)
	}

	plan := adopter.mustRun("plan")
	if !regexp.MustCompile(`Plan: 2 to import, 0 to add, 0 to change, 0 to destroy`).MatchString(plan) {
		t.Fatalf("the generated configuration does not import with an empty plan:\n%s", plan)
	}
	adopter.mustRun("apply", "-auto-approve")
	if out, code := adopter.run("plan", "-detailed-exitcode"); code != 0 {
		t.Fatalf("after the import the plan is not empty (exit %d):\n%s", code, out)
	}
	if err := f.checkServes("1.0.0")(nil); err != nil {
		t.Fatal(err)
	}

	// Routers are listed too.
	routers := `
list "release_router" "all" {
  provider = release
}
`
	if err := os.WriteFile(filepath.Join(adopter.dir, "adopt.tfquery.hcl"), []byte(routers), 0o600); err != nil {
		t.Fatal(err)
	}
	if out := adopter.mustRun("query"); !strings.Contains(out, f.router) {
		t.Errorf("terraform query does not list the router %s:\n%s", f.router, out)
	}
}
