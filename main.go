// Command terraform-provider-release serves the release provider to Terraform.
package main

import (
	"context"
	"flag"
	"log"

	"github.com/hashicorp/terraform-plugin-framework/providerserver"

	"github.com/releasekit/terraform-provider-release/internal/provider"
)

// version is set by goreleaser at release time.
var version = "dev"

func main() {
	var debug bool
	flag.BoolVar(&debug, "debug", false, "run the provider with support for debuggers such as delve")
	flag.Parse()

	quietUnreadLogs()
	stopProfiling := startProfiling()
	err := providerserver.Serve(context.Background(), provider.New(version), providerserver.ServeOpts{
		Address:         "registry.terraform.io/releasekit/release",
		Debug:           debug,
		ProtocolVersion: 6,
	})
	stopProfiling()
	if err != nil {
		log.Fatal(err.Error())
	}
}
