package provider

import (
	"context"
	"time"

	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
	"github.com/hashicorp/terraform-plugin-framework/types/basetypes"

	"github.com/releasekit/terraform-provider-release/internal/canary"
	"github.com/releasekit/terraform-provider-release/internal/router"
)

var objectAsOptions = basetypes.ObjectAsOptions{UnhandledNullAsEmpty: true, UnhandledUnknownAsEmpty: true}

type durationValidator struct{ min time.Duration }

func (v durationValidator) Description(context.Context) string {
	return "a duration such as 500ms, 10s or 2m, at least " + v.min.String()
}
func (v durationValidator) MarkdownDescription(ctx context.Context) string { return v.Description(ctx) }
func (v durationValidator) ValidateString(_ context.Context, req validator.StringRequest, resp *validator.StringResponse) {
	if req.ConfigValue.IsNull() || req.ConfigValue.IsUnknown() {
		return
	}
	d, err := time.ParseDuration(req.ConfigValue.ValueString())
	if err != nil || d < v.min {
		resp.Diagnostics.AddAttributeError(req.Path, "Invalid Duration",
			req.Path.String()+" must be a duration such as 500ms, 10s or 2m, at least "+v.min.String()+"; got "+req.ConfigValue.String()+".")
	}
}

type healthPathValidator struct{}

func (healthPathValidator) Description(context.Context) string {
	return "an absolute URL path such as /healthz"
}
func (v healthPathValidator) MarkdownDescription(ctx context.Context) string {
	return v.Description(ctx)
}
func (healthPathValidator) ValidateString(_ context.Context, req validator.StringRequest, resp *validator.StringResponse) {
	if req.ConfigValue.IsNull() || req.ConfigValue.IsUnknown() {
		return
	}
	if err := router.ValidateHealthPath(req.ConfigValue.ValueString()); err != nil {
		resp.Diagnostics.AddAttributeError(req.Path, "Invalid Health Check Path", err.Error())
	}
}

// canaryIDValidator checks that a value is a release_canary id.
type canaryIDValidator struct{}

func (canaryIDValidator) Description(context.Context) string {
	return "a release_canary id, release_canary.<name>.id"
}
func (v canaryIDValidator) MarkdownDescription(ctx context.Context) string { return v.Description(ctx) }
func (canaryIDValidator) ValidateString(_ context.Context, req validator.StringRequest, resp *validator.StringResponse) {
	if req.ConfigValue.IsNull() || req.ConfigValue.IsUnknown() {
		return
	}
	if _, err := canary.Decode(req.ConfigValue.ValueString()); err != nil {
		resp.Diagnostics.AddAttributeError(req.Path, "Invalid Canary",
			"canary takes the id of a release_canary resource, such as release_canary.standard.id: "+err.Error()+".")
	}
}
