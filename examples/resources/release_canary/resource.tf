# A canary policy, reusable by every environment and module.
resource "release_canary" "standard" {
  steps = [
    { weight = 5, pause = "1m" },
    { weight = 25, pause = "2m" },
    { weight = 50, pause = "2m" },
  ]

  analysis = {
    interval       = "30s"
    min_requests   = 100  # below this a check is inconclusive, never a pass
    max_error_rate = 0.01 # from the router's per-server metrics: no app change needed
    max_latency    = "250ms"

    prometheus = { url = "http://prometheus:9090" }
    queries = [{
      name  = "signup_rate"
      query = "sum(rate(signups_total{service=\"{{.Service}}\",track=\"{{.Track}}\"}[{{.Interval}}]))"
      min   = 0.1
    }]
    # New error types and significant changes of known ones fail the canary.
    errors = { metric = "app_errors_total", label = "type" }
  }
}

output "canary_schedule" {
  value = release_canary.standard.schedule
}
