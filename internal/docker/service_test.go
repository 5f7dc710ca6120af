package docker

import (
	"net/netip"
	"testing"
	"time"

	"github.com/moby/moby/api/types/swarm"

	"github.com/releasekit/terraform-provider-release/internal/naming"
)

func TestServiceReplicas(t *testing.T) {
	u := func(n uint64) *uint64 { return &n }
	spec := func(replicas *uint64) swarm.ServiceSpec {
		return swarm.ServiceSpec{
			Annotations:  swarm.Annotations{Name: "prod-web-r2", Labels: map[string]string{naming.LabelRevision: "2", naming.LabelReplicas: "3"}},
			TaskTemplate: swarm.TaskSpec{ContainerSpec: &swarm.ContainerSpec{Image: "repo@sha256:ab", Args: []string{"serve"}, Env: []string{"A=1"}}, Networks: []swarm.NetworkAttachmentConfig{{Target: "net-id"}}},
			Mode:         swarm.ServiceMode{Replicated: &swarm.ReplicatedService{Replicas: replicas}},
		}
	}
	running := func(slot int, node, ip string) swarm.Task {
		return swarm.Task{Slot: slot, DesiredState: swarm.TaskStateRunning, NodeID: node, Status: swarm.TaskStatus{State: swarm.TaskStateRunning},
			NetworksAttachments: []swarm.NetworkAttachment{
				{Network: swarm.Network{Spec: swarm.NetworkSpec{Annotations: swarm.Annotations{Name: "ingress"}}}, Addresses: []netip.Prefix{netip.MustParsePrefix("10.0.0.5/24")}},
				{Network: swarm.Network{Spec: swarm.NetworkSpec{Annotations: swarm.Annotations{Name: "release-prod-web-swarm"}}}, Addresses: []netip.Prefix{netip.MustParsePrefix(ip + "/24")}},
			}}
	}
	starting := swarm.Task{Slot: 2, DesiredState: swarm.TaskStateRunning, NodeID: "n2", Status: swarm.TaskStatus{State: swarm.TaskStatePreparing}}
	shutdown := swarm.Task{Slot: 1, DesiredState: swarm.TaskStateShutdown, NodeID: "n3", Status: swarm.TaskStatus{State: swarm.TaskStateRunning}}
	created := time.Date(2026, 12, 5, 10, 0, 0, 0, time.UTC)
	updated := spec(u(3))
	for _, tc := range []struct {
		name   string
		svc    swarm.Service
		tasks  []swarm.Task
		states [3]string
		ips    [3]string
		nodes  [3]string
	}{
		{"never scaled up", swarm.Service{ID: "s1", Meta: swarm.Meta{CreatedAt: created}, Spec: spec(u(0))}, nil,
			[3]string{"created", "created", "created"}, [3]string{}, [3]string{}},
		{"scaled to 0", swarm.Service{ID: "s1", Spec: spec(u(0)), PreviousSpec: &updated}, []swarm.Task{shutdown},
			[3]string{"exited", "exited", "exited"}, [3]string{}, [3]string{}},
		{"every task runs, by slot", swarm.Service{ID: "s1", Spec: spec(u(3)), PreviousSpec: &updated},
			[]swarm.Task{running(3, "n3", "10.0.1.9"), shutdown, running(1, "n1", "10.0.1.7"), running(2, "n2", "10.0.1.8")},
			[3]string{"running", "running", "running"}, [3]string{"10.0.1.7", "10.0.1.8", "10.0.1.9"}, [3]string{"n1", "n2", "n3"}},
		{"one task starts again elsewhere", swarm.Service{ID: "s1", Spec: spec(u(3)), PreviousSpec: &updated},
			[]swarm.Task{running(1, "n1", "10.0.1.7"), starting, running(3, "n3", "10.0.1.9")},
			[3]string{"running", "running", "restarting"}, [3]string{"10.0.1.7", "10.0.1.9", ""}, [3]string{"n1", "n3", "n2"}},
		{"scaled to 1 by hand", swarm.Service{ID: "s1", Spec: spec(u(1)), PreviousSpec: &updated}, []swarm.Task{running(2, "n2", "10.0.1.8")},
			[3]string{"running", "exited", "exited"}, [3]string{"10.0.1.8", "", ""}, [3]string{"n2", "", ""}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cs := serviceReplicas(tc.svc, tc.tasks)
			if len(cs) != 3 {
				t.Fatalf("%d replicas, want the 3 of the label", len(cs))
			}
			for i, c := range cs {
				k := i + 1
				if c.ID != replicaID("s1", k) || !IsService(c.ID) || serviceID(c.ID) != "s1" || replicaOf(c.ID) != k {
					t.Errorf("replica %d: ID %q", k, c.ID)
				}
				if c.Name != naming.ReplicaName("prod-web-r2", k) || c.Labels[naming.LabelReplica] != string(rune('0'+k)) || c.Labels[naming.LabelRevision] != "2" {
					t.Errorf("replica %d: name %q, labels %v", k, c.Name, c.Labels)
				}
				if c.State != tc.states[i] || c.Running() != (tc.states[i] == "running") {
					t.Errorf("replica %d: state %q, want %q", k, c.State, tc.states[i])
				}
				if c.IPs["release-prod-web-swarm"] != tc.ips[i] || c.IPs["ingress"] != "" {
					t.Errorf("replica %d: addresses %v, want %q on the overlay and none on ingress", k, c.IPs, tc.ips[i])
				}
				if c.Task.Node != tc.nodes[i] || c.Task.Service != "prod-web-r2" {
					t.Errorf("replica %d: node %q of %q, want %q", k, c.Task.Node, c.Task.Service, tc.nodes[i])
				}
				if c.Image != "repo@sha256:ab" || len(c.Cmd) != 1 || c.Cmd[0] != "serve" || len(c.Env) != 1 {
					t.Errorf("replica %d: image %q, cmd %v, env %v", k, c.Image, c.Cmd, c.Env)
				}
			}
			cs[0].Labels["x"] = "y"
			if cs[1].Labels["x"] != "" || tc.svc.Spec.Labels["x"] != "" {
				t.Error("replicas share their labels' map")
			}
		})
	}
}
