package provider

import (
	"fmt"
	"strings"
	"testing"

	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
)

// Fault 08: a router's host_ip that is not an address ("localhost") was
// dropped without a word, publishing the listener on every address of the
// host; a metrics_port that an environment serves on split that port's
// requests between the metrics page and the environment. Both are refused:
// at plan, or at the environment's apply when the clash is only known then.
func TestAccFault08_routerHostIPAndMetricsPort(t *testing.T) {
	f := newEnvFixture(t)
	metricsPort := freePort(t)
	// The metrics port published as the docs show it: as one more of the router's ports.
	published := strings.Replace(f.config(f.v1, ""), "ports = [{ internal = 80, external = "+fmt.Sprint(f.port)+" }]",
		fmt.Sprintf("ports = [{ internal = 80, external = %d }, { internal = 8404, external = %d }]", f.port, metricsPort), 1)
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProviders,
		CheckDestroy:             f.checkDestroyed,
		Steps: []resource.TestStep{
			{
				Config:      strings.Replace(f.config(f.v1, ""), fmt.Sprintf("external = %d }", f.port), fmt.Sprintf("external = %d, host_ip = \"localhost\" }", f.port), 1),
				PlanOnly:    true,
				ExpectError: expectDiag(`(?s)Invalid Host Address.*ports\[0\]\.host_ip must be an IP address, such as 127\.0\.0\.1.*got "localhost".*write 127\.0\.0\.1 for localhost`),
			},
			{Config: published, Check: f.checkServes("1.0.0")},
			{
				Config:      strings.Replace(published, `ports = [`, "metrics_port = 80\n  ports = [", 1),
				PlanOnly:    true,
				ExpectError: expectDiag(`(?s)Metrics Port Clashes With Listener.*metrics_port 80 of router "` + f.router + `" is the listener port that serves environment ` + f.env + `/web.*Choose another metrics_port`),
			},
			{
				// The other way round: only the environment's apply knows the router's metrics port.
				Config:      strings.Replace(published, `router   = release_router.edge.id`, "router   = release_router.edge.id\n  listen_port = 8404", 1),
				ExpectError: expectDiag(`(?s)Listener Is The Metrics Port.*listen_port 8404 is the metrics_port of router "` + f.router + `"`),
			},
			{Config: published, Check: f.checkServes("1.0.0")},
		},
	})
}
