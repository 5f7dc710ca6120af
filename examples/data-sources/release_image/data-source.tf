# What does the tag point at right now? Unlike the resource, this follows the
# tag on every refresh: use it to look, and release_image to pin.
data "release_image" "latest" {
  repository = "registry.example.com/shop/web"
  tag        = "latest"
}

output "latest_digest" {
  value = data.release_image.latest.digest
}
