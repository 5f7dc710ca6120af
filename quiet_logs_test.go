package main

import (
	"os"
	"testing"
)

func TestQuietUnreadLogs(t *testing.T) {
	vars := []string{"TF_LOG", "TF_LOG_PROVIDER", "TF_LOG_PROVIDER_RELEASE", "TF_LOG_SDK", "TF_LOG_SDK_PROTO", "TF_LOG_SDK_FRAMEWORK", "TF_LOG_PATH_MASK"}
	for _, v := range vars {
		t.Setenv(v, "")
	}
	quietUnreadLogs()
	for _, v := range []string{"TF_LOG_SDK", "TF_LOG_SDK_PROTO", "TF_LOG_SDK_FRAMEWORK", "TF_LOG_PROVIDER_RELEASE"} {
		if got := os.Getenv(v); got != "OFF" {
			t.Errorf("without TF_LOG: %s = %q, want OFF", v, got)
		}
	}

	// Terraform keeps the logs: nothing changes.
	for _, v := range vars {
		t.Setenv(v, "")
	}
	t.Setenv("TF_LOG", "DEBUG")
	quietUnreadLogs()
	if got := os.Getenv("TF_LOG_SDK_FRAMEWORK"); got != "" {
		t.Errorf("with TF_LOG=DEBUG: TF_LOG_SDK_FRAMEWORK = %q, want it left unset", got)
	}
}
