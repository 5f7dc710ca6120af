variable "database_url" {
  type      = string
  sensitive = true
}

resource "release_image" "v1" {
  repository = "registry.example.com/shop/web"
  tag        = "1.0.0"
}

resource "release_image" "v2" {
  repository = "registry.example.com/shop/web"
  tag        = "2.0.0"
}

# Each release that changes the schema adds a migration that depends on the
# previous one. The migration runs from the release's own pinned image.
resource "release_migration" "v1" {
  image        = release_image.v1.ref
  up_command   = ["/app", "migrate", "up"]
  down_command = ["/app", "migrate", "down"]
  env          = { DATABASE_URL = var.database_url }
  environments = ["production"]

  # Required for rollback by revert: Terraform then switches the environment
  # back to the previous release before it runs this migration's down command.
  lifecycle {
    create_before_destroy = true
  }
}

resource "release_migration" "v2" {
  image        = release_image.v2.ref
  up_command   = ["/app", "migrate", "up"]
  down_command = ["/app", "migrate", "down"]
  env          = { DATABASE_URL = var.database_url }
  depends_on   = [release_migration.v1]
  # The environments whose database this is: a down waits only for them.
  environments = ["production"]

  lifecycle {
    create_before_destroy = true
  }
}

resource "release_router" "edge" {
  name  = "edge"
  image = "haproxy:3.0"
  ports = [{ internal = 80, external = 8080 }]
}

# The environment depends on the newest migration: a forward apply migrates
# up before the switch; reverting the change that added v2 switches back to
# v1 first, then runs v2's down command.
resource "release_environment" "production" {
  name       = "production"
  service    = "web"
  image      = release_image.v2.ref
  router     = release_router.edge.id
  env        = { DATABASE_URL = var.database_url }
  depends_on = [release_migration.v2]
}
