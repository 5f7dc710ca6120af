# One service in one environment: the same module for staging and production,
# so the only differences between them are the inputs.

terraform {
  required_providers {
    release = {
      source = "releasekit/release"
    }
  }
}

variable "environment" {
  description = "Environment name, such as staging or production."
  type        = string
}

variable "image" {
  description = "The pinned image, repository@sha256:…."
  type        = string
}

variable "router" {
  description = "The release_router's id."
  type        = string
}

variable "listen_port" {
  description = "The router's listener for this environment."
  type        = number
}

variable "canary_policy" {
  description = "A release_canary's policy (release_canary.<name>.policy); null releases with a hard switch."
  type        = any
  default     = null
}

variable "promote_from" {
  description = "An upstream environment's verified digests; null for the first environment."
  type = object({
    environment = string
    service     = string
    serving     = string
    digests     = list(string)
  })
  default = null
}

resource "release_environment" "web" {
  name          = var.environment
  service       = "web"
  image         = var.image
  replicas      = 2
  router        = var.router
  listen_port   = var.listen_port
  canary_policy = var.canary_policy
  promote_from  = var.promote_from

  health_check = {
    interval = "500ms"
  }
}

output "verified" {
  description = "What this environment has verified, for the next environment's promote_from."
  value       = release_environment.web.verified
}

output "digest" {
  description = "The digest serving now."
  value       = release_environment.web.digest
}

output "revision" {
  description = "The revision serving now."
  value       = release_environment.web.revision
}
