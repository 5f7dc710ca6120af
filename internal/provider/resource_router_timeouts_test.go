package provider

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
	"github.com/hashicorp/terraform-plugin-framework/types"
)

func TestRouterDurationValidator(t *testing.T) {
	ctx := context.Background()
	v := routerDurationValidator()
	for _, good := range []string{"1s", "30s", "5m", "1h", "24h"} {
		resp := &validator.StringResponse{}
		v.ValidateString(ctx, validator.StringRequest{Path: path.Root("hard_stop_after"), ConfigValue: types.StringValue(good)}, resp)
		if resp.Diagnostics.HasError() {
			t.Errorf("%s refused: %v", good, resp.Diagnostics)
		}
	}
	for _, bad := range []string{"500ms", "25h", "five minutes", "0s"} {
		resp := &validator.StringResponse{}
		v.ValidateString(ctx, validator.StringRequest{Path: path.Root("timeout_tunnel"), ConfigValue: types.StringValue(bad)}, resp)
		if !resp.Diagnostics.HasError() {
			t.Errorf("%s accepted", bad)
			continue
		}
		d := resp.Diagnostics[0]
		if want := `timeout_tunnel must be a duration from 1s to 24h, such as 30s, 5m or 1h; got "` + bad + `".`; d.Summary() != "Invalid Duration" || !strings.Contains(d.Detail(), want) {
			t.Errorf("%s: %q / %q, want detail %q", bad, d.Summary(), d.Detail(), want)
		}
	}
}

// The timeouts read back from the router keep the state's spelling when
// they mean the same, and take the router's when they differ (edited by hand).
func TestObservedDuration(t *testing.T) {
	for _, c := range []struct {
		state    types.String
		observed time.Duration
		want     string
	}{
		{types.StringValue("5m"), 5 * time.Minute, "5m"},
		{types.StringValue("300s"), 5 * time.Minute, "300s"},
		{types.StringValue("5m"), 10 * time.Second, "10s"},
		{types.StringValue("5m"), 0, "5m"},            // the base file could not be read
		{types.StringNull(), 0, defaultHardStopAfter}, // import of a router whose base file is lost
		{types.StringNull(), 90 * time.Minute, "90m"}, // import
		{types.StringNull(), 1500 * time.Millisecond, "1500ms"},
	} {
		if got := observedDuration(c.state, c.observed, defaultHardStopAfter).ValueString(); got != c.want {
			t.Errorf("observedDuration(%s, %s) = %q, want %q", c.state, c.observed, got, c.want)
		}
	}
}
