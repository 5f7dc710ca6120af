# Import a router by its name (the container is release-router-<name>).
terraform import release_router.edge edge
