# Staging and production of one service, on one router. Every new digest goes
# through a canary in staging; production takes only a digest that staging
# has verified, and goes through the same canary there.

variable "database_url" {
  type      = string
  sensitive = true
}

resource "release_image" "web_v2" {
  repository = "registry.example.com/shop/web"
  tag        = "2.0.0"
}

resource "release_image" "web_v3" {
  repository = "registry.example.com/shop/web"
  tag        = "3.0.0"
}

resource "release_router" "edge" {
  name  = "edge"
  image = "haproxy:3.0"
  ports = [
    { internal = 80, external = 8080 }, # production
    { internal = 81, external = 8081 }, # staging
  ]
}

resource "release_canary" "standard" {
  steps = [
    { weight = 10, pause = "1m" },
    { weight = 25, pause = "2m" },
    { weight = 50, pause = "2m" },
  ]
  analysis = {
    interval       = "30s"
    min_requests   = 100
    max_error_rate = 0.01
  }
  report_path = "canary-report.md" # Markdown for a pull-request comment
}

# staging/web runs 3.0.0 first.
resource "release_environment" "staging" {
  name          = "staging"
  service       = "web"
  image         = release_image.web_v3.ref # a tag here is a plan-time error
  listen_port   = 81
  router        = release_router.edge.id
  canary_policy = release_canary.standard.policy
}

# production/web serves the pinned digest of 2.0.0 on port 8080 of the host.
# Promoting 3.0.0 is changing image to release_image.web_v3.ref once staging
# has verified it; reverting that change is the rollback.
resource "release_environment" "production" {
  name          = "production"
  service       = "web"
  image         = release_image.web_v2.ref
  replicas      = 2
  port          = 8080 # the application's port in its container
  listen_port   = 80   # the router's listener
  router        = release_router.edge.id
  canary_policy = release_canary.standard.policy
  promote_from  = release_environment.staging.verified # the promotion gate

  env = {
    LOG_LEVEL = "info" # sensitive: plans show (sensitive value)
  }
  # Secrets: never in a plan or the state (Terraform 1.11+). Raise the
  # version to release new values; Terraform keeps no copy to compare.
  env_wo         = { DATABASE_URL = var.database_url }
  env_wo_version = 1

  health_check = {
    path              = "/healthz"
    interval          = "1s"
    healthy_threshold = 2
    start_timeout     = "60s"
  }

  history_limit = 5 # earlier revisions kept, stopped, for a rollback without a pull
  stop_timeout  = "15s"

  # The default is 20 minutes plus the canary's longest_duration; a value
  # set here replaces it, so leave room for the canary.
  timeouts = {
    update = "30m"
  }
}

output "production" {
  value = "${release_environment.production.digest} (revision ${release_environment.production.revision}, ${release_environment.production.rollout})"
}

output "staging_verified" {
  value = release_environment.staging.verified.digests
}
