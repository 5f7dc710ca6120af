# Terraform 1.12 and later: an import block that names the environment by
# identity (no ID string to assemble), reviewed in the plan before it applies.
import {
  to = release_environment.production
  identity = {
    name    = "production"
    service = "web"
  }
}
