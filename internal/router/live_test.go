package router

import (
	"context"
	"testing"
)

func TestLiveMatches(t *testing.T) {
	r := validRoute()
	r.Servers = []Server{
		{Name: "r1-1", Address: "10.0.0.5:80", Weight: 256, Track: "stable"},
		{Name: "r2-1", Address: "10.0.0.6:80", Weight: 13, Track: "canary"},
		{Name: "r2-2", Address: "10.0.0.7:80", Weight: 0, Track: "baseline"},
	}
	route := mustRenderRoute(t, r)
	live := func(mod func(map[string]ServerState)) map[string]ServerState {
		m := map[string]ServerState{
			"r1-1": {Status: "UP", CheckStatus: "L7OK", Weight: 256},
			"r2-1": {Status: "DOWN", CheckStatus: "L7STS", Weight: 13}, // health does not matter
			"r2-2": {Status: "UP", Weight: 0},
		}
		mod(m)
		return m
	}
	drained := r
	drained.Servers = append([]Server(nil), r.Servers...)
	drained.Servers[0].Weight, drained.Servers[0].Drain = 0, true
	drainedRoute := mustRenderRoute(t, drained)
	noServers := r
	noServers.Servers = nil
	for name, tc := range map[string]struct {
		route []byte
		live  map[string]ServerState
		want  bool
	}{
		"same servers and weights":     {route, live(func(map[string]ServerState) {}), true},
		"a weight differs":             {route, live(func(m map[string]ServerState) { m["r2-1"] = ServerState{Status: "UP", Weight: 26} }), false},
		"a server missing":             {route, live(func(m map[string]ServerState) { delete(m, "r2-2") }), false},
		"an extra live server":         {route, live(func(m map[string]ServerState) { m["r0-1"] = ServerState{Status: "UP", Weight: 100} }), false},
		"renamed":                      {route, live(func(m map[string]ServerState) { m["r3-1"] = m["r2-1"]; delete(m, "r2-1") }), false},
		"empty file, no live servers":  {nil, map[string]ServerState{}, true},
		"empty file, nil live":         {[]byte{}, nil, true},
		"empty file, live servers":     {nil, live(func(map[string]ServerState) {}), false},
		"route, backend not loaded":    {route, map[string]ServerState{}, false},
		"route without servers, none":  {mustRenderRoute(t, noServers), nil, true},
		"route without servers, stale": {mustRenderRoute(t, noServers), map[string]ServerState{"r1-1": {Status: "UP", Weight: 100}}, false},
		// HAProxy's exporter keeps the weight a server had when it entered
		// maintenance: a leftover of a removal is still not served.
		"a leftover in maintenance at its old weight": {route, live(func(m map[string]ServerState) { m["c0-1"] = ServerState{Status: "MAINT", Weight: 256} }), true},
		"a drained server at its old weight":          {drainedRoute, live(func(m map[string]ServerState) { m["r1-1"] = ServerState{Status: "MAINT", Weight: 256} }), true},
		"a drained server still up":                   {drainedRoute, live(func(m map[string]ServerState) { m["r1-1"] = ServerState{Status: "UP", Weight: 256} }), false},
	} {
		if got := LiveMatches(tc.route, tc.live); got != tc.want {
			t.Errorf("%s: LiveMatches = %v, want %v", name, got, tc.want)
		}
	}
}

func TestLiveMatchesRealExporter(t *testing.T) {
	// The route that was loaded when testdata/exporter-server-states.txt was captured.
	r := Route{Environment: "t", Service: "web", ListenPort: 8080, HealthPath: "/healthz", Servers: []Server{
		{Name: "ok-1", Address: "127.0.0.1:18080", Weight: 100},
		{Name: "closed-1", Address: "127.0.0.1:18081", Weight: 50},
		{Name: "bad-1", Address: "127.0.0.1:18082", Weight: 0},
		{Name: "slow-1", Address: "127.0.0.1:18083", Weight: 10},
		{Name: "new-1", Address: "127.0.0.1:18080", Weight: 7},
	}}
	c := &Controller{Docker: &execContainer{out: exporterStates(t)}}
	live, err := c.LiveServers(context.Background(), "router-1", 9101, BackendName("t", "web"))
	if err != nil {
		t.Fatal(err)
	}
	if !LiveMatches(mustRenderRoute(t, r), live) {
		t.Errorf("the loaded route does not match the live servers %+v", live)
	}
	r.Servers[1].Weight = 51
	if LiveMatches(mustRenderRoute(t, r), live) {
		t.Error("a route with another weight matches")
	}
	if !LiveMatches(nil, map[string]ServerState{}) {
		t.Error("no route and no backend do not match")
	}
}
