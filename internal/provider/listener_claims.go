package provider

import (
	"context"
	"sync"

	"github.com/releasekit/terraform-provider-release/internal/rollout"
	"github.com/releasekit/terraform-provider-release/internal/router"
)

// listenerClaims are the listeners that environments of this apply are
// taking on each router. A route is written only once its containers are
// healthy, so the router's files alone miss a claim another environment of
// the same apply made moments ago (two environments left at the default
// listen_port would both pass). Applies of other processes are kept out by
// the router's lease.
type listenerClaims struct {
	mu       sync.Mutex
	byRouter map[string]map[int]string // router container → port → environment/service
}

// claim takes spec's listener, unless a route on the router or another
// environment of this apply has it: then it returns that one's name.
func (c *listenerClaims) claim(ctx context.Context, routes *router.Controller, spec rollout.Spec) (string, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	owner := spec.Environment + "/" + spec.Service
	if holder, ok := c.byRouter[spec.Router.ContainerID][spec.Router.ListenPort]; ok && holder != owner {
		return holder, nil
	}
	files, err := routes.Files(ctx, spec.Router.ContainerID)
	if err != nil {
		return "", err
	}
	if other := router.ListenerOwner(files, spec.Router.ListenPort, router.RouteFileName(spec.Environment, spec.Service)); other != "" {
		return other, nil
	}
	if c.byRouter == nil {
		c.byRouter = map[string]map[int]string{}
	}
	if c.byRouter[spec.Router.ContainerID] == nil {
		c.byRouter[spec.Router.ContainerID] = map[int]string{}
	}
	c.byRouter[spec.Router.ContainerID][spec.Router.ListenPort] = owner
	return "", nil
}

// release gives a claim back (the environment's release failed before its route was written).
func (c *listenerClaims) release(spec rollout.Spec) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.byRouter[spec.Router.ContainerID][spec.Router.ListenPort] == spec.Environment+"/"+spec.Service {
		delete(c.byRouter[spec.Router.ContainerID], spec.Router.ListenPort)
	}
}
