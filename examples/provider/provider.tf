provider "release" {
  # Defaults to DOCKER_HOST, then the local socket. ssh://user@host and
  # tcp://host:2376 (with cert_path or *_material) work too.
  docker_host = "unix:///var/run/docker.sock"

  # Registries without an entry here use the Docker CLI's config.json.
  registry_auth = [{
    address  = "registry.example.com"
    username = "ci"
    password = var.registry_password
  }]
}

variable "registry_password" {
  type      = string
  sensitive = true
}
