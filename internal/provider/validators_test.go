package provider

import (
	"context"
	"testing"
	"time"

	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
	"github.com/hashicorp/terraform-plugin-framework/types"

	"github.com/releasekit/terraform-provider-release/internal/canary"
)

// The validators' descriptions and diagnostics, word for word: users and
// the acceptance tests read them.
func TestValidators(t *testing.T) {
	ctx := context.Background()
	cases := []struct {
		name        string
		v           validator.String
		attr        path.Path
		description string
		good, bad   string
		summary     string
		detail      string
	}{
		{
			name: "name", v: nameValidator(), attr: path.Root("service"),
			description: "1 to 32 lowercase letters, digits and dashes",
			good:        "web-1", bad: "Web",
			summary: "Invalid Name",
			detail: `service: "Web" is not a valid name: use 1 to 32 lowercase letters, digits and dashes, starting and ending with a letter or digit. ` +
				`Names become container, network and router configuration names, so nothing else is allowed.`,
		},
		{
			name: "docker host", v: dockerHostValidator(), attr: path.Root("docker_host"),
			description: "must be a unix://, tcp:// or ssh:// address",
			good:        "unix:///var/run/docker.sock", bad: "http://host",
			summary: "Invalid Docker Host",
			detail:  `docker_host is not a Docker Engine address: "http://host" has scheme "http"; use unix://, tcp:// or ssh://.`,
		},
		{
			name: "duration", v: durationValidator(100 * time.Millisecond), attr: path.Root("health_check").AtName("interval"),
			description: "a duration such as 500ms, 10s or 2m, at least 100ms",
			good:        "1s", bad: "50ms",
			summary: "Invalid Duration",
			detail:  `health_check.interval must be a duration such as 500ms, 10s or 2m, at least 100ms; got "50ms".`,
		},
		{
			name: "duration not parsed", v: durationValidator(0), attr: path.Root("stop_timeout"),
			description: "a duration such as 500ms, 10s or 2m, at least 0s",
			good:        "0s", bad: "ten seconds",
			summary: "Invalid Duration",
			detail:  `stop_timeout must be a duration such as 500ms, 10s or 2m, at least 0s; got "ten seconds".`,
		},
		{
			name: "health path", v: healthPathValidator(), attr: path.Root("health_check").AtName("path"),
			description: "an absolute URL path such as /healthz",
			good:        "/healthz", bad: "healthz",
			summary: "Invalid Health Check Path",
			detail:  `"healthz" must start with /`,
		},
		{
			name: "canary id", v: canaryIDValidator(), attr: path.Root("canary"),
			description: "a release_canary id, release_canary.<name>.id",
			good:        canaryIDForTest(), bad: "standard",
			summary: "Invalid Canary",
			detail:  "canary takes the id of a release_canary resource, such as release_canary.standard.id: not a release_canary id: use release_canary.<name>.id.",
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := c.v.Description(ctx); got != c.description {
				t.Errorf("Description = %q, want %q", got, c.description)
			}
			if got := c.v.MarkdownDescription(ctx); got != c.description {
				t.Errorf("MarkdownDescription = %q, want %q", got, c.description)
			}
			for _, ok := range []types.String{types.StringNull(), types.StringUnknown(), types.StringValue(c.good)} {
				var resp validator.StringResponse
				c.v.ValidateString(ctx, validator.StringRequest{Path: c.attr, ConfigValue: ok}, &resp)
				if resp.Diagnostics.HasError() {
					t.Errorf("%s: unexpected %v", ok, resp.Diagnostics)
				}
			}
			var resp validator.StringResponse
			c.v.ValidateString(ctx, validator.StringRequest{Path: c.attr, ConfigValue: types.StringValue(c.bad)}, &resp)
			if len(resp.Diagnostics) != 1 {
				t.Fatalf("%q: want one diagnostic, got %v", c.bad, resp.Diagnostics)
			}
			d := resp.Diagnostics[0]
			if d.Summary() != c.summary || d.Detail() != c.detail {
				t.Errorf("%q:\n got %q: %q\nwant %q: %q", c.bad, d.Summary(), d.Detail(), c.summary, c.detail)
			}
			if wp, ok := d.(interface{ Path() path.Path }); !ok || !wp.Path().Equal(c.attr) {
				t.Errorf("%q: diagnostic not on %s", c.bad, c.attr)
			}
		})
	}
}

func canaryIDForTest() string {
	return canary.Policy{
		Steps:       []canary.Step{{Weight: 10, Pause: canary.Duration(time.Minute)}},
		Analysis:    canary.Analysis{Interval: canary.Duration(30 * time.Second), MinRequests: 100, FailureLimit: 1, InconclusiveLimit: 3},
		Baseline:    true,
		OnInterrupt: "abort",
	}.ID()
}
