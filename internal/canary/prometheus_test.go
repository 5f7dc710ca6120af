package canary

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
)

// fakePrometheus answers /api/v1/query from a table of query to result JSON.
func fakePrometheus(t *testing.T, user, password string, results map[string]string) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if u, p, ok := r.BasicAuth(); user != "" && (!ok || u != user || p != password) {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		if err := r.ParseForm(); err != nil || r.URL.Path != "/api/v1/query" {
			http.NotFound(w, r)
			return
		}
		data, ok := results[r.Form.Get("query")]
		if !ok {
			w.WriteHeader(http.StatusBadRequest)
			fmt.Fprint(w, `{"status":"error","errorType":"bad_data","error":"parse error"}`)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"status":"success","data":%s}`, data)
	}))
	t.Cleanup(srv.Close)
	return srv
}

func TestPrometheusClient(t *testing.T) {
	srv := fakePrometheus(t, "", "", map[string]string{
		"by_type":  `{"resultType":"vector","result":[{"metric":{"type":"timeout"},"value":[1700000000,"3"]},{"metric":{"type":"panic"},"value":[1700000000,"2"]}]}`,
		"one":      `{"resultType":"vector","result":[{"metric":{},"value":[1700000000,"0.25"]}]}`,
		"none":     `{"resultType":"vector","result":[]}`,
		"scalar":   `{"resultType":"scalar","result":[1700000000,"7"]}`,
		"two":      `{"resultType":"vector","result":[{"metric":{"a":"1"},"value":[1700000000,"1"]},{"metric":{"a":"2"},"value":[1700000000,"2"]}]}`,
		"same_key": `{"resultType":"vector","result":[{"metric":{"type":"x","pod":"1"},"value":[1700000000,"1"]},{"metric":{"type":"x","pod":"2"},"value":[1700000000,"2"]}]}`,
		"matrix":   `{"resultType":"matrix","result":[{"metric":{},"values":[[1700000000,"1"]]}]}`,
	})
	c, err := NewPrometheus(Prometheus{URL: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	got, err := c.Vector(ctx, "by_type", "type")
	if err != nil || !reflect.DeepEqual(got, map[string]float64{"timeout": 3, "panic": 2}) {
		t.Errorf("by type: %v, %v", got, err)
	}
	for query, want := range map[string]float64{"one": 0.25, "scalar": 7} {
		if v, ok, err := Scalar(ctx, c, query); err != nil || !ok || v != want {
			t.Errorf("%s: %v, %v, %v; want %v", query, v, ok, err, want)
		}
	}
	if v, ok, err := Scalar(ctx, c, "none"); err != nil || ok {
		t.Errorf("an empty result: %v, %v, %v; want no value and no error", v, ok, err)
	}
	for _, query := range []string{"two", "matrix", "unknown"} {
		_, _, err := Scalar(ctx, c, query)
		if err == nil || !strings.Contains(err.Error(), srv.URL) || !strings.Contains(err.Error(), query) {
			t.Errorf("%s: error %v, want one naming the server and the query", query, err)
		}
	}
	if _, err := c.Vector(ctx, "same_key", "type"); err == nil {
		t.Error("two series with the same type were not an error")
	}
}

func TestPrometheusBasicAuth(t *testing.T) {
	srv := fakePrometheus(t, "canary", "s3cret", map[string]string{"up": `{"resultType":"scalar","result":[1700000000,"1"]}`})
	ctx := context.Background()

	_, err := NewPrometheus(Prometheus{URL: srv.URL, Username: "canary", PasswordEnv: "RELEASE_TEST_PROMETHEUS_PASSWORD"})
	if err == nil || !strings.Contains(err.Error(), "RELEASE_TEST_PROMETHEUS_PASSWORD") {
		t.Fatalf("an unset password: %v, want an error naming the variable", err)
	}
	t.Setenv("RELEASE_TEST_PROMETHEUS_PASSWORD", "s3cret")
	c, err := NewPrometheus(Prometheus{URL: srv.URL, Username: "canary", PasswordEnv: "RELEASE_TEST_PROMETHEUS_PASSWORD"})
	if err != nil {
		t.Fatal(err)
	}
	if v, ok, err := Scalar(ctx, c, "up"); err != nil || !ok || v != 1 {
		t.Errorf("with the password: %v, %v, %v", v, ok, err)
	}
	t.Setenv("RELEASE_TEST_PROMETHEUS_PASSWORD", "wrong")
	c, _ = NewPrometheus(Prometheus{URL: srv.URL, Username: "canary", PasswordEnv: "RELEASE_TEST_PROMETHEUS_PASSWORD"})
	_, _, err = Scalar(ctx, c, "up")
	if err == nil || strings.Contains(err.Error(), "wrong") {
		t.Errorf("a wrong password: %v, want an error that does not show the password", err)
	}
}
