# terraform apply -invoke=action.release_canary_hold.web -auto-approve
#
# The running apply keeps the canary at its weight, still judging it, until
# the promote or abort action (or its own timeout, which aborts the canary).
action "release_canary_hold" "web" {
  config {
    environment = "production"
    service     = "web"
  }
}
