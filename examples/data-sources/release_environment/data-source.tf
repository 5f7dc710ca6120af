# Read what staging runs from the Docker host, e.g. from production's own state.
data "release_environment" "staging" {
  name    = "staging"
  service = "web"
}

output "staging_digest" {
  value = data.release_environment.staging.digest
}

output "staging_history" {
  value = [for h in data.release_environment.staging.history : "${h.revision}: ${h.digest} at ${h.deployed_at}"]
}
