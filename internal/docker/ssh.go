package docker

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/url"
	"os/exec"
	"sync"
	"time"
)

// sshDialer opens a stream to the remote daemon by running
// `ssh host -- docker system dial-stdio`, the Docker CLI's own method.
func sshDialer(u *url.URL) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return func(ctx context.Context, _, _ string) (net.Conn, error) {
		args := []string{"-o", "ConnectTimeout=30", "-o", "BatchMode=yes"}
		if u.User != nil {
			args = append(args, "-l", u.User.Username())
		}
		if p := u.Port(); p != "" {
			args = append(args, "-p", p)
		}
		args = append(args, "--", u.Hostname(), "docker", "system", "dial-stdio")
		// The command outlives the dial's context: it is the connection.
		cmd := exec.Command("ssh", args...)
		stdin, err := cmd.StdinPipe()
		if err != nil {
			return nil, err
		}
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			return nil, err
		}
		var stderr limitedBuffer
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			return nil, fmt.Errorf("starting ssh: %w", err)
		}
		return &commandConn{cmd: cmd, stdin: stdin, stdout: stdout, stderr: &stderr, host: u.Host}, nil
	}
}

type commandConn struct {
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	stdout io.ReadCloser
	stderr *limitedBuffer
	host   string
	once   sync.Once
}

func (c *commandConn) Read(p []byte) (int, error) {
	n, err := c.stdout.Read(p)
	if err == io.EOF && c.stderr.String() != "" {
		return n, fmt.Errorf("ssh %s: %s", c.host, c.stderr.String())
	}
	return n, err
}

func (c *commandConn) Write(p []byte) (int, error) { return c.stdin.Write(p) }

func (c *commandConn) Close() error {
	c.once.Do(func() {
		_ = c.stdin.Close()
		_ = c.cmd.Process.Kill()
		_ = c.cmd.Wait()
	})
	return nil
}

func (c *commandConn) LocalAddr() net.Addr              { return dummyAddr{} }
func (c *commandConn) RemoteAddr() net.Addr             { return dummyAddr{} }
func (c *commandConn) SetDeadline(time.Time) error      { return nil }
func (c *commandConn) SetReadDeadline(time.Time) error  { return nil }
func (c *commandConn) SetWriteDeadline(time.Time) error { return nil }

type dummyAddr struct{}

func (dummyAddr) Network() string { return "ssh" }
func (dummyAddr) String() string  { return "ssh" }

// limitedBuffer keeps the first 4 KiB of ssh's error output for messages.
type limitedBuffer struct {
	mu  sync.Mutex
	buf []byte
}

func (b *limitedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if room := 4096 - len(b.buf); room > 0 {
		if len(p) < room {
			room = len(p)
		}
		b.buf = append(b.buf, p[:room]...)
	}
	return len(p), nil
}

func (b *limitedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return string(b.buf)
}
