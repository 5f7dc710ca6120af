// The diagnostics the provider makes of errors from the domain packages and
// the Docker host, and of a host that cannot do what a switch needs: a title
// in Title Case, then what happened, what to do, and the underlying error.

package provider

import (
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/path"

	"github.com/releasekit/terraform-provider-release/internal/analysis"
	"github.com/releasekit/terraform-provider-release/internal/canary"
	"github.com/releasekit/terraform-provider-release/internal/docker"
	"github.com/releasekit/terraform-provider-release/internal/lease"
	"github.com/releasekit/terraform-provider-release/internal/migration"
	"github.com/releasekit/terraform-provider-release/internal/registry"
	"github.com/releasekit/terraform-provider-release/internal/rollout"
	"github.com/releasekit/terraform-provider-release/internal/router"
)

// addDockerError words a Docker failure; an unanswering daemon names the host.
func addDockerError(diags *diag.Diagnostics, d *providerData, summary string, err error) {
	var unreachable *docker.UnreachableError
	if errors.As(err, &unreachable) {
		diags.AddError("Docker Daemon Unreachable",
			"The Docker daemon at "+docker.HostForDisplay(unreachable.Host)+" did not answer. Check that it runs and that docker_host "+
				"(or DOCKER_HOST) points at it.\n\nError: "+unreachable.Err.Error())
		return
	}
	diags.AddError(summary, "The operation on the Docker host "+d.engine.Host()+" failed.\n\nError: "+err.Error())
}

// addRegistryError words a registry failure as a diagnostic that says what
// happened and what to do, on the attribute the user should look at.
func addRegistryError(diags *diag.Diagnostics, err error, severityWarning bool) {
	summary, detail, attr := registryDiagnostic(err)
	if severityWarning {
		diags.AddAttributeWarning(attr, summary, detail)
		return
	}
	diags.AddAttributeError(attr, summary, detail)
}

func registryDiagnostic(err error) (string, string, path.Path) {
	re, ok := err.(*registry.Error)
	if !ok {
		return "Registry Error", "The registry lookup failed: " + err.Error(), path.Root("repository")
	}
	repo := re.Registry + "/" + re.Repository
	said := "\n\nThe registry said: " + re.Message
	if re.Message == "" && re.Err != nil {
		said = "\n\nError: " + re.Err.Error()
	} else if re.Err != nil {
		said += ": " + re.Err.Error()
	}
	switch re.Kind {
	case registry.KindTagNotFound:
		return "Image Tag Not Found",
			fmt.Sprintf("The repository %s has no tag %q. Check the tag for a typo, or push the image first (docker push %s:%s).%s", repo, re.Reference, repo, re.Reference, said),
			path.Root("tag")
	case registry.KindRepositoryNotFound:
		return "Image Repository Not Found",
			fmt.Sprintf("The registry %s has no repository %q. Check the repository name and registry host, or push an image to it first.%s", re.Registry, re.Repository, said),
			path.Root("repository")
	case registry.KindDigestNotFound:
		return "Image Digest Not Found",
			fmt.Sprintf("The repository %s has no manifest with digest %s. Check the digest (copy it from `docker push` or from a release_image's digest); the image may have been deleted from the registry.%s", repo, re.Reference, said),
			path.Root("digest")
	case registry.KindUnauthorized:
		return "Registry Access Refused",
			fmt.Sprintf("The registry %s refused access to %s. Give the provider credentials that may pull from it: a registry_auth entry with address = %q, or `docker login %s` so that the Docker config.json holds them.%s", re.Registry, re.Repository, re.Registry, re.Registry, said),
			path.Root("repository")
	case registry.KindUnreachable:
		return "Registry Unreachable",
			fmt.Sprintf("The registry %s did not answer, or answered only with server errors. Check the host and port in the repository, that the registry is running, and that this machine can reach it.%s", re.Registry, said),
			path.Root("repository")
	case registry.KindRateLimited:
		return "Registry Rate Limit",
			fmt.Sprintf("The registry %s refused more requests for %s for now (HTTP 429), also after waiting as it asked.%s", re.Registry, repo, said),
			path.Root("repository")
	case registry.KindPlatformNotFound:
		return "Image Platform Not Found",
			fmt.Sprintf("%s (%s): %s. Set platform to one the image has, or remove platform to pin the whole index.", repo, re.Reference, re.Message),
			path.Root("platform")
	default:
		return "Unexpected Registry Response",
			fmt.Sprintf("The registry %s answered in a way the provider does not understand while resolving %s (%s).%s", re.Registry, repo, re.Reference, said),
			path.Root("repository")
	}
}

// addImageNotPinnedError reports an image that is not repository@sha256:….
func addImageNotPinnedError(diags *diag.Diagnostics, err error) {
	diags.AddAttributeError(path.Root("image"), "Image Not Pinned", err.Error())
}

// addRouterNotRunningError reports an environment's router that has no running container.
func addRouterNotRunningError(diags *diag.Diagnostics, d *providerData, name string) {
	diags.AddAttributeError(path.Root("router"), "Router Not Running",
		fmt.Sprintf("The router %q has no running container (%s) on %s. Create or repair it first: terraform apply -target=release_router.<name>.",
			name, router.ContainerName(name), d.engine.Host()))
}

// addNoSuchListenerError reports a listen_port the router does not publish.
func addNoSuchListenerError(diags *diag.Diagnostics, name string, port int, s router.Spec) {
	diags.AddAttributeError(path.Root("listen_port"), "Router Has No Such Listener",
		fmt.Sprintf("The router %q publishes no listener on port %d inside its container. Add it to the router's ports, or set listen_port to one of %s.",
			name, port, listenerList(s)))
}

// addListenerUsedError reports a listen_port that serves another environment's service.
func addListenerUsedError(diags *diag.Diagnostics, name string, port int, other string) {
	diags.AddAttributeError(path.Root("listen_port"), "Listener Already Used",
		fmt.Sprintf("Port %d of router %q already serves %s. Give each environment's service its own listen_port.", port, name, other))
}

// addInvalidCanaryError reports a canary that is not a release_canary id.
func addInvalidCanaryError(diags *diag.Diagnostics, err error) {
	diags.AddAttributeError(path.Root("canary"), "Invalid Canary", err.Error())
}

// addReportNotWrittenWarning reports a canary report that could not be written to report_path.
func addReportNotWrittenWarning(diags *diag.Diagnostics, reportPath string, err error) {
	diags.AddWarning("Canary Report Not Written", fmt.Sprintf("The canary's report could not be written to %s (report_path): %v.", reportPath, err))
}

// addSwitchError reports a failed switch or canary: what the canary decided,
// containers that never became healthy, else the Docker error.
func addSwitchError(diags *diag.Diagnostics, d *providerData, spec rollout.Spec, p canary.Policy, err error) {
	if addRolloutError(diags, spec, err) || addCanaryError(diags, spec, p, err) || addRouterSwitchError(diags, spec, err) {
		return
	}
	if addUnhealthyError(diags, spec, err) {
		return
	}
	addDockerError(diags, d, "Switch Failed", err)
}

// addUnhealthyError reports new containers that did not pass their health
// check, with their last log lines; false when err is not that.
func addUnhealthyError(diags *diag.Diagnostics, spec rollout.Spec, err error) bool {
	var unhealthy *rollout.UnhealthyError
	if !errors.As(err, &unhealthy) {
		return false
	}
	cleaned := "the new containers were removed"
	if unhealthy.Leftover != nil {
		cleaned = fmt.Sprintf("the new containers could not all be removed (%v); the next apply removes them", unhealthy.Leftover)
	}
	diags.AddAttributeError(path.Root("image"), "New Containers Not Healthy",
		maskEnv(spec, fmt.Sprintf("The switch of %s/%s to %s was stopped: %s. Traffic was never moved: the environment still serves what it served before, and %s.\n\nLast log lines of %s:\n%s",
			spec.Environment, spec.Service, spec.Image, unhealthy.Error(), cleaned, unhealthy.Container, indent(unhealthy.Logs))))
	return true
}

// maskEnv replaces the values of env_wo, and those of env that look like
// secrets, in a container's output (an application that prints its
// configuration as it fails) before it reaches a diagnostic, which a
// pipeline logs. Every env_wo value of 4 characters or more is masked; of
// env, values of 8 or more that are not one plain word (a key, a URL, a
// password, not "production" or "fail"): masking every setting would
// garble the log lines that say why a container failed.
func maskEnv(spec rollout.Spec, text string) string {
	var values []string
	for _, v := range spec.SecretEnv {
		if len(v) >= 4 {
			values = append(values, v)
		}
	}
	for _, v := range spec.Env {
		if len(v) >= 8 && !plainWord.MatchString(v) {
			values = append(values, v)
		}
	}
	// Longest first: a value that contains another is masked whole.
	sort.Slice(values, func(i, j int) bool { return len(values[i]) > len(values[j]) })
	for _, v := range values {
		text = strings.ReplaceAll(text, v, "(sensitive value)")
	}
	return text
}

var plainWord = regexp.MustCompile(`^[A-Za-z]+$`)

// addCanaryError reports a canary's abort or an interrupted canary; false
// when err is neither.
func addCanaryError(diags *diag.Diagnostics, spec rollout.Spec, p canary.Policy, err error) bool {
	var aborted *rollout.CanaryAbortedError
	var interrupted *rollout.InterruptedCanaryError
	var metrics *rollout.CanaryMetricsError
	switch {
	case errors.As(err, &metrics):
		cleaned := "its containers were removed"
		if metrics.Leftover != nil {
			cleaned = fmt.Sprintf("its containers could not all be removed (%v; the next apply removes them)", metrics.Leftover.Err)
		}
		diags.AddAttributeError(path.Root("canary"), "Canary Metrics Unavailable",
			fmt.Sprintf("The canary of %s/%s (%s) could not start: %v.\n\nNo traffic reached it, %s, and the state still holds the digest that served before. "+
				"Check the release_canary's analysis.prometheus (url, and that the variable password_env names is set where Terraform runs) and the router, then apply again.",
				spec.Environment, spec.Service, spec.Digest, metrics.Err, cleaned))
		return true
	case errors.As(err, &aborted):
		var b strings.Builder
		fmt.Fprintf(&b, "The canary of %s/%s revision %d (%s) was aborted at step %d of %d (%d%% of traffic): %s.\n\n",
			spec.Environment, spec.Service, aborted.Revision, spec.Digest, aborted.Step, aborted.Steps, aborted.Weight, aborted.Why)
		cleaned := "the canary and baseline containers were removed"
		if aborted.Leftover != nil {
			cleaned = fmt.Sprintf("the canary and baseline containers could not all be removed (%v; the next apply removes them)", aborted.Leftover.Err)
		}
		fmt.Fprintf(&b, "Every user was back on revision %d %s after the decision; %s, and the state still holds the digest that served before.\n\n",
			aborted.StableRevision, aborted.RestoredIn.Round(time.Millisecond), cleaned)
		if len(aborted.Last.Checks) > 0 {
			fmt.Fprintf(&b, "The deciding analysis (step %d, look %d):\n\n", aborted.Last.Step, aborted.Last.Look)
			b.WriteString(analysis.Report("Canary analysis", []analysis.Result{aborted.Last}))
			b.WriteString("\n")
		}
		if p.ReportPath != "" {
			fmt.Fprintf(&b, "Every analysis is in %s. ", p.ReportPath)
		} else {
			b.WriteString("Set report_path on the release_canary to keep every analysis as Markdown. ")
		}
		switch {
		case aborted.Why == rollout.AbortedByAction:
			b.WriteString("The release_canary_abort action stopped it. The configuration still asks for this image: the next apply starts the canary again; revert the change of image to stay on the stable revision.")
		case aborted.Underpowered:
			fmt.Fprintf(&b, "No check failed, but at this traffic the canary's test could not have caught analysis.must_catch: it needed about %d more canary requests. "+
				"Give the canary more traffic or time (longer steps), raise must_catch to the error rate this service's canaries can catch, or set "+
				"on_underpowered to \"extend\" or \"promote\"; then apply again.", aborted.RequestsNeeded)
		default:
			b.WriteString("Fix the release and apply again (the next plan shows the same change), or revert the change of image.")
		}
		diags.AddAttributeError(path.Root("image"), "Canary Aborted", b.String())
		return true
	case errors.As(err, &interrupted):
		diags.AddAttributeError(path.Root("canary"), "Interrupted Canary Aborted",
			fmt.Sprintf("An earlier apply was interrupted while revision %d of %s/%s was a canary with %d%% of traffic. As the canary's on_interrupt = \"abort\" asks, "+
				"the canary and its baseline were removed and every user is on revision %d again.\n\nApply again to start a new canary of %s, or set on_interrupt = \"resume\" to continue interrupted canaries instead.",
				interrupted.Revision, spec.Environment, spec.Service, interrupted.Weight, interrupted.StableRevision, spec.Digest))
		return true
	}
	return false
}

// addRolloutError reports a rollout that did not start: the host no longer
// matches the plan, or nothing can be done safely. False for other errors.
func addRolloutError(diags *diag.Diagnostics, spec rollout.Spec, err error) bool {
	var changed *rollout.PlanChangedError
	var blocked *rollout.BlockedError
	switch {
	case errors.As(err, &changed):
		diags.AddAttributeError(path.Root("rollout"), "Host Changed Since Plan",
			fmt.Sprintf("The plan showed rollout = %q for %s/%s, but the containers and route on the host now lead to %q: something changed them between plan and apply.\n\n"+
				"Nothing was changed. Run terraform plan again and review the new rollout before applying it.",
				changed.Planned, spec.Environment, spec.Service, changed.Now))
		return true
	case errors.As(err, &blocked):
		diags.AddAttributeError(path.Root("image"), "Rollout Blocked",
			fmt.Sprintf("%s/%s cannot be released safely: %s.", spec.Environment, spec.Service, blocked.Reason))
		return true
	}
	return false
}

// addNotVerifiedUpstreamError reports a promotion of a digest the upstream
// has not verified, naming what the upstream serves and has verified.
func addNotVerifiedUpstreamError(diags *diag.Diagnostics, downstream, digest, upstream, serving string, verified []string) {
	list := "nothing yet"
	if len(verified) > 0 {
		list = strings.Join(verified, ", ")
	}
	diags.AddAttributeError(path.Root("image"), "Digest Not Verified Upstream",
		fmt.Sprintf("%s would release %s, which %s has not verified.\n\n%s serves %s and has verified: %s.\n\n"+
			"Release this digest to %s first and let its rollout (and canary) complete, or set image to a verified digest.",
			downstream, digest, upstream, upstream, orNone(serving), list, upstream))
}

// addStillServingError reports a migration whose down command would drop
// the schema under an environment that still serves its release; false
// when err is not that.
func addStillServingError(diags *diag.Diagnostics, err error) bool {
	var serving *migration.ServingError
	if !errors.As(err, &serving) {
		return false
	}
	diags.AddError("Migration Still Needed",
		fmt.Sprintf("The down command of this migration was not run: environment %s/%s still serves %s, which was released with it, "+
			"and the schema must not be dropped under it. Nothing was changed.\n\n"+
			"Terraform destroyed the migration before switching the environment back, which it does when the migration lacks "+
			"lifecycle { create_before_destroy = true }. Add that block to every release_migration. To recover now, switch first "+
			"with terraform apply -target=release_environment.<name>, then apply again to run the down command.",
			serving.Environment, serving.Service, serving.Image))
	return true
}

// addMigrationRunError reports a migration command that failed, with its
// output (secrets redacted), else the Docker error; next says what to do.
func addMigrationRunError(diags *diag.Diagnostics, d *providerData, summary string, spec migration.Spec, err error, next string) {
	var failed *migration.FailedError
	if errors.As(err, &failed) {
		diags.AddError(summary, fmt.Sprintf("%s from %s. %s\n\nOutput (last %d lines):\n%s",
			failed.Error(), spec.Image, next, migration.OutputLines, indent(migration.Redact(failed.Output, spec.Env))))
		return
	}
	addDockerError(diags, d, summary, fmt.Errorf("%s", migration.Redact(err.Error(), spec.Env)))
}

func listenerList(s router.Spec) string {
	var ps []string
	for _, p := range s.Ports {
		ps = append(ps, fmt.Sprint(p.Internal))
	}
	if len(ps) == 0 {
		return "(none)"
	}
	return strings.Join(ps, ", ")
}

func indent(s string) string {
	if s == "" {
		return "  (no output)"
	}
	return "  " + strings.ReplaceAll(s, "\n", "\n  ")
}

func orNone(s string) string {
	if s == "" {
		return "nothing"
	}
	return s
}

// addRouterSwitchError reports a switch the router did not take: its own
// check of the new containers failed, or it did not confirm loading the
// new route. False for other errors.
func addRouterSwitchError(diags *diag.Diagnostics, spec rollout.Spec, err error) bool {
	var check *rollout.RouterCheckError
	var unconfirmed *router.ReloadUnconfirmedError
	switch {
	case errors.As(err, &check):
		diags.AddAttributeError(path.Root("health_check"), "New Containers Not Ready In The Router",
			fmt.Sprintf("The switch of %s/%s to %s was stopped: %v.\n\n"+
				"The containers passed their own health check, but the router's check did not pass. The router checks %s at each container's "+
				"network address every %s, allows %s for an answer and accepts any 2xx. Make the application answer that from its network "+
				"address (not only 127.0.0.1) within health_check.timeout, or raise health_check.timeout. The environment still serves what it served before.",
				spec.Environment, spec.Service, spec.Image, check.Err, spec.Health.Path, spec.Health.Interval, spec.Health.Timeout))
		return true
	case errors.As(err, &unconfirmed):
		diags.AddAttributeError(path.Root("image"), "Router Reload Not Confirmed",
			fmt.Sprintf("The router was told to load the new route of %s/%s but did not confirm it: %v.\n\n"+
				"It may serve the new containers or the previous ones, so both were left running and nothing was removed. "+
				"Run terraform plan: it shows what the router runs, and the next apply finishes or repairs the switch.",
				spec.Environment, spec.Service, unconfirmed.Err))
		return true
	}
	return false
}

// addMetricsPortServesEnvironmentError reports a router metrics_port that an
// environment serves on.
func addMetricsPortServesEnvironmentError(diags *diag.Diagnostics, routerName string, port int, environment string) {
	diags.AddAttributeError(path.Root("metrics_port"), "Metrics Port Clashes With Listener",
		fmt.Sprintf("metrics_port %d of router %q is the listener port that serves environment %s. HAProxy would bind both on it and split "+
			"that port's requests between the metrics page and the environment. Choose another metrics_port (8404 is the default), "+
			"or move the environment to another listen_port first.", port, routerName, environment))
}

// addListenerIsMetricsPortError reports an environment's listen_port that
// is its router's metrics port.
func addListenerIsMetricsPortError(diags *diag.Diagnostics, routerName string, port int) {
	diags.AddAttributeError(path.Root("listen_port"), "Listener Is The Metrics Port",
		fmt.Sprintf("listen_port %d is the metrics_port of router %q, where HAProxy serves /metrics and /healthz. Both would bind the port "+
			"and split its requests between them. Set listen_port to another of the router's listeners, or give the router another metrics_port.",
			port, routerName))
}

// addEnvironmentExistsError reports a release_environment to create that
// exists on the host already.
func addEnvironmentExistsError(diags *diag.Diagnostics, host, name, service, image string) {
	diags.AddAttributeError(path.Root("name"), "Environment Already Exists",
		fmt.Sprintf("The environment %s/%s already exists on %s (it runs %s), created by another configuration or state. Creating it here "+
			"would take over its containers and route. To manage it from this configuration, import it:\n\n"+
			"  terraform import release_environment.<name> %s/%s\n\nor choose another name or service.", name, service, host, orNone(image), name, service))
}

// addAmbiguousNamesError reports an environment whose generated container
// and network names are another environment's.
func addAmbiguousNamesError(diags *diag.Diagnostics, name, service, otherName, otherService string) {
	join := name + "-" + service
	diags.AddAttributeError(path.Root("service"), "Ambiguous Environment Names",
		fmt.Sprintf("Environment %s/%s and environment %s/%s on the host would share container and network names: both are named from %q "+
			"(network release-%s, containers %s-r<revision>-<n>). Rename the environment or the service of this one so that "+
			"<name>-<service> differs, for example without a dash in one of them.", name, service, otherName, otherService, join, join, join))
}

// addEnvironmentsNotOnHostWarning warns of a new migration's environments
// that no environment on the host has (yet).
func addEnvironmentsNotOnHostWarning(diags *diag.Diagnostics, host string, missing, onHost []string) {
	diags.AddAttributeWarning(path.Root("environments"), "Environment Not On Host",
		fmt.Sprintf("environments names %s, which no environment on %s has yet (environments there: %s). That is expected for an "+
			"environment created in this same apply, after the migration. If it is a typo, correct it now: the migration's down command "+
			"refuses to run while it names an environment that was never on the host.", strings.Join(missing, ", "), host, orNone(strings.Join(onHost, ", "))))
}

// addUnknownEnvironmentsError reports a migration's environments that name
// no environment on the host, nor one seen there before; then says what happened.
func addUnknownEnvironmentsError(diags *diag.Diagnostics, host string, missing, onHost []string, then string) {
	diags.AddAttributeError(path.Root("environments"), "Unknown Migration Environments",
		fmt.Sprintf("environments names %s, which is not an environment on %s and never was. A down checks only the environments named "+
			"here for one that still serves the migration's image, so a misspelt name would let it drop the schema under the environment "+
			"that was meant.\n\nEnvironments on the host: %s.\n\n%s", strings.Join(missing, ", "), host, orNone(strings.Join(onHost, ", ")), then))
}

// addRouterLeaseError reports a router another apply holds, or a lease this
// apply lost while it worked.
func addRouterLeaseError(diags *diag.Diagnostics, d *providerData, routerName string, err error) {
	var held *lease.HeldError
	var lost *lease.LostError
	switch {
	case errors.As(err, &held):
		diags.AddAttributeError(path.Root("router"), "Router Busy",
			fmt.Sprintf("Another apply is changing router %q: %v.\n\nNothing was changed. Wait for that apply to finish and apply again. "+
				"A lease whose apply was killed is taken over once it runs out (at the time above), or at once when its process is gone from this machine.",
				routerName, err))
	case errors.As(err, &lost):
		diags.AddAttributeError(path.Root("router"), "Router Lease Lost",
			fmt.Sprintf("This apply lost its lease on router %q while it worked: %v.\n\nAnother apply may have changed the router at the same time. "+
				"Run terraform plan to see what the host runs now, then apply again.", routerName, err))
	default:
		addDockerError(diags, d, "Cannot Take The Router's Lease", err)
	}
}

// addCanaryHeldWarning says an apply ended at a manual step on purpose.
func addCanaryHeldWarning(diags *diag.Diagnostics, spec rollout.Spec, held *rollout.HeldCanary) {
	diags.AddWarning("Canary Held At A Manual Step",
		fmt.Sprintf("The canary of %s/%s revision %d (%s) is held at step %d of %d with %d%% of traffic, as its manual step asks; revision %d serves the rest.\n\n"+
			"Apply again to continue from the next step (the plan shows \"continue the canary …\"), invoke the release_canary_promote action to have that apply promote it at once, "+
			"or revert the change of image to remove the canary.",
			spec.Environment, spec.Service, held.Revision, spec.Digest, held.Step, held.Steps, held.Weight, held.StableRevision))
}
