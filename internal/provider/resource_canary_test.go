package provider

import (
	"regexp"
	"testing"

	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/knownvalue"
	"github.com/hashicorp/terraform-plugin-testing/plancheck"
	"github.com/hashicorp/terraform-plugin-testing/statecheck"
	"github.com/hashicorp/terraform-plugin-testing/tfjsonpath"
)

const testCanaryStandard = `
resource "release_canary" "standard" {
  steps = [
    { weight = 5, pause = "1m" },
    { weight = 25, pause = "2m" },
    { weight = 50, pause = "2m" },
  ]
  analysis = {
    interval       = "30s"
    min_requests   = 100
    max_error_rate = 0.01
    prometheus     = { url = "http://127.0.0.1:19090" }
    queries = [{
      name  = "p95_latency"
      query = "histogram_quantile(0.95, sum by (le) (rate(app_request_duration_seconds_bucket{track=\"{{.Track}}\",service=\"{{.Service}}\"}[{{.Interval}}])))"
      max   = 0.5
    }]
    errors = { metric = "app_errors_total" }
  }
}
`

// The plan shows the schedule and how long a canary takes; the id carries the
// policy and imports back to the same state.
func TestAccCanary_scheduleInPlanAndImport(t *testing.T) {
	schedule := "5% for 1m → 25% for 2m → 50% for 2m → 100% to the canary and an equal baseline; analysed every 30s (at least 100 requests a side); 5m to 9m30s"
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProviders,
		Steps: []resource.TestStep{
			{
				Config: testCanaryStandard,
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectKnownValue("release_canary.standard", tfjsonpath.New("schedule"), knownvalue.StringExact(schedule)),
					plancheck.ExpectKnownValue("release_canary.standard", tfjsonpath.New("shortest_duration"), knownvalue.StringExact("5m")),
					plancheck.ExpectKnownValue("release_canary.standard", tfjsonpath.New("longest_duration"), knownvalue.StringExact("9m30s")),
					// What the schedule needs to catch the default must_catch.
					plancheck.ExpectKnownValue("release_canary.standard", tfjsonpath.New("requests_needed"), knownvalue.StringRegexp(regexp.MustCompile(
						`^about [0-9,]+ canary requests to catch 0\.30% against a 0\.1% baseline; about [0-9,]+ canary requests to catch 2\.00% against a 1\.0% baseline \(80% power over this schedule\)$`))),
				}},
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue("release_canary.standard", tfjsonpath.New("analysis").AtMapKey("errors").AtMapKey("label"), knownvalue.StringExact("type")),
					statecheck.ExpectKnownValue("release_canary.standard", tfjsonpath.New("baseline"), knownvalue.Bool(true)),
				},
			},
			{
				ResourceName:                         "release_canary.standard",
				ImportState:                          true,
				ImportStateVerify:                    true,
				ImportStateVerifyIdentifierAttribute: "id",
			},
			{
				// A change of the policy is an update, with the new schedule in the plan.
				Config: `
resource "release_canary" "standard" {
  steps    = [{ weight = 10, pause = "30s" }, { weight = 50, pause = "1m" }]
  baseline = false
}
`,
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction("release_canary.standard", plancheck.ResourceActionUpdate),
					plancheck.ExpectKnownValue("release_canary.standard", tfjsonpath.New("schedule"),
						knownvalue.StringExact("10% for 30s → 50% for 1m → 100% to the canary; analysed every 30s (at least 100 requests a side); 1m30s to 4m30s")),
				}},
			},
		},
	})
}

// Policies that cannot work are refused at plan time, on the attribute to fix.
func TestAccCanary_planErrors(t *testing.T) {
	step := func(config, pattern string) resource.TestStep {
		return resource.TestStep{Config: config, PlanOnly: true, ExpectError: expectDiag(pattern)}
	}
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProviders,
		Steps: []resource.TestStep{
			step(`resource "release_canary" "c" {
  steps = [{ weight = 25, pause = "1m" }, { weight = 10, pause = "1m" }]
}`, `(?s)Invalid Canary Policy.*steps\[1\].weight: weights must rise`),
			step(`resource "release_canary" "c" {
  steps = [{ weight = 80, pause = "1m" }]
}`, `(?s)Invalid Canary Policy.*with a baseline`),
			step(`resource "release_canary" "c" {
  steps = [{ weight = 10, pause = "10s" }]
}`, `(?s)shorter than the analysis interval`),
			step(`resource "release_canary" "c" {
  steps    = [{ weight = 10, pause = "1m" }]
  analysis = { queries = [{ name = "x", query = "up", max = 1 }] }
}`, `(?s)analysis.prometheus: queries and errors are read from Prometheus`),
			step(`resource "release_canary" "c" {
  steps    = [{ weight = 10, pause = "1m" }]
  analysis = {
    prometheus = { url = "http://127.0.0.1:19090" }
    queries    = [{ name = "x", query = "rate(x{track=\"{{.Trak}}\"}[1m])", max = 1 }]
  }
}`, `(?s)analysis.queries\[0\].query: the query names something a template cannot`),
			step(`resource "release_canary" "c" {
  steps = [{ weight = 10, pause = "soon" }]
}`, `(?s)Invalid Pause.*steps\[0\].pause must be a duration such as 30s or 2m, or "manual"`),
			step(`resource "release_canary" "c" {
  steps = [{ weight = 10, pause = "500ms" }]
}`, `(?s)Invalid Pause.*shorter than 1s`),
		},
	})
}
