package provider

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/path"

	"github.com/releasekit/terraform-provider-release/internal/canary"
	"github.com/releasekit/terraform-provider-release/internal/docker"
	"github.com/releasekit/terraform-provider-release/internal/rollout"
	"github.com/releasekit/terraform-provider-release/internal/router"
)

// wantDiag checks that diags holds exactly one error, with this title and
// detail, on attr (nil: on no attribute).
func wantDiag(t *testing.T, diags diag.Diagnostics, attr *path.Path, summary, detail string) {
	t.Helper()
	if len(diags) != 1 {
		t.Fatalf("want one diagnostic, got %v", diags)
	}
	d := diags[0]
	if d.Severity() != diag.SeverityError || d.Summary() != summary || d.Detail() != detail {
		t.Errorf("got %s %q:\n%q\nwant error %q:\n%q", d.Severity(), d.Summary(), d.Detail(), summary, detail)
	}
	wp, onAttr := d.(diag.DiagnosticWithPath)
	switch {
	case attr == nil && onAttr:
		t.Errorf("diagnostic on %s, want none", wp.Path())
	case attr != nil && (!onAttr || !wp.Path().Equal(*attr)):
		t.Errorf("diagnostic not on %s", attr)
	}
}

func testProviderData() *providerData {
	return &providerData{engine: docker.NewEngine(docker.NewConnector(docker.Config{Host: "tcp://docker.example.com:2376"}))}
}

func TestSwitchErrors(t *testing.T) {
	spec := rollout.Spec{Environment: "staging", Service: "web", Image: "registry.example.com/shop/web@" + digest2}
	image := path.Root("image")

	var diags diag.Diagnostics
	unhealthy := &rollout.UnhealthyError{Container: "release-staging-web-r3-1", Reason: "GET /healthz answered 500", Logs: "starting\nhealth_fail=true"}
	addSwitchError(&diags, testProviderData(), spec, canary.Policy{}, fmt.Errorf("switching: %w", unhealthy))
	wantDiag(t, diags, &image, "New Containers Not Healthy",
		"The switch of staging/web to registry.example.com/shop/web@"+digest2+" was stopped: container release-staging-web-r3-1 did not become healthy: GET /healthz answered 500. "+
			"Traffic was never moved: the environment still serves what it served before, and the new containers were removed.\n\n"+
			"Last log lines of release-staging-web-r3-1:\n  starting\n  health_fail=true")

	// A container that prints its configuration as it fails: env and env_wo values are masked.
	diags = nil
	secret := spec
	secret.Env = map[string]string{"REGION": "eu", "API_KEY": "k-123456", "STAGE": "production", "HEALTH": "fail"}
	secret.SecretEnv = map[string]string{"DATABASE_URL": "postgres://app:pw-998877@db/app", "DB_PASSWORD": "pw-998877"}
	addSwitchError(&diags, testProviderData(), secret, canary.Policy{}, &rollout.UnhealthyError{Container: "c", Reason: "connecting to postgres://app:pw-998877@db/app refused",
		Logs: "config: region=eu api_key=k-123456 stage=production health_fail=true\nDATABASE_URL=postgres://app:pw-998877@db/app\npassword pw-998877 refused"})
	detail := diags[0].Detail()
	for _, leaked := range []string{"k-123456", "pw-998877", "postgres://"} {
		if strings.Contains(detail, leaked) {
			t.Errorf("the diagnostic shows %q:\n%s", leaked, detail)
		}
	}
	if !strings.Contains(detail, "region=eu api_key=(sensitive value) stage=production health_fail=true") || !strings.Contains(detail, "DATABASE_URL=(sensitive value)") || !strings.Contains(detail, "password (sensitive value) refused") {
		t.Errorf("masked logs:\n%s", detail)
	}

	diags = nil
	addSwitchError(&diags, testProviderData(), spec, canary.Policy{}, &rollout.UnhealthyError{Container: "c", Reason: "r"})
	if d := diags[0].Detail(); d[len(d)-len("Last log lines of c:\n  (no output)"):] != "Last log lines of c:\n  (no output)" {
		t.Errorf("no logs: %q", d)
	}

	diags = nil
	addSwitchError(&diags, testProviderData(), spec, canary.Policy{}, errors.New("creating container: conflict"))
	wantDiag(t, diags, nil, "Switch Failed", "The operation on the Docker host tcp://docker.example.com:2376 failed.\n\nError: creating container: conflict")

	diags = nil
	addSwitchError(&diags, testProviderData(), spec, canary.Policy{}, &docker.UnreachableError{Host: "ssh://deploy:secret@host", Err: errors.New("EOF")})
	wantDiag(t, diags, nil, "Docker Daemon Unreachable",
		"The Docker daemon at ssh://deploy@host did not answer. Check that it runs and that docker_host (or DOCKER_HOST) points at it.\n\nError: EOF")
}

func TestRouterErrors(t *testing.T) {
	routerAttr, listenPort := path.Root("router"), path.Root("listen_port")

	var diags diag.Diagnostics
	addRouterNotRunningError(&diags, testProviderData(), "edge")
	wantDiag(t, diags, &routerAttr, "Router Not Running",
		`The router "edge" has no running container (release-router-edge) on tcp://docker.example.com:2376. Create or repair it first: terraform apply -target=release_router.<name>.`)

	diags = nil
	addNoSuchListenerError(&diags, "edge", 8080, router.Spec{Ports: []docker.Port{{Internal: 80}, {Internal: 443}}})
	wantDiag(t, diags, &listenPort, "Router Has No Such Listener",
		`The router "edge" publishes no listener on port 8080 inside its container. Add it to the router's ports, or set listen_port to one of 80, 443.`)

	diags = nil
	addNoSuchListenerError(&diags, "edge", 8080, router.Spec{})
	wantDiag(t, diags, &listenPort, "Router Has No Such Listener",
		`The router "edge" publishes no listener on port 8080 inside its container. Add it to the router's ports, or set listen_port to one of (none).`)

	diags = nil
	addListenerUsedError(&diags, "edge", 80, "production/web")
	wantDiag(t, diags, &listenPort, "Listener Already Used",
		`Port 80 of router "edge" already serves production/web. Give each environment's service its own listen_port.`)
}
