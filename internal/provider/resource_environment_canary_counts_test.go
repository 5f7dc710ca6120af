package provider

import (
	"context"
	"fmt"
	"os"
	"regexp"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/terraform"

	"github.com/releasekit/terraform-provider-release/internal/loadgen"
	"github.com/releasekit/terraform-provider-release/internal/router"
)

// otherEnvironmentReloads is a second environment on the canary's router
// that switches back and forth between two releases (two server addresses:
// each switch rewrites its route file and reloads HAProxy), every period,
// as an apply of another state would, until stop is closed.
func (f *canaryFixture) otherEnvironmentReloads(stop <-chan struct{}, period time.Duration) (reloads func() int) {
	var mu sync.Mutex
	n := 0
	done := make(chan struct{})
	go func() {
		defer close(done)
		c := &router.Controller{Docker: f.engine}
		defer c.Close()
		id := f.routerID()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			case <-time.After(period):
			}
			route := router.Route{Environment: "other", Service: "web", ListenPort: 8181, HealthPath: "/healthz",
				Servers: []router.Server{{Name: "r1-1", Address: fmt.Sprintf("127.0.0.1:%d", 18001+i%2), Weight: 100}}}
			cfg, err := router.RenderRoute(route)
			if err == nil {
				err = c.Apply(context.Background(), id, map[string][]byte{route.FileName(): cfg})
			}
			if err != nil {
				f.t.Errorf("the other environment's switch %d: %v", i+1, err)
				return
			}
			mu.Lock()
			n++
			mu.Unlock()
		}
	}()
	return func() int {
		<-done
		mu.Lock()
		defer mu.Unlock()
		return n
	}
}

// A canary whose router another environment reloads at every look (and
// more) still counts every request the canary answered, and every 5xx: the
// report's last look shows exactly what the load generator got from the
// canary's version. The load stops halfway through the step, so the looks
// after it see no new request and the canary ends (inconclusive) with
// nothing served after its last look.
func TestAccEnvironmentCanary_countsSurviveOtherEnvironmentsReloads(t *testing.T) {
	f := newCanaryFixture(t)
	config := func(digest string) string {
		// Both versions fail 4% of requests: no check fails the canary while
		// the load runs, and the 5xx are counted too.
		return f.envFixture.config(digest, "canary = release_canary.c.id\n  env = { ERROR_RATE = \"0.04\" }") + fmt.Sprintf(`
resource "release_canary" "c" {
  steps = [{ weight = 50, pause = "27s" }]
  baseline = false
  analysis = {
    interval           = "3s"
    min_requests       = 20
    max_error_rate     = 0.5
    failure_limit      = 3
    inconclusive_limit = 1
  }
  report_path = %q
}
`, f.report)
	}
	stop := make(chan struct{})
	var reloads func() int
	var loadDone chan struct{}
	var canaryRequests, canaryErrors, loadRequests int
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProviders,
		CheckDestroy:             f.checkDestroyed,
		Steps: []resource.TestStep{
			{
				Config: config(f.v1), // serves 1.0.0, with its 4% of 5xx
			},
			{
				PreConfig: func() {
					f.startLoad()
					reloads = f.otherEnvironmentReloads(stop, 1200*time.Millisecond)
					loadDone = make(chan struct{})
					go func() {
						defer close(loadDone)
						// Half the step under load, then none.
						for deadline := time.Now().Add(2 * time.Minute); f.canaryShare() != 50 && time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
						}
						time.Sleep(12 * time.Second)
						for _, run := range []*loadgen.Run{f.load, f.loadNew} {
							s := run.Finish()
							loadRequests += s.Requests
							canaryRequests += s.ByVersion["2.0.0"] + s.AppErrors["2.0.0"]
							canaryErrors += s.AppErrors["2.0.0"]
							t.Logf("load: %s, app errors %v, failures %v", s, s.AppErrors, s.Failures)
						}
						f.load, f.loadNew = nil, nil
					}()
				},
				Config:      config(f.v2),
				ExpectError: regexp.MustCompile(`(?s)Canary Aborted.*inconclusive`),
			},
			{
				PreConfig: func() {
					close(stop)
					<-loadDone
				},
				Config: config(f.v1),
				Check: func(*terraform.State) error {
					b, err := os.ReadFile(f.report)
					if err != nil {
						return fmt.Errorf("report_path: %w", err)
					}
					rows := regexp.MustCompile(`\| 1 \| (\d+) \| request counts \| (\d+) requests, (\d+) 5xx \|[^\n]*\| (\w+) \| ([^|\n]*) \|`).FindAllSubmatch(b, -1)
					if len(rows) == 0 {
						return fmt.Errorf("the report has no request counts:\n%s", b)
					}
					last := rows[len(rows)-1]
					requests, _ := strconv.Atoi(string(last[2]))
					errors, _ := strconv.Atoi(string(last[3]))
					n := reloads()
					t.Logf("load generator: %d requests, %d to the canary (%d 5xx); report's last look (%s): %d requests, %d 5xx (%s: %s); the other environment reloaded the router %d times over %d looks",
						loadRequests, canaryRequests, canaryErrors, last[1], requests, errors, last[4], last[5], n, len(rows))
					if n < len(rows) {
						return fmt.Errorf("the other environment reloaded the router %d times, fewer than the canary's %d looks", n, len(rows))
					}
					if canaryErrors == 0 || canaryRequests < 200 {
						return fmt.Errorf("the load is not what the test needs: %d canary requests, %d 5xx", canaryRequests, canaryErrors)
					}
					if requests != canaryRequests || errors != canaryErrors || string(last[4]) != "pass" {
						return fmt.Errorf("the canary's counts: %d requests, %d 5xx (%s); the load generator got %d and %d from it", requests, errors, last[5], canaryRequests, canaryErrors)
					}
					return nil
				},
			},
		},
	})
}
