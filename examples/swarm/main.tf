# The quickstart's environment on a Docker Swarm: the same module, with
# `swarm` set. The provider talks to a manager; Swarm places each replica's
# task on a node, restarts it and moves it off a drained node; the router
# stays a container on the manager and reaches the tasks over the
# environment's overlay network.

terraform {
  required_providers {
    release = { source = "releasekit/release" }
  }
}

provider "release" {
  docker_host = "unix:///var/run/docker.sock" # a swarm manager
}

variable "image" {
  description = "The application image, pinned by digest (repository@sha256:…), in a registry every node can pull from."
  type        = string
}

resource "release_router" "edge" {
  name  = "edge"
  image = "haproxy:3.0"
  ports = [{ internal = 80, external = 8080 }]
}

resource "release_canary" "standard" {
  steps = [
    { weight = 10, pause = "1m" },
    { weight = 50, pause = "2m" },
  ]
  analysis = {
    interval       = "30s"
    min_requests   = 100
    max_error_rate = 0.01
  }
}

resource "release_environment" "web" {
  name          = "production"
  service       = "web"
  image         = var.image
  replicas      = 3
  router        = release_router.edge.id
  canary_policy = release_canary.standard.policy

  # The one line that moves the environment from one Docker host to a swarm.
  swarm = {
    constraints = ["node.role==worker"]
  }
}
