package provider

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/types"
	"github.com/hashicorp/terraform-plugin-testing/helper/resource"

	"github.com/releasekit/terraform-provider-release/internal/docker"
	"github.com/releasekit/terraform-provider-release/internal/naming"
	"github.com/releasekit/terraform-provider-release/internal/router"
)

func appContainer(env, service string) docker.Container {
	return docker.Container{Labels: map[string]string{
		naming.LabelManaged: "true", naming.LabelKind: string(naming.KindApp), naming.LabelEnvironment: env, naming.LabelService: service,
	}}
}

func TestCollidingEnvironment(t *testing.T) {
	managed := []docker.Container{appContainer("shop", "web-api"), appContainer("prod", "web")}
	if c, ok := collidingEnvironment(managed, "shop-web", "api"); !ok || c.Labels[naming.LabelEnvironment] != "shop" {
		t.Errorf("shop-web/api does not collide with shop/web-api: %v", ok)
	}
	for _, pair := range [][2]string{{"shop", "web-api"}, {"prod", "web"}, {"shop", "web"}, {"prod-we", "bb"}} {
		if _, ok := collidingEnvironment(managed, pair[0], pair[1]); ok {
			t.Errorf("%s/%s is said to collide", pair[0], pair[1])
		}
	}
	router := appContainer("shop-web", "api")
	router.Labels[naming.LabelKind] = string(naming.KindRouter)
	if _, ok := collidingEnvironment([]docker.Container{router}, "shop", "web-api"); ok {
		t.Error("a container that is not an application's collides")
	}
}

func TestListenerIsNotMetrics(t *testing.T) {
	var diags diag.Diagnostics
	if !checkListenerIsNotMetrics(&diags, "edge", 80, router.Spec{MetricsPort: 8404}) || diags.HasError() {
		t.Error("listener 80 with metrics on 8404 refused")
	}
	if checkListenerIsNotMetrics(&diags, "edge", 8404, router.Spec{MetricsPort: 8404}) || !diags.HasError() {
		t.Fatal("listener 8404 with metrics on 8404 allowed")
	}
	if got := diags[0].Detail(); !strings.Contains(got, "listen_port 8404 is the metrics_port of router \"edge\"") {
		t.Errorf("detail %q", got)
	}
}

// The existing environment is refused unless it is exactly what this
// configuration's interrupted create would have left.
func TestCheckNewEnvironment(t *testing.T) {
	ctx := context.Background()
	r := &environmentResource{data: &providerData{engine: docker.NewEngine(docker.NewConnector(docker.Config{Host: "unix:///nonexistent.sock"}))}}
	plan := environmentModel{
		Name: types.StringValue("prod"), Service: types.StringValue("web"),
		Image:    types.StringValue("127.0.0.1:5000/shop/web@sha256:" + strings.Repeat("a", 64)),
		Replicas: types.Int64Value(1), Port: types.Int64Value(8080), ListenPort: types.Int64Value(80),
		Env: types.MapNull(types.StringType), Command: types.ListNull(types.StringType),
		HealthCheck: defaultHealthCheck(), Router: types.StringValue("edge"), Network: types.StringValue("release-prod-web"),
		HistoryLimit: types.Int64Value(3), StopTimeout: types.StringValue("10s"),
	}
	spec, d := r.spec(ctx, plan)
	if d.HasError() {
		t.Fatal(d)
	}
	same := appContainer("prod", "web")
	same.Labels[naming.LabelDigest], same.Labels[naming.LabelConfigHash], same.Labels[naming.LabelRouter] = spec.Digest, spec.ConfigHash(), "edge"
	other := appContainer("prod", "web")
	other.Labels[naming.LabelDigest], other.Labels[naming.LabelImage] = "sha256:"+strings.Repeat("b", 64), "127.0.0.1:5000/shop/web@sha256:"+strings.Repeat("b", 64)

	for _, tc := range []struct {
		name    string
		managed []docker.Container
		atPlan  bool
		plan    func(environmentModel) environmentModel
		want    string
	}{
		{name: "free", managed: []docker.Container{appContainer("staging", "web")}},
		{name: "left by this create", managed: []docker.Container{same}},
		{name: "another environment", managed: []docker.Container{other}, want: "terraform import release_environment.<name> prod/web"},
		{name: "another environment at plan", managed: []docker.Container{other}, atPlan: true, want: "Environment Already Exists"},
		{name: "unknown image at plan", managed: []docker.Container{other}, atPlan: true,
			plan: func(m environmentModel) environmentModel { m.Image = types.StringUnknown(); return m }},
		{name: "colliding names", managed: []docker.Container{appContainer("prod", "web"), appContainer("prod-web", "api")}, atPlan: true,
			plan: func(m environmentModel) environmentModel { m.Service = types.StringValue("web-api"); return m },
			want: "Environment prod/web-api and environment prod-web/api on the host would share container and network names"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := plan
			if tc.plan != nil {
				p = tc.plan(p)
			}
			var diags diag.Diagnostics
			r.checkNewEnvironment(ctx, p, tc.managed, tc.atPlan, &diags)
			got := ""
			for _, d := range diags {
				got += d.Summary() + ": " + d.Detail()
			}
			if (tc.want == "") != (got == "") || !strings.Contains(got, tc.want) {
				t.Errorf("diagnostics %q, want %q", got, tc.want)
			}
		})
	}
}

// Fault 03b: creating an environment that another configuration created
// already took over its containers and route without a word. The plan
// refuses it and says how to import it.
func TestAccFault03b_environmentAlreadyExists(t *testing.T) {
	f := newEnvFixture(t)
	duplicate := fmt.Sprintf(`
resource "release_environment" "copy" {
  name    = %q
  service = "web"
  image   = "%s@%s"
  router  = release_router.edge.id
}
`, f.env, f.repo, f.v2)
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProviders,
		CheckDestroy:             f.checkDestroyed,
		Steps: []resource.TestStep{
			{Config: f.config(f.v1, ""), Check: f.checkServes("1.0.0")},
			{
				Config:   f.config(f.v1, "") + duplicate,
				PlanOnly: true,
				ExpectError: expectDiag(`(?s)Environment Already Exists.*The environment ` + f.env + `/web already exists on unix://.*runs ` +
					f.repo + `@` + f.v1 + `.*terraform import release_environment.<name> ` + f.env + `/web`),
			},
			{Config: f.config(f.v1, ""), Check: f.checkServes("1.0.0")},
		},
	})
}

// Fault 11: environment and service names are joined with a dash into
// container and network names, so shop/web-api and shop-web/api collided on
// the host. The second is refused at plan, naming both.
func TestAccFault11_ambiguousNames(t *testing.T) {
	f := newEnvFixture(t)
	first := strings.Replace(f.config(f.v1, ""), `service  = "web"`, `service  = "web-api"`, 1)
	second := fmt.Sprintf(`
resource "release_environment" "clash" {
  name        = "%s-web"
  service     = "api"
  image       = "%s@%s"
  router      = release_router.edge.id
}
`, f.env, f.repo, f.v2)
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProviders,
		CheckDestroy:             f.checkDestroyed,
		Steps: []resource.TestStep{
			{Config: first, Check: f.checkServes("1.0.0")},
			{
				Config:   first + second,
				PlanOnly: true,
				ExpectError: expectDiag(`(?s)Ambiguous Environment Names.*Environment ` + f.env + `-web/api and environment ` + f.env +
					`/web-api on the host would share container and network names.*release-` + f.env + `-web-api`),
			},
		},
	})
}
