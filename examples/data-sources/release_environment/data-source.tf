# Production's own state reads what staging runs and has verified from the
# Docker host that runs staging: the containers' labels and the router's route,
# not staging's Terraform state.
provider "release" {
  alias       = "staging"
  docker_host = "ssh://deploy@staging.example.com" # the same host as production works too
}

data "release_environment" "staging" {
  provider = release.staging
  name     = "staging"
  service  = "web"
}

resource "release_image" "web_v3" {
  repository = "registry.example.com/shop/web"
  tag        = "3.0.0"
}

resource "release_router" "edge" {
  name  = "edge"
  image = "haproxy:3.0"
  ports = [{ internal = 80, external = 8080 }]
}

# The promotion gate: a plan that would release a digest staging has not
# verified fails with "Digest Not Verified Upstream".
resource "release_environment" "production" {
  name         = "production"
  service      = "web"
  image        = release_image.web_v3.ref
  replicas     = 2
  router       = release_router.edge.id
  promote_from = data.release_environment.staging.verified
}

output "staging_digest" {
  value = data.release_environment.staging.digest
}

output "staging_verified" {
  value = data.release_environment.staging.verified.digests
}

output "staging_history" {
  value = [for h in data.release_environment.staging.history : "${h.revision}: ${h.digest} at ${h.deployed_at}"]
}
