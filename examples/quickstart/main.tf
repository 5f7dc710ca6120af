# The quickstart: the test application released on the local Docker host,
# behind a router, from a pinned digest. `make quickstart` starts the
# registry, pushes the images, builds the provider and applies this.
#
# Switch to 2.0.0 with zero downtime:   make quickstart QUICKSTART_ARGS='-var release=2.0.0'
# Roll back (the retained containers of 1.0.0 start again, no pull):
#                                       make quickstart QUICKSTART_ARGS='-var release=1.0.0'

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

variable "release" {
  description = "Which release serves production: 1.0.0 or 2.0.0."
  type        = string
  default     = "1.0.0"
}

variable "haproxy_image" {
  description = "HAProxy image of the router, 2.6 or newer."
  type        = string
  default     = "haproxy:3.0"
}

variable "port" {
  description = "Port on 127.0.0.1 where production is served."
  type        = number
  default     = 18888
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

resource "release_router" "edge" {
  name  = "quickstart"
  image = var.haproxy_image
  ports = [{ internal = 80, external = var.port }]
}

resource "release_environment" "production" {
  name     = "production"
  service  = "web"
  image    = var.release == "2.0.0" ? release_image.v2.ref : release_image.v1.ref
  replicas = 2
  router   = release_router.edge.id
}

output "url" {
  description = "Where production answers."
  value       = "http://127.0.0.1:${var.port}/"
}

output "serving" {
  description = "The digest and revision serving production."
  value       = "${release_environment.production.digest} (revision ${release_environment.production.revision})"
}
