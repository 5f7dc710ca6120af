# Import an environment's service as <environment>/<service>. The serving digest,
# revision and history are read from the containers' labels; settings the host
# does not record (health check, env, ports) start from their defaults.
terraform import release_environment.production production/web
