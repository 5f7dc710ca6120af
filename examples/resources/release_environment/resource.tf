resource "release_image" "web_v2" {
  repository = "registry.example.com/shop/web"
  tag        = "2.0.0"
}

resource "release_router" "edge" {
  name  = "edge"
  image = "haproxy:3.0"
  ports = [{ internal = 80, external = 8080 }]
}

# production/web serves the pinned digest of 2.0.0 on port 8080 of the host.
# Changing image is a zero-downtime switch; reverting it is the rollback.
resource "release_environment" "production" {
  name        = "production"
  service     = "web"
  image       = release_image.web_v2.ref # a tag here is a plan-time error
  replicas    = 2
  port        = 8080 # the application's port in its container
  listen_port = 80   # the router's listener
  router      = release_router.edge.id

  env = {
    LOG_LEVEL = "info"
  }

  health_check = {
    path              = "/healthz"
    interval          = "1s"
    healthy_threshold = 2
    start_timeout     = "60s"
  }

  history_limit = 5 # earlier revisions kept, stopped, for a rollback without a pull
  stop_timeout  = "15s"

  timeouts = {
    update = "10m"
  }
}

output "serving" {
  value = "${release_environment.production.digest} (revision ${release_environment.production.revision})"
}
