# Terraform 1.12 and later: an import block that names the pin by identity.
import {
  to = release_image.web
  identity = {
    repository = "registry.example.com/shop/web"
    digest     = "sha256:4f53cda18c2baa0c0354bb5f9a3ecbe5ed12ab4d8e11ba873c2f11161202b945"
  }
}
