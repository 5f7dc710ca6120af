# The quickstart: pin the test application's two releases from the local
# registry. `make quickstart` starts the registry, pushes the images and
# applies this configuration with the provider built from this checkout.

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

output "v1" {
  description = "The pinned reference of release 1.0.0."
  value       = release_image.v1.ref
}

output "v2" {
  description = "The pinned reference of release 2.0.0."
  value       = release_image.v2.ref
}
