# Resolve a tag once, at create. The plan shows the digest that will be pinned.
resource "release_image" "web_v2" {
  repository = "registry.example.com/shop/web"
  tag        = "2.0.0"
}

# Pin a digest you already know; it is checked to exist in the registry.
resource "release_image" "web_v1" {
  repository = "registry.example.com/shop/web"
  digest     = "sha256:4f1d6a0b9c6e1c0c7f9f4e0a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e"
}

# Pick one platform's manifest out of a multi-platform index.
resource "release_image" "web_v2_arm" {
  repository = "registry.example.com/shop/web"
  tag        = "2.0.0"
  platform   = "linux/arm64"
}

output "web_v2_ref" {
  # repository@sha256:…, the form release_environment.image takes.
  value = release_image.web_v2.ref
}
