# The quickstart: the test application released to staging and production on
# the local Docker host, behind one router, from pinned digests. Both
# environments use the same module; production takes only what staging has
# verified, and a new release goes through a canary in each.
#
# `make quickstart` runs the whole story (see README.md here):
#   v1 everywhere → the gate refuses v2 in production → v2 through a canary
#   in staging → v2 promoted to production, through its own canary → rollback
#   by reverting to v1.

terraform {
  required_providers {
    release = {
      source = "releasekit/release"
    }
  }
}

variable "repository" {
  description = "Repository of the application image, including its registry host."
  type        = string
  default     = "127.0.0.1:5000/releasekit/testapp"
}

variable "staging_release" {
  description = "Which release staging serves: 1.0.0 or 2.0.0."
  type        = string
  default     = "1.0.0"
}

variable "production_release" {
  description = "Which release production serves: 1.0.0 or 2.0.0. Only a digest staging has verified is accepted."
  type        = string
  default     = "1.0.0"
}

variable "haproxy_image" {
  description = "HAProxy image of the router, 2.6 or newer."
  type        = string
  default     = "haproxy:3.0"
}

variable "production_port" {
  description = "Port on 127.0.0.1 where production answers."
  type        = number
  default     = 18888
}

variable "staging_port" {
  description = "Port on 127.0.0.1 where staging answers."
  type        = number
  default     = 18881
}

provider "release" {}

# Each tag is resolved once and pinned: later pushes to the tag change nothing here.
resource "release_image" "v1" {
  repository = var.repository
  tag        = "1.0.0"
}

resource "release_image" "v2" {
  repository = var.repository
  tag        = "2.0.0"
}

locals {
  images = {
    "1.0.0" = release_image.v1.ref
    "2.0.0" = release_image.v2.ref
  }
}

resource "release_router" "edge" {
  name  = "quickstart"
  image = var.haproxy_image
  ports = [
    { internal = 80, external = var.production_port },
    { internal = 81, external = var.staging_port },
  ]
}

# A short canary, so the quickstart takes a minute: 20% then 50% of the
# traffic, judged every 5 seconds on the router's own counters against a
# fresh baseline of the version it replaces. Twenty seconds of a few users'
# traffic can only promise to catch a gross regression: must_catch says so
# (left out, it would be 3x the baseline's rate, and this canary would end
# "underpowered"; see release_canary.quick.requests_needed).
resource "release_canary" "quick" {
  steps = [
    { weight = 20, pause = "10s" },
    { weight = 50, pause = "10s" },
  ]
  analysis = {
    interval       = "5s"
    min_requests   = 20
    max_error_rate = 0.05
    must_catch     = 0.05
  }
  report_path = "canary-report.md"
}

module "staging" {
  source        = "./modules/service"
  environment   = "staging"
  image         = local.images[var.staging_release]
  router        = release_router.edge.id
  listen_port   = 81
  canary_policy = release_canary.quick.policy
}

module "production" {
  source        = "./modules/service"
  environment   = "production"
  image         = local.images[var.production_release]
  router        = release_router.edge.id
  listen_port   = 80
  canary_policy = release_canary.quick.policy
  promote_from  = module.staging.verified
}

output "production_url" {
  description = "Where production answers."
  value       = "http://127.0.0.1:${var.production_port}/"
}

output "staging_url" {
  description = "Where staging answers."
  value       = "http://127.0.0.1:${var.staging_port}/"
}

output "serving" {
  description = "What each environment serves."
  value       = "staging ${module.staging.digest} (revision ${module.staging.revision}), production ${module.production.digest} (revision ${module.production.revision})"
}
