package rollout

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"sort"
	"time"

	"github.com/releasekit/terraform-provider-release/internal/canary"
	"github.com/releasekit/terraform-provider-release/internal/naming"
)

// Spec is what an environment should run.
type Spec struct {
	Environment string
	Service     string
	Image       string // repository@sha256:…
	Digest      string
	Replicas    int
	Port        int
	Env         map[string]string
	// SecretEnv are more variables (write-only in Terraform), which no
	// state holds: their version, not their values, is part of the
	// configuration hash, so a new version releases them.
	SecretEnv        map[string]string
	SecretEnvVersion int64
	Command          []string
	Health           Health
	Router           RouterRef
	HistoryLimit     int
	// StopTimeout is how long a stopping container may finish its requests.
	StopTimeout time.Duration
	// SharedNetwork, when set, is a network the containers join instead of
	// one of the environment's own (Docker's default address pools run out
	// at about 30 networks per host).
	SharedNetwork string
	// Swarm, when set, runs each replica as a Swarm service of one task on
	// the swarm the Docker host manages, instead of a container on it.
	Swarm *Swarm
	// Canary, when set, releases a new revision as a canary whenever a
	// stable revision serves (a first release is a hard switch).
	Canary *canary.Policy
	// Planned is the decision the plan showed (Decision.String); when set,
	// Deploy does nothing if the host now leads to another.
	Planned string
}

// Health is the gate a new container passes before it gets traffic.
type Health struct {
	Path             string
	Interval         time.Duration
	Timeout          time.Duration
	HealthyThreshold int
	// StartTimeout bounds the wait for a new container to become healthy.
	StartTimeout time.Duration
}

// Swarm is where Swarm may place an environment's tasks.
type Swarm struct {
	// Constraints are Swarm placement constraints ("node.role==worker").
	Constraints []string `json:",omitempty"`
}

// RouterRef names the router an environment is served by.
type RouterRef struct {
	Name        string
	ContainerID string
	ListenPort  int
	// MetricsPort is where the router's exporter answers, inside its container.
	MetricsPort int
}

// Network is the network the containers run on, which the router joins.
func (s Spec) Network() string {
	if s.SharedNetwork != "" {
		return s.SharedNetwork
	}
	if s.Swarm != nil {
		return naming.OverlayNetworkName(s.Environment, s.Service)
	}
	return naming.NetworkName(s.Environment, s.Service)
}

// ConfigHash identifies how containers are run, apart from their revision:
// containers with the same hash and digest can be reused for a rollback.
func (s Spec) ConfigHash() string {
	keys := make([]string, 0, len(s.Env))
	for k := range s.Env {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	env := make([][2]string, 0, len(keys))
	for _, k := range keys {
		env = append(env, [2]string{k, s.Env[k]})
	}
	b, _ := json.Marshal(struct {
		Image   string
		Port    int
		Env     [][2]string
		Command []string
		Health  Health
		Network string `json:",omitempty"`
		// Left out at 0: hashes from before it existed stay the same.
		SecretEnvVersion int64  `json:",omitempty"`
		Swarm            *Swarm `json:",omitempty"`
	}{s.Image, s.Port, env, s.Command, s.Health, s.SharedNetwork, s.SecretEnvVersion, s.Swarm})
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:8])
}
