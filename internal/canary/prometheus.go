package canary

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"time"

	"github.com/prometheus/client_golang/api"
	v1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"github.com/prometheus/common/model"
)

// Querier runs instant queries. PrometheusClient is the real one; tests give their own.
type Querier interface {
	// Vector returns the value of each series the query returns, keyed by
	// the series' value of the label by. With by "" the query must return at
	// most one series (or a scalar), keyed by "".
	Vector(ctx context.Context, query, by string) (map[string]float64, error)
}

// Scalar runs a query that returns one value; ok is false when it returns none.
func Scalar(ctx context.Context, q Querier, query string) (value float64, ok bool, err error) {
	m, err := q.Vector(ctx, query, "")
	if err != nil {
		return 0, false, err
	}
	value, ok = m[""]
	return value, ok, nil
}

// QueryTimeout bounds each query, on the server and the way there.
const QueryTimeout = 10 * time.Second

// PrometheusClient queries one Prometheus server.
type PrometheusClient struct {
	api v1.API
	// where names the server in errors, without any password in its URL.
	where string
}

// NewPrometheus connects to the policy's server. The password is read from
// the environment now, so a missing one fails before the canary starts.
func NewPrometheus(p Prometheus) (*PrometheusClient, error) {
	u, err := url.Parse(p.URL)
	if err != nil {
		return nil, fmt.Errorf("the Prometheus URL: %w", err)
	}
	where := u.Redacted()
	var rt http.RoundTripper = api.DefaultRoundTripper
	if p.Username != "" || p.PasswordEnv != "" {
		var password string
		if p.PasswordEnv != "" {
			password = os.Getenv(p.PasswordEnv)
			if password == "" {
				return nil, fmt.Errorf("the Prometheus password for %s is read from the environment variable %s, which is not set or empty", where, p.PasswordEnv)
			}
		}
		rt = basicAuth{username: p.Username, password: password, next: rt}
	}
	c, err := api.NewClient(api.Config{Address: p.URL, RoundTripper: rt})
	if err != nil {
		return nil, fmt.Errorf("the Prometheus at %s: %w", where, err)
	}
	return &PrometheusClient{api: v1.NewAPI(c), where: where}, nil
}

type basicAuth struct {
	username, password string
	next               http.RoundTripper
}

func (b basicAuth) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context()) // a RoundTripper must not change the caller's request
	r.SetBasicAuth(b.username, b.password)
	return b.next.RoundTrip(r)
}

// Vector runs an instant query now.
func (c *PrometheusClient) Vector(ctx context.Context, query, by string) (map[string]float64, error) {
	ctx, cancel := context.WithTimeout(ctx, QueryTimeout)
	defer cancel()
	value, _, _, err := c.api.Query(ctx, query, time.Now(), v1.WithTimeout(QueryTimeout))
	if err != nil {
		return nil, fmt.Errorf("querying Prometheus at %s for %s: %w", c.where, query, err)
	}
	out, err := byLabel(value, by)
	if err != nil {
		return nil, fmt.Errorf("querying Prometheus at %s for %s: %w", c.where, query, err)
	}
	return out, nil
}

// Series returns every series of an instant vector query.
func (c *PrometheusClient) Series(ctx context.Context, query string) ([]Series, error) {
	ctx, cancel := context.WithTimeout(ctx, QueryTimeout)
	defer cancel()
	value, _, _, err := c.api.Query(ctx, query, time.Now(), v1.WithTimeout(QueryTimeout))
	if err != nil {
		return nil, fmt.Errorf("querying Prometheus at %s for %s: %w", c.where, query, err)
	}
	v, ok := value.(model.Vector)
	if !ok && value != nil {
		return nil, fmt.Errorf("querying Prometheus at %s for %s: the query returned a %s, not an instant vector", c.where, query, value.Type())
	}
	out := make([]Series, 0, len(v))
	for _, s := range v {
		labels := map[string]string{}
		for k, val := range s.Metric {
			labels[string(k)] = string(val)
		}
		out = append(out, Series{Labels: labels, Value: float64(s.Value)})
	}
	return out, nil
}

func byLabel(value model.Value, by string) (map[string]float64, error) {
	out := map[string]float64{}
	switch v := value.(type) {
	case *model.Scalar:
		out[""] = float64(v.Value)
		return out, nil
	case model.Vector:
		if by == "" && len(v) > 1 {
			return nil, fmt.Errorf("the query returned %d series where one was wanted; aggregate them, with sum(...) for example", len(v))
		}
		for _, s := range v {
			key := string(s.Metric[model.LabelName(by)])
			if _, dup := out[key]; dup {
				return nil, fmt.Errorf("two series have %s=%q; aggregate them with sum by (%s) (...)", by, key, by)
			}
			out[key] = float64(s.Value)
		}
		return out, nil
	case nil:
		return out, nil
	}
	return nil, errors.New("the query returned a " + value.Type().String() + ", not an instant vector or scalar")
}
