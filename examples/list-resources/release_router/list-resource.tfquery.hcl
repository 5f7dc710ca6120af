# adopt.tfquery.hcl: every router on the provider's Docker host.
list "release_router" "all" {
  provider         = release
  include_resource = true
}
