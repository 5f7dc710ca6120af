# The parts of the digest production runs, for a dashboard or a release note.
output "production_image" {
  value = provider::release::parse_ref(release_environment.production.image)
  # {
  #   registry   = "registry.example.com"
  #   repository = "shop/web"
  #   name       = "registry.example.com/shop/web"
  #   tag        = ""
  #   digest     = "sha256:…"
  # }
}
