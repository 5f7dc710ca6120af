# A policy imports from its id, which encodes the whole policy.
terraform import release_canary.standard "$(terraform output -raw canary_id)"
