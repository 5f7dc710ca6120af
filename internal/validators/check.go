package validators

import (
	"context"

	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
	"github.com/hashicorp/terraform-plugin-framework/types"
)

// StringCheck is a string validator built from a check. Null and unknown
// values are skipped (they are checked once known); a value check refuses is
// an error on the attribute, titled summary, whose detail is what detail
// makes of it, or the check's error when detail is nil. description says
// what a valid value is.
func StringCheck(description, summary string, check func(string) error, detail func(attr path.Path, value types.String, err error) string) validator.String {
	return stringCheck{description, summary, check, detail}
}

type stringCheck struct {
	description, summary string
	check                func(string) error
	detail               func(path.Path, types.String, error) string
}

func (v stringCheck) Description(context.Context) string         { return v.description }
func (v stringCheck) MarkdownDescription(context.Context) string { return v.description }

func (v stringCheck) ValidateString(_ context.Context, req validator.StringRequest, resp *validator.StringResponse) {
	if req.ConfigValue.IsNull() || req.ConfigValue.IsUnknown() {
		return
	}
	err := v.check(req.ConfigValue.ValueString())
	if err == nil {
		return
	}
	detail := err.Error()
	if v.detail != nil {
		detail = v.detail(req.Path, req.ConfigValue, err)
	}
	resp.Diagnostics.AddAttributeError(req.Path, v.summary, detail)
}
