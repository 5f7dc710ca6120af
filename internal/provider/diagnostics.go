package provider

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/path"

	"github.com/releasekit/terraform-provider-release/internal/analysis"
	"github.com/releasekit/terraform-provider-release/internal/canary"
	"github.com/releasekit/terraform-provider-release/internal/registry"
	"github.com/releasekit/terraform-provider-release/internal/rollout"
	"github.com/releasekit/terraform-provider-release/internal/router"
)

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
			fmt.Sprintf("The registry %s did not answer. Check the host and port in the repository, that the registry is running, and that this machine can reach it.%s", re.Registry, said),
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

// addCanaryError reports a canary's abort or an interrupted canary; false
// when err is neither.
func addCanaryError(diags *diag.Diagnostics, spec rollout.Spec, p canary.Policy, err error) bool {
	var aborted *rollout.CanaryAbortedError
	var interrupted *rollout.InterruptedCanaryError
	var metrics *rollout.CanaryMetricsError
	switch {
	case errors.As(err, &metrics):
		diags.AddAttributeError(path.Root("canary"), "Canary Metrics Unavailable",
			fmt.Sprintf("The canary of %s/%s (%s) could not start: %v.\n\nNo traffic reached it, its containers were removed, and the state still holds the digest that served before. "+
				"Check the release_canary's analysis.prometheus (url, and that the variable password_env names is set where Terraform runs) and the router, then apply again.",
				spec.Environment, spec.Service, spec.Digest, metrics.Err))
		return true
	case errors.As(err, &aborted):
		var b strings.Builder
		fmt.Fprintf(&b, "The canary of %s/%s revision %d (%s) was aborted at step %d of %d (%d%% of traffic): %s.\n\n",
			spec.Environment, spec.Service, aborted.Revision, spec.Digest, aborted.Step, aborted.Steps, aborted.Weight, aborted.Why)
		fmt.Fprintf(&b, "Every user was back on revision %d %s after the decision; the canary and baseline containers were removed, and the state still holds the digest that served before.\n\n",
			aborted.StableRevision, aborted.RestoredIn.Round(time.Millisecond))
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
		b.WriteString("Fix the release and apply again (the next plan shows the same change), or revert the change of image.")
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
