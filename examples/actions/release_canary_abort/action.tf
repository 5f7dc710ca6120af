# In a second working directory (another pipeline job, an on-call laptop),
# while an apply elsewhere runs the canary of production/web:
#
#   terraform apply -invoke=action.release_canary_abort.web -auto-approve
#
# The running apply puts every user back on stable at the canary's next
# analysis and fails with "aborted by action"; this command returns once it has.
action "release_canary_abort" "web" {
  config {
    environment = "production"
    service     = "web"
  }
}
