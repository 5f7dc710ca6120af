# terraform apply -invoke=action.release_canary_promote.web -auto-approve
#
# The running apply skips the steps left and promotes the canary.
action "release_canary_promote" "web" {
  config {
    environment = "production"
    service     = "web"
    wait        = "5m"
  }
}
