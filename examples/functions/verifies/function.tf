# A job that deploys production with its own tooling keeps the promotion
# gate: the digest must be one that staging verified.
data "release_environment" "staging" {
  name    = "staging"
  service = "web"
}

variable "production_image" {
  type = string # a pinned reference, repository@sha256:…
}

output "production_image" {
  value = var.production_image
  precondition {
    condition     = provider::release::verifies(data.release_environment.staging.verified, var.production_image)
    error_message = "staging has not verified ${var.production_image}: release it there first."
  }
}
