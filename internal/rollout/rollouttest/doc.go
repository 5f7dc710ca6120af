// Package rollouttest holds small in-memory fakes for driving the real
// rollout loop (rollout.Deployer) outside the rollout package: a Docker
// host, a router, a clock whose Sleep returns at once, and a traffic
// generator that turns a scenario (error rates, error types, latency,
// scrape timing, router reloads) into the canary samples the loop judges.
// They are lean on purpose: the simulation suite of the canary judgment
// (internal/analysis/simulation, build tag sim) runs tens of thousands of
// canaries through them.
package rollouttest
