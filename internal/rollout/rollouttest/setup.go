package rollouttest

import (
	"context"
	"time"

	"github.com/releasekit/terraform-provider-release/internal/rollout"
)

// Digests of the stable revision and of the canary.
const (
	StableDigest = "sha256:1111111111111111111111111111111111111111111111111111111111111111"
	CanaryDigest = "sha256:2222222222222222222222222222222222222222222222222222222222222222"
)

// RouterID is the router every Spec is served by.
const RouterID = "router-1"

// Spec is one replica of environment "production", service "web", at digest.
func Spec(digest string) rollout.Spec {
	return rollout.Spec{
		Environment: "production",
		Service:     "web",
		Image:       "registry.example/web@" + digest,
		Digest:      digest,
		Replicas:    1,
		Port:        8080,
		Health: rollout.Health{Path: "/healthz", Interval: 2 * time.Second, Timeout: time.Second,
			HealthyThreshold: 1, StartTimeout: time.Minute},
		Router:       rollout.RouterRef{Name: "edge", ContainerID: RouterID, ListenPort: 8080},
		HistoryLimit: 2,
		StopTimeout:  10 * time.Second,
	}
}

// Stage is a host, a router and a clock, with a deployer over them.
type Stage struct {
	Clock    *Clock
	Host     *Host
	Routes   *Routes
	Deployer *rollout.Deployer
}

// NewStage is an empty host and router.
func NewStage() *Stage {
	c := NewClock()
	s := &Stage{Clock: c, Host: NewHost(c), Routes: NewRoutes()}
	s.Deployer = &rollout.Deployer{Host: s.Host, Routes: s.Routes, Clock: c}
	return s
}

// WithStable is a stage whose environment serves StableDigest, released
// through the deployer (a first release: a hard switch).
func WithStable(ctx context.Context) (*Stage, error) {
	s := NewStage()
	if _, err := s.Deployer.Deploy(ctx, Spec(StableDigest)); err != nil {
		return nil, err
	}
	return s, nil
}
