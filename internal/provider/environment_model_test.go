package provider

import (
	"context"
	"reflect"
	"testing"
	"time"

	"github.com/hashicorp/terraform-plugin-framework/attr"
	"github.com/hashicorp/terraform-plugin-framework/resource"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/defaults"
	"github.com/hashicorp/terraform-plugin-framework/tfsdk"
	"github.com/hashicorp/terraform-plugin-framework/types"
	"github.com/hashicorp/terraform-plugin-go/tftypes"

	"github.com/releasekit/terraform-provider-release/internal/rollout"
)

func TestHistoryValueRoundTrip(t *testing.T) {
	ctx := context.Background()
	at := time.Date(2026, 11, 28, 20, 24, 54, 0, time.UTC)
	in := []rollout.HistoryEntry{
		{Revision: 3, Digest: digest2, Image: "registry.example.com/shop/web@" + digest2, DeployedAt: at},
		{Revision: 1, Digest: digest1, Image: "registry.example.com/shop/web@" + digest1, DeployedAt: at.Add(-time.Hour)},
	}
	v := historyValue(in)
	if v.IsNull() || v.IsUnknown() {
		t.Fatalf("history is %s", v)
	}
	if !v.ElementType(ctx).Equal(historyEntryType) {
		t.Fatalf("element type %s, the schema says %s", v.ElementType(ctx), historyEntryType)
	}
	var out []historyEntryModel
	if d := v.ElementsAs(ctx, &out, false); d.HasError() {
		t.Fatal(d)
	}
	var back []rollout.HistoryEntry
	for _, e := range out {
		when, err := time.Parse(time.RFC3339, e.DeployedAt.ValueString())
		if err != nil {
			t.Fatalf("deployed_at %s: %v", e.DeployedAt, err)
		}
		back = append(back, rollout.HistoryEntry{Revision: int(e.Revision.ValueInt64()), Digest: e.Digest.ValueString(), Image: e.Image.ValueString(), DeployedAt: when})
	}
	if !reflect.DeepEqual(back, in) {
		t.Errorf("round trip:\n got %+v\nwant %+v", back, in)
	}

	// No history is an empty list, never null, so a plan can index it.
	if empty := historyValue(nil); empty.IsNull() || empty.IsUnknown() || len(empty.Elements()) != 0 {
		t.Errorf("historyValue(nil) = %s, want []", empty)
	}
}

func TestVerifiedValueRoundTrip(t *testing.T) {
	ctx := context.Background()
	st := rollout.Status{Digest: digest3, History: []rollout.HistoryEntry{
		{Revision: 4, Digest: digest2}, {Revision: 3, Digest: digest3}, {Revision: 2, Digest: ""}, {Revision: 1, Digest: digest1},
	}}
	v := verifiedValue("staging", "web", st)
	var m verifiedModel
	if d := v.As(ctx, &m, objectAsOptions); d.HasError() {
		t.Fatal(d)
	}
	var digests []string
	if d := m.Digests.ElementsAs(ctx, &digests, false); d.HasError() {
		t.Fatal(d)
	}
	if m.Environment.ValueString() != "staging" || m.Service.ValueString() != "web" || m.Serving.ValueString() != digest3 {
		t.Errorf("verified = %+v", m)
	}
	if want := st.Verified(); !reflect.DeepEqual(digests, want) {
		t.Errorf("digests = %v, want %v (the serving one first, each once)", digests, want)
	}

	// An environment that serves nothing yet has verified nothing: known and empty.
	v = verifiedValue("staging", "web", rollout.Status{})
	if d := v.As(ctx, &m, objectAsOptions); d.HasError() {
		t.Fatal(d)
	}
	if m.Serving.ValueString() != "" || m.Digests.IsNull() || m.Digests.IsUnknown() || len(m.Digests.Elements()) != 0 {
		t.Errorf("verified of an empty environment = %s", v)
	}
}

func TestPlannedVerified(t *testing.T) {
	plan := environmentModel{Name: types.StringValue("staging"), Service: types.StringValue("web"), Digest: types.StringValue(digest2)}
	v := plannedVerified(plan)
	attrs := v.Attributes()
	if !attrs["serving"].Equal(types.StringValue(digest2)) || !attrs["digests"].IsUnknown() {
		t.Errorf("plannedVerified = %s: want serving %s, digests known after apply", v, digest2)
	}
	plan.Digest = types.StringUnknown()
	if v := plannedVerified(plan); !v.IsUnknown() {
		t.Errorf("plannedVerified with an unknown digest = %s, want unknown", v)
	}
}

// An imported environment takes the schema's defaults for the settings the
// host's labels do not hold, so a configuration that leaves them out plans
// no change after the import.
func TestImportStateTakesSchemaDefaults(t *testing.T) {
	ctx := context.Background()
	r := &environmentResource{}
	var sr resource.SchemaResponse
	r.Schema(ctx, resource.SchemaRequest{}, &sr)
	resp := resource.ImportStateResponse{State: tfsdk.State{Schema: sr.Schema, Raw: tftypes.NewValue(sr.Schema.Type().TerraformType(ctx), nil)}}
	r.ImportState(ctx, resource.ImportStateRequest{ID: "production/web"}, &resp)
	if resp.Diagnostics.HasError() {
		t.Fatal(resp.Diagnostics)
	}
	var m environmentModel
	if d := resp.State.Get(ctx, &m); d.HasError() {
		t.Fatal(d)
	}
	if m.ID.ValueString() != "production/web" || m.Name.ValueString() != "production" || m.Service.ValueString() != "web" {
		t.Errorf("id, name, service = %s, %s, %s", m.ID, m.Name, m.Service)
	}
	imported := map[string]attr.Value{"port": m.Port, "listen_port": m.ListenPort, "history_limit": m.HistoryLimit, "stop_timeout": m.StopTimeout, "health_check": m.HealthCheck}
	for name, got := range imported {
		if want := schemaDefault(ctx, t, sr.Schema.Attributes[name]); !got.Equal(want) {
			t.Errorf("imported %s = %s, the schema's default is %s", name, got, want)
		}
	}
}

// schemaDefault is an attribute's Default value.
func schemaDefault(ctx context.Context, t *testing.T, a schema.Attribute) attr.Value {
	t.Helper()
	switch a := a.(type) {
	case schema.StringAttribute:
		var resp defaults.StringResponse
		a.Default.DefaultString(ctx, defaults.StringRequest{}, &resp)
		return resp.PlanValue
	case schema.Int64Attribute:
		var resp defaults.Int64Response
		a.Default.DefaultInt64(ctx, defaults.Int64Request{}, &resp)
		return resp.PlanValue
	case schema.BoolAttribute:
		var resp defaults.BoolResponse
		a.Default.DefaultBool(ctx, defaults.BoolRequest{}, &resp)
		return resp.PlanValue
	case schema.SingleNestedAttribute:
		var resp defaults.ObjectResponse
		a.Default.DefaultObject(ctx, defaults.ObjectRequest{}, &resp)
		return resp.PlanValue
	}
	t.Fatalf("no default for %T", a)
	return nil
}
