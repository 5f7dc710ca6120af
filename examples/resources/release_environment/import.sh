# Import an environment's service as <environment>/<service>. Settings that the
# host does not record (replicas, health check, env) are taken from the configuration
# on the next apply.
terraform import release_environment.production production/web
