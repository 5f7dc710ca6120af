package docker

import (
	"context"
	"errors"
	"net"
	"path/filepath"
	"strings"
	"testing"
)

func TestConfigValidate(t *testing.T) {
	for _, ok := range []string{"unix:///var/run/docker.sock", "tcp://127.0.0.1:2376", "ssh://deploy@host.example.com:2222"} {
		if err := (Config{Host: ok}).Validate(); err != nil {
			t.Errorf("%s: %v", ok, err)
		}
	}
	for host, want := range map[string]string{
		"http://host:2375": "use unix://, tcp:// or ssh://",
		"unix://":          "names no socket path",
		"tcp://":           "names no address",
		"ssh://":           "names no host",
	} {
		err := (Config{Host: host}).Validate()
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: got %v, want %q", host, err, want)
		}
	}
	if err := (Config{Host: "tcp://h:1", CertPEM: "x"}).Validate(); err == nil {
		t.Error("a certificate without a key was accepted")
	}
}

// A daemon that does not answer is an error naming the host, raised on first use.
func TestConnectorNamesUnansweringHost(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close() // nothing listens there now

	for _, host := range []string{"tcp://" + addr, "unix://" + filepath.Join(t.TempDir(), "docker.sock")} {
		c := NewConnector(Config{Host: host})
		_, err := c.Client(context.Background())
		var ue *UnreachableError
		if !errors.As(err, &ue) {
			t.Fatalf("%s: got %v, want an unreachable error", host, err)
		}
		if !strings.Contains(err.Error(), host) {
			t.Errorf("the error does not name the host %s: %v", host, err)
		}
	}
}

func TestHostForDisplay(t *testing.T) {
	if got := HostForDisplay("ssh://deploy:pw@host:22"); got != "ssh://deploy@host:22" {
		t.Errorf("got %s", got)
	}
}
