package router

import "context"

// LiveServers is the backend as the running worker serves it, by server
// name: observed, not assumed from the files (a file can be written and not
// loaded, or loaded by a worker that a crash left behind). A backend the
// worker does not have is an empty map.
func (c *Controller) LiveServers(ctx context.Context, routerID string, metricsPort int, backend string) (map[string]ServerState, error) {
	return c.ServerStates(ctx, routerID, metricsPort, backend)
}

// LiveMatches says whether the running worker serves exactly the servers of
// a rendered route file (ParseRouteServers): the same names with the same
// weights, whatever their health. A route without servers, or no route at
// all (an empty file), matches a backend with no live servers.
func LiveMatches(route []byte, live map[string]ServerState) bool {
	want := map[string]Server{}
	for _, s := range ParseRouteServers(route) {
		want[s.Name] = s
	}
	for name, l := range live {
		s, ok := want[name]
		// A server in maintenance gets no request, whatever weight the
		// exporter reports: it keeps the weight the server had when it
		// entered maintenance (show servers state has the set one).
		switch {
		case !ok && l.Status != "MAINT":
			return false
		case ok && s.Drain && l.Status == "MAINT":
		case ok && l.Weight != s.Weight:
			return false
		}
		delete(want, name)
	}
	// A server the route dropped that still has connections stays in
	// maintenance with no weight until a later change deletes it.
	return len(want) == 0
}
