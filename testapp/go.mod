module github.com/releasekit/terraform-provider-release/testapp

go 1.26

require github.com/lib/pq v1.12.3
