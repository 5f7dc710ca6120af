# Terraform 1.12 and later: an import block that names the router by identity.
import {
  to = release_router.edge
  identity = {
    name = "edge"
  }
}
