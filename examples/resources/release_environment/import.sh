# Import an environment's service as <environment>/<service>. The serving digest,
# revision, history, port and listener are read from the host; settings it does
# not record (health check, env, stop timeout) start from their defaults.
terraform import release_environment.production production/web
