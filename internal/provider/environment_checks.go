// Checks of a release_environment against what else is on the Docker host:
// an environment that exists already, names that another environment's
// generated names collide with, and a listener that is the router's
// metrics port. Each runs at plan when the host can be read, and again at
// apply, when every value is known.

package provider

import (
	"context"
	"fmt"
	"regexp"
	"strconv"

	"github.com/hashicorp/terraform-plugin-framework/attr"
	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/tfsdk"
	"github.com/hashicorp/terraform-plugin-framework/types"

	"github.com/releasekit/terraform-provider-release/internal/docker"
	"github.com/releasekit/terraform-provider-release/internal/naming"
	"github.com/releasekit/terraform-provider-release/internal/rollout"
	"github.com/releasekit/terraform-provider-release/internal/router"
)

// checkNewEnvironmentAtPlan refuses, at plan, the creation of an
// environment that exists on the host or whose names another one's
// collide with. A host that cannot be read is left to the create.
func (r *environmentResource) checkNewEnvironmentAtPlan(ctx context.Context, plan environmentModel, diags *diag.Diagnostics) {
	if r.data == nil || plan.Name.IsUnknown() || plan.Service.IsUnknown() {
		return
	}
	managed, err := r.data.snapshot.listing(ctx, r.data.engine)
	if err != nil {
		return
	}
	r.checkNewEnvironment(ctx, plan, managed, true, diags)
}

// checkNewEnvironmentAtCreate is the same check at create, on a fresh
// listing of the host; false when the create must not go on.
func (r *environmentResource) checkNewEnvironmentAtCreate(ctx context.Context, planned tfsdk.Plan, diags *diag.Diagnostics) bool {
	var plan environmentModel
	diags.Append(planned.Get(ctx, &plan)...)
	if diags.HasError() {
		return false
	}
	managed, err := rollout.ListManaged(ctx, r.data.engine)
	if err != nil {
		addDockerError(diags, r.data, "Cannot Create Environment", err)
		return false
	}
	r.checkNewEnvironment(ctx, plan, managed, false, diags)
	return !diags.HasError()
}

func (r *environmentResource) checkNewEnvironment(ctx context.Context, plan environmentModel, managed []docker.Container, atPlan bool, diags *diag.Diagnostics) {
	name, service := plan.Name.ValueString(), plan.Service.ValueString()
	if other, ok := collidingEnvironment(managed, name, service); ok {
		addAmbiguousNamesError(diags, name, service, other.Labels[naming.LabelEnvironment], other.Labels[naming.LabelService])
		return
	}
	var existing []docker.Container
	for _, c := range managed {
		if naming.KindApp.Is(c.Labels) && c.Labels[naming.LabelEnvironment] == name && c.Labels[naming.LabelService] == service {
			existing = append(existing, c)
		}
	}
	if len(existing) == 0 {
		return
	}
	known, same := r.leftByThisCreate(ctx, plan, existing)
	if same || (atPlan && !known) {
		return // adopted; or, with values unknown at plan, checked again at create
	}
	addEnvironmentExistsError(diags, r.data.engine.Host(), name, service, existing[0].Labels[naming.LabelImage])
}

// leftByThisCreate says whether the environment on the host is what an
// interrupted create of this very configuration leaves: every container
// runs the planned digest and configuration through the planned router.
// Creating it again adopts it (the rollout repairs or finishes it), so
// that a killed first apply converges. known is false while the plan
// holds unknown values that the comparison needs.
func (r *environmentResource) leftByThisCreate(ctx context.Context, plan environmentModel, existing []docker.Container) (known, same bool) {
	for _, v := range []attr.Value{plan.Image, plan.Replicas, plan.Port, plan.Env, plan.Command, plan.HealthCheck, plan.Router, plan.Network} {
		if tv, err := v.ToTerraformValue(ctx); err != nil || !tv.IsFullyKnown() {
			return false, false
		}
	}
	spec, d := r.spec(ctx, plan)
	if d.HasError() {
		return true, false
	}
	hash := spec.ConfigHash()
	for _, c := range existing {
		if c.Labels[naming.LabelDigest] != spec.Digest || c.Labels[naming.LabelConfigHash] != hash || c.Labels[naming.LabelRouter] != spec.Router.Name {
			return true, false
		}
	}
	return true, true
}

// collidingEnvironment finds an application container of another
// environment whose generated names are this one's: container and network
// names join environment and service with a dash, so shop-web/api and
// shop/web-api would share release-shop-web-api and shop-web-api-r1-1.
func collidingEnvironment(managed []docker.Container, name, service string) (docker.Container, bool) {
	join := name + "-" + service
	for _, c := range managed {
		env, svc := c.Labels[naming.LabelEnvironment], c.Labels[naming.LabelService]
		if !naming.KindApp.Is(c.Labels) || (env == name && svc == service) {
			continue
		}
		if env+"-"+svc == join {
			return c, true
		}
	}
	return docker.Container{}, false
}

// checkListenerIsNotMetrics refuses a listen_port that is the router's
// metrics port; false when the apply must not go on.
func checkListenerIsNotMetrics(diags *diag.Diagnostics, routerName string, listenPort int, s router.Spec) bool {
	if s.MetricsPort == 0 || listenPort != s.MetricsPort {
		return true
	}
	addListenerIsMetricsPortError(diags, routerName, listenPort)
	return false
}

// swarmConstraintPattern is Swarm's constraint syntax, checked at plan: a
// node attribute, an operator and a value.
var swarmConstraintPattern = regexp.MustCompile(`^\s*(node|engine)\.[A-Za-z0-9_.-]+\s*(==|!=)\s*\S+\s*$`)

// checkSwarmAtPlan refuses, at plan, a swarm block for a Docker host that
// manages no swarm: every service call there would fail mid-apply.
func (r *environmentResource) checkSwarmAtPlan(ctx context.Context, plan environmentModel, diags *diag.Diagnostics) {
	checkSwarmManager(ctx, r.data, plan.Swarm, "remove `swarm` to run containers on this host", diags)
}

// checkSwarmManager is the check for any resource's swarm attribute.
func checkSwarmManager(ctx context.Context, data *providerData, swarmAttr types.Object, otherwise string, diags *diag.Diagnostics) {
	if data == nil || swarmAttr.IsNull() || swarmAttr.IsUnknown() {
		return
	}
	manager, err := data.engine.SwarmManager(ctx)
	if err != nil || manager {
		return // an unreachable host is reported where it is used
	}
	diags.AddAttributeError(path.Root("swarm"), "Docker Host Is Not a Swarm Manager",
		fmt.Sprintf("`swarm` is set, but the Docker host %s is not a manager of a swarm. "+
			"Run `docker swarm init` (or `docker swarm join` as a manager) there, point the provider's docker_host at a manager, "+
			"or %s.", data.engine.Host(), otherwise))
}

// servesServices says whether the serving revision runs as Swarm services.
func servesServices(st rollout.Status) bool {
	for _, c := range st.Containers {
		if c.Labels[naming.LabelRevision] == strconv.Itoa(st.Revision) && docker.IsService(c.ID) {
			return true
		}
	}
	return false
}
