# A canary policy, reusable by every environment and module:
# release_environment.canary_policy = release_canary.standard.policy
resource "release_canary" "standard" {
  steps = [
    { weight = 5, pause = "1m" },
    { weight = 25, pause = "2m" },
    { weight = 50, pause = "2m" }, # with a baseline, 50 is the highest weight
  ]

  analysis = {
    interval       = "30s"
    min_requests   = 100  # below this a check is inconclusive, never a pass
    max_error_rate = 0.01 # from the router's per-server metrics: no app change needed
    max_latency    = "250ms"

    # Read from where Terraform runs. Series carry the containers' labels as
    # environment, service, track, revision and digest (see prometheus.yml).
    prometheus = { url = "http://127.0.0.1:9090" }
    queries = [{
      name  = "signup_rate"
      query = "sum(rate(signups_total{environment=\"{{.Environment}}\",service=\"{{.Service}}\",track=\"{{.Track}}\"}[{{.Interval}}]))"
      min   = 0.1
    }]
    # New error types and significant changes of known ones fail the canary.
    errors = { metric = "app_errors_total", label = "type" }

    failure_limit      = 1 # failed analyses before the abort
    inconclusive_limit = 3 # extra analyses at the end of a step before "no data" aborts

    # Every check shares one false-alarm budget: at most 1% of canaries no
    # worse than their baseline are aborted, however many looks and checks.
    false_alarm_rate = 0.01
    # The 5xx rate each canary must be able to catch (80% power); unset, 3x
    # the baseline's rate or +1 point, whichever is smaller.
    must_catch      = 0.02
    on_underpowered = "abort" # or "extend" the step, or "promote" with a warning
  }

  baseline     = true               # fresh containers of the stable version, judged against
  on_interrupt = "abort"            # or "resume" a canary an interrupted apply left mid-way
  report_path  = "canary-report.md" # every analysis as Markdown, for a PR comment
}

output "canary_schedule" {
  value = release_canary.standard.schedule
}

# About how many canary requests the schedule needs to catch must_catch.
output "canary_requests_needed" {
  value = release_canary.standard.requests_needed
}

output "canary_policy" {
  value = release_canary.standard.policy
}
