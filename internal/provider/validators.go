package provider

import (
	"fmt"
	"net/netip"
	"time"

	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
	"github.com/hashicorp/terraform-plugin-framework/types"
	"github.com/hashicorp/terraform-plugin-framework/types/basetypes"

	"github.com/releasekit/terraform-provider-release/internal/canary"
	"github.com/releasekit/terraform-provider-release/internal/docker"
	"github.com/releasekit/terraform-provider-release/internal/router"
	"github.com/releasekit/terraform-provider-release/internal/validators"
)

var objectAsOptions = basetypes.ObjectAsOptions{UnhandledNullAsEmpty: true, UnhandledUnknownAsEmpty: true}

// nameValidator checks an environment, service or router name.
func nameValidator() validator.String {
	return validators.StringCheck("1 to 32 lowercase letters, digits and dashes", "Invalid Name", router.ValidateName,
		func(attr path.Path, _ types.String, err error) string {
			return attr.String() + ": " + err.Error() + ". Names become container, network and router configuration names, so nothing else is allowed."
		})
}

// dockerHostValidator checks docker_host.
func dockerHostValidator() validator.String {
	return validators.StringCheck("must be a unix://, tcp:// or ssh:// address", "Invalid Docker Host",
		func(s string) error { return docker.Config{Host: s}.Validate() },
		func(_ path.Path, _ types.String, err error) string {
			return "docker_host is not a Docker Engine address: " + err.Error() + "."
		})
}

// durationValidator checks a duration of at least min.
func durationValidator(min time.Duration) validator.String {
	return validators.StringCheck("a duration such as 500ms, 10s or 2m, at least "+min.String(), "Invalid Duration",
		func(s string) error {
			d, err := time.ParseDuration(s)
			if err == nil && d < min {
				err = fmt.Errorf("%s is shorter than %s", d, min)
			}
			return err
		},
		func(attr path.Path, value types.String, _ error) string {
			return attr.String() + " must be a duration such as 500ms, 10s or 2m, at least " + min.String() + "; got " + value.String() + "."
		})
}

// pauseValidator checks a canary step's pause: a duration of at least 1s,
// or "manual".
func pauseValidator() validator.String {
	return validators.StringCheck("a duration such as 30s or 2m, or \"manual\"", "Invalid Pause",
		func(s string) error {
			if s == canary.ManualPause {
				return nil
			}
			d, err := time.ParseDuration(s)
			if err == nil && d < time.Second {
				err = fmt.Errorf("%s is shorter than 1s", d)
			}
			return err
		},
		func(attr path.Path, value types.String, err error) string {
			return attr.String() + " must be a duration such as 30s or 2m, or \"manual\" to hold the canary there until the next apply; got " + value.String() + " (" + err.Error() + ")."
		})
}

// healthPathValidator checks a health check's HTTP path.
func healthPathValidator() validator.String {
	return validators.StringCheck("an absolute URL path such as /healthz", "Invalid Health Check Path", router.ValidateHealthPath, nil)
}

// canaryIDValidator checks that a value is a release_canary id.
func canaryIDValidator() validator.String {
	return validators.StringCheck("a release_canary id, release_canary.<name>.id", "Invalid Canary",
		func(s string) error { _, err := canary.Decode(s); return err },
		func(_ path.Path, _ types.String, err error) string {
			return "canary takes the id of a release_canary resource, such as release_canary.standard.id: " + err.Error() + "."
		})
}

// hostIPValidator checks a port's host_ip: Docker publishes a port on an
// address, and drops a host name without a word (the port then listens on
// every address, 0.0.0.0 and [::]).
func hostIPValidator() validator.String {
	return validators.StringCheck("an IP address such as 127.0.0.1, 0.0.0.0 or ::1", "Invalid Host Address",
		func(s string) error { _, err := netip.ParseAddr(s); return err },
		func(attr path.Path, value types.String, _ error) string {
			return attr.String() + " must be an IP address, such as 127.0.0.1 (this host only), 0.0.0.0 (every IPv4 address) or ::1; got " +
				value.String() + ". Docker publishes ports on addresses, not host names: write 127.0.0.1 for localhost."
		})
}
