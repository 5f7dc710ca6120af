# An HAProxy router on the Docker host. Environments route through its listener ports.
resource "release_router" "edge" {
  name  = "edge"
  image = "haproxy:3.0"

  ports = [
    { internal = 80, external = 8080 },                          # production
    { internal = 81, external = 8081 },                          # staging
    { internal = 8404, external = 8404, host_ip = "127.0.0.1" }, # metrics for Prometheus
  ]

  # Long-lived connections (WebSockets, server-sent events): after a reload the previous
  # worker keeps its connections this long; no shorter than the environments' stop_timeout.
  hard_stop_after = "10m"
  timeout_tunnel  = "1h"
}
