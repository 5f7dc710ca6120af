# adopt.tfquery.hcl: the environments served through the router "edge".
list "release_environment" "behind_edge" {
  provider         = release
  include_resource = true

  config {
    router = "edge"
  }
}
