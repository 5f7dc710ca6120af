// Command release-probe is the health check the provider places in each
// application container: images built FROM scratch have no curl or shell, and
// the Docker API offers no other way to reach a container's port over every
// kind of connection. It makes one HTTP/1.0 GET and exits 0 on a 2xx answer.
//
// It avoids net/http to stay small: it is embedded in the provider twice.
//
// Usage: release-probe <port> <path> [timeout]
package main

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"strings"
	"time"
)

func main() {
	if len(os.Args) < 3 {
		fmt.Fprintln(os.Stderr, "usage: release-probe <port> <path> [timeout]")
		os.Exit(2)
	}
	timeout := 2 * time.Second
	if len(os.Args) > 3 {
		if d, err := time.ParseDuration(os.Args[3]); err == nil {
			timeout = d
		}
	}
	status, err := probe("127.0.0.1:"+os.Args[1], os.Args[2], timeout)
	if err != nil {
		fmt.Println("unhealthy:", err)
		os.Exit(1)
	}
	fmt.Println(status)
	if !strings.HasPrefix(strings.TrimPrefix(status, "HTTP/1.1 "), "2") && !strings.HasPrefix(strings.TrimPrefix(status, "HTTP/1.0 "), "2") {
		os.Exit(1)
	}
}

func probe(addr, path string, timeout time.Duration) (string, error) {
	conn, err := net.DialTimeout("tcp", addr, timeout)
	if err != nil {
		return "", err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(timeout))
	if _, err := fmt.Fprintf(conn, "GET %s HTTP/1.0\r\nHost: %s\r\nUser-Agent: release-probe\r\n\r\n", path, addr); err != nil {
		return "", err
	}
	line, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil {
		return "", fmt.Errorf("reading the status line: %w", err)
	}
	return strings.TrimSpace(line), nil
}
