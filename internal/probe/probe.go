// Package probe holds the health-check binary the provider places in each
// application container (see cmd/release-probe), built for linux/amd64 and
// linux/arm64 by `make probe` and embedded compressed.
package probe

import (
	"bytes"
	"compress/gzip"
	"embed"
	"fmt"
	"io"
	"strconv"
	"sync"
	"time"
)

//go:generate sh -c "cd ../.. && make probe"

//go:embed bin/probe-linux-amd64.gz bin/probe-linux-arm64.gz
var binaries embed.FS

// Path is where the probe is placed in a container.
const Path = "/.release-probe"

var (
	cacheMu sync.Mutex
	cache   = map[string][]byte{}
)

// Binary returns the probe for a container architecture as Docker names it
// (amd64, arm64, or the kernel's x86_64 and aarch64). It is decompressed
// once per architecture; callers must not change the bytes.
func Binary(arch string) ([]byte, error) {
	cacheMu.Lock()
	defer cacheMu.Unlock()
	if b, ok := cache[arch]; ok {
		return b, nil
	}
	b, err := binary(arch)
	if err == nil {
		cache[arch] = b
	}
	return b, err
}

func binary(arch string) ([]byte, error) {
	switch arch {
	case "x86_64":
		arch = "amd64"
	case "aarch64":
		arch = "arm64"
	}
	gz, err := binaries.ReadFile("bin/probe-linux-" + arch + ".gz")
	if err != nil {
		return nil, fmt.Errorf("no health probe is built for architecture %q; the provider supports amd64 and arm64 hosts", arch)
	}
	r, err := gzip.NewReader(bytes.NewReader(gz))
	if err != nil {
		return nil, err
	}
	return io.ReadAll(r)
}

// Command is the Docker health check command that probes path on port.
func Command(port int, path string, timeout time.Duration) []string {
	return []string{"CMD", Path, strconv.Itoa(port), path, timeout.String()}
}

// RemoteArgs are the arguments that make the probe check path at another
// container's address (host:port) instead of its own container's port.
func RemoteArgs(addr, path string, timeout time.Duration) []string {
	return []string{addr, path, timeout.String()}
}
