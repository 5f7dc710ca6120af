package docker

import (
	"net/netip"
	"testing"
	"time"

	"github.com/moby/moby/api/types/swarm"
)

func TestServiceContainerStates(t *testing.T) {
	one, zero := uint64(1), uint64(0)
	spec := func(replicas *uint64) swarm.ServiceSpec {
		return swarm.ServiceSpec{
			Annotations:  swarm.Annotations{Name: "prod-web-r2-1", Labels: map[string]string{"release.revision": "2"}},
			TaskTemplate: swarm.TaskSpec{ContainerSpec: &swarm.ContainerSpec{Image: "repo@sha256:ab", Args: []string{"serve"}, Env: []string{"A=1"}}, Networks: []swarm.NetworkAttachmentConfig{{Target: "net-id"}}},
			Mode:         swarm.ServiceMode{Replicated: &swarm.ReplicatedService{Replicas: replicas}},
		}
	}
	running := swarm.Task{DesiredState: swarm.TaskStateRunning, NodeID: "n1", Status: swarm.TaskStatus{State: swarm.TaskStateRunning},
		NetworksAttachments: []swarm.NetworkAttachment{
			{Network: swarm.Network{Spec: swarm.NetworkSpec{Annotations: swarm.Annotations{Name: "ingress"}}}, Addresses: []netip.Prefix{netip.MustParsePrefix("10.0.0.5/24")}},
			{Network: swarm.Network{Spec: swarm.NetworkSpec{Annotations: swarm.Annotations{Name: "release-prod-web-swarm"}}}, Addresses: []netip.Prefix{netip.MustParsePrefix("10.0.1.7/24")}},
		}}
	starting := swarm.Task{DesiredState: swarm.TaskStateRunning, NodeID: "n2", Status: swarm.TaskStatus{State: swarm.TaskStatePreparing}}
	shutdown := swarm.Task{DesiredState: swarm.TaskStateShutdown, NodeID: "n3", Status: swarm.TaskStatus{State: swarm.TaskStateRunning}}
	created := time.Date(2026, 12, 5, 10, 0, 0, 0, time.UTC)
	updated := spec(&one)
	for _, tc := range []struct {
		name      string
		svc       swarm.Service
		tasks     []swarm.Task
		state, ip string
		node      string
	}{
		{"never scaled up", swarm.Service{ID: "s1", Meta: swarm.Meta{CreatedAt: created}, Spec: spec(&zero)}, nil, "created", "", ""},
		{"scaled to 0", swarm.Service{ID: "s1", Spec: spec(&zero), PreviousSpec: &updated}, []swarm.Task{shutdown}, "exited", "", ""},
		{"its task runs", swarm.Service{ID: "s1", Spec: spec(&one), PreviousSpec: &updated}, []swarm.Task{shutdown, running}, "running", "10.0.1.7", "n1"},
		{"its task starts", swarm.Service{ID: "s1", Spec: spec(&one), PreviousSpec: &updated}, []swarm.Task{starting}, "restarting", "", "n2"},
		{"no task anywhere (a node gone)", swarm.Service{ID: "s1", Spec: spec(&one), PreviousSpec: &updated}, nil, "restarting", "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := serviceContainer(tc.svc, tc.tasks)
			if c.ID != ServiceIDPrefix+"s1" || !IsService(c.ID) || c.Name != "prod-web-r2-1" || c.Labels["release.revision"] != "2" {
				t.Errorf("identity: %+v", c)
			}
			if c.State != tc.state || c.Running() != (tc.state == "running") {
				t.Errorf("state %q, want %q", c.State, tc.state)
			}
			if c.IPs["release-prod-web-swarm"] != tc.ip || c.IPs["ingress"] != "" {
				t.Errorf("addresses %v, want %q on the overlay and none on ingress", c.IPs, tc.ip)
			}
			if c.Task.Node != tc.node {
				t.Errorf("node %q, want %q", c.Task.Node, tc.node)
			}
			if c.Image != "repo@sha256:ab" || len(c.Cmd) != 1 || c.Cmd[0] != "serve" || len(c.Env) != 1 {
				t.Errorf("configuration: image %q, cmd %v, env %v", c.Image, c.Cmd, c.Env)
			}
		})
	}
}
