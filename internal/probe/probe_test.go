package probe

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestBinary(t *testing.T) {
	for _, arch := range []string{"amd64", "x86_64", "arm64", "aarch64"} {
		b, err := Binary(arch)
		if err != nil {
			t.Fatalf("%s: %v", arch, err)
		}
		if !bytes.HasPrefix(b, []byte("\x7fELF")) {
			t.Errorf("%s: not an ELF binary", arch)
		}
	}
	if _, err := Binary("s390x"); err == nil {
		t.Error("an unsupported architecture gave a binary")
	}
}

func TestCommand(t *testing.T) {
	got := Command(8080, "/healthz", 2*time.Second)
	want := []string{"CMD", Path, "8080", "/healthz", "2s"}
	if len(got) != len(want) {
		t.Fatalf("got %v", got)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("got %v, want %v", got, want)
		}
	}
}

// runProbe runs the embedded amd64 probe, so the test covers the bytes the
// provider ships rather than the source they were built from.
// embeddedProbe writes the embedded linux/amd64 probe to a file and returns its path.
func embeddedProbe(t *testing.T) string {
	t.Helper()
	if runtime.GOOS != "linux" || runtime.GOARCH != "amd64" {
		t.Skip("the embedded probe runs on linux/amd64 only")
	}
	bin, err := Binary("amd64")
	if err != nil {
		t.Fatal(err)
	}
	exe := filepath.Join(t.TempDir(), "release-probe")
	if err := os.WriteFile(exe, bin, 0o755); err != nil {
		t.Fatal(err)
	}
	return exe
}

func runProbe(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	exe := embeddedProbe(t)
	var out, errOut bytes.Buffer
	cmd := exec.Command(exe, args...)
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	var exit *exec.ExitError
	switch {
	case errors.As(err, &exit):
		code = exit.ExitCode()
	case err != nil:
		t.Fatal(err)
	}
	return out.String(), errOut.String(), code
}

func TestEmbeddedProbeBody(t *testing.T) {
	large := strings.Repeat("haproxy_server_http_responses_total{proxy=\"be\",server=\"c2-1\",code=\"2xx\"} 19\n", 5000)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/metrics":
			if r.URL.RawQuery != "scope=server" {
				http.Error(w, "query "+r.URL.RawQuery, http.StatusBadRequest)
				return
			}
			// No Content-Length: the body ends with the connection.
			w.(http.Flusher).Flush()
			fmt.Fprint(w, large)
		case "/sized":
			fmt.Fprint(w, "exact\n")
		default:
			http.Error(w, "nothing here", http.StatusNotFound)
		}
	}))
	defer srv.Close()
	port := strconv.Itoa(srv.Listener.Addr().(*net.TCPAddr).Port)

	stdout, stderr, code := runProbe(t, "-body", port, "/metrics?scope=server", "5s")
	if code != 0 || stdout != large || stderr != "" {
		t.Errorf("-body /metrics: exit %d, %d bytes out (want %d), stderr %q", code, len(stdout), len(large), stderr)
	}
	stdout, stderr, code = runProbe(t, "-body", port, "/sized")
	if code != 0 || stdout != "exact\n" || stderr != "" {
		t.Errorf("-body /sized: exit %d, out %q, stderr %q", code, stdout, stderr)
	}
	stdout, stderr, code = runProbe(t, "-body", port, "/missing")
	if code != 1 || stdout != "" || !strings.Contains(stderr, "404") {
		t.Errorf("-body /missing: exit %d, out %q, stderr %q; want exit 1, nothing out, the status in stderr", code, stdout, stderr)
	}

	// HAProxy's exporter answers even an HTTP/1.0 request in chunks.
	chunked := rawServer(t, "HTTP/1.1 200 OK\r\ncontent-type: text/plain; version=0.0.4\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n"+
		"6\r\nup 1\nx\r\n3;ext=1\r\n 2\n\r\n0\r\n\r\n")
	stdout, stderr, code = runProbe(t, "-body", chunked, "/metrics?scope=server")
	if code != 0 || stdout != "up 1\nx 2\n" || stderr != "" {
		t.Errorf("-body, chunked: exit %d, out %q, stderr %q", code, stdout, stderr)
	}
	cut := rawServer(t, "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n6\r\nup 1\n")
	stdout, _, code = runProbe(t, "-body", cut, "/metrics")
	if code != 1 || stdout != "" {
		t.Errorf("-body, cut in a chunk: exit %d, out %q; want exit 1 and nothing printed", code, stdout)
	}

	// The health check mode is unchanged: the status line, exit 0 on 2xx.
	stdout, _, code = runProbe(t, port, "/sized", "2s")
	if code != 0 || !strings.HasPrefix(stdout, "HTTP/1.0 200") {
		t.Errorf("health check: exit %d, out %q", code, stdout)
	}
	stdout, _, code = runProbe(t, port, "/missing")
	if code != 1 || !strings.HasPrefix(stdout, "HTTP/1.0 404") {
		t.Errorf("health check of a 404: exit %d, out %q", code, stdout)
	}
}

// rawServer answers every connection with answer and closes it; it returns the port.
func rawServer(t *testing.T, answer string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			// Read the whole request: closing with unread bytes would reset the connection.
			r := bufio.NewReader(conn)
			for {
				line, err := r.ReadString('\n')
				if err != nil || line == "\r\n" {
					break
				}
			}
			_, _ = io.WriteString(conn, answer)
			conn.Close()
		}
	}()
	return strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
}

func TestEmbeddedProbeRename(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	read := func(name string) string {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			return "<" + err.Error() + ">"
		}
		return string(b)
	}
	live := write("route_prod_web.cfg", "old\n")
	staged := write(".next-route_prod_web.cfg", "new\n")
	other := write(".next-route_staging_web.cfg", "staging\n")

	stdout, stderr, code := runProbe(t, "-rename", staged, live, other, filepath.Join(dir, "route_staging_web.cfg"))
	if code != 0 || stdout != "" || stderr != "" {
		t.Fatalf("-rename: exit %d, out %q, stderr %q", code, stdout, stderr)
	}
	if got := read("route_prod_web.cfg"); got != "new\n" {
		t.Errorf("the replaced file holds %q", got)
	}
	if got := read("route_staging_web.cfg"); got != "staging\n" {
		t.Errorf("the new file holds %q", got)
	}
	if _, err := os.Stat(staged); !os.IsNotExist(err) {
		t.Errorf("the staged file is still there: %v", err)
	}

	// A missing source: exit 1, a message naming it, and nothing renamed.
	first := write(".next-a.cfg", "a\n")
	_, stderr, code = runProbe(t, "-rename", first, filepath.Join(dir, "a.cfg"), filepath.Join(dir, ".next-missing.cfg"), live)
	if code != 1 || !strings.Contains(stderr, ".next-missing.cfg") || !strings.Contains(stderr, "nothing renamed") {
		t.Errorf("-rename of a missing file: exit %d, stderr %q; want 1 and its name", code, stderr)
	}
	if read(".next-a.cfg") != "a\n" || read("route_prod_web.cfg") != "new\n" {
		t.Errorf("after a refused rename: .next-a.cfg %q, route %q; want both as they were", read(".next-a.cfg"), read("route_prod_web.cfg"))
	}
	// -remove: files that are there and files that are not.
	if _, stderr, code := runProbe(t, "-remove", first, filepath.Join(dir, ".next-never.cfg")); code != 0 || stderr != "" {
		t.Errorf("-remove: exit %d, stderr %q", code, stderr)
	}
	if _, err := os.Stat(first); !os.IsNotExist(err) {
		t.Errorf("-remove left %s: %v", first, err)
	}
	if _, stderr, code := runProbe(t, "-remove", dir); code != 1 || stderr == "" {
		t.Errorf("-remove of a directory with files: exit %d, stderr %q; want 1 and a message", code, stderr)
	}
	for _, args := range [][]string{{"-rename"}, {"-rename", live}, {"-remove"}} {
		if _, stderr, code := runProbe(t, args...); code != 2 || !strings.Contains(stderr, "usage") {
			t.Errorf("%v: exit %d, stderr %q; want the usage and 2", args, code, stderr)
		}
	}
}

// -cli writes one command line to a unix socket (HAProxy's runtime API)
// and prints the answer; a socket that is not there exits 3, which the
// provider takes for a router without the runtime API.
func TestEmbeddedProbeCLI(t *testing.T) {
	dir, err := os.MkdirTemp("", "probe")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	sock := filepath.Join(dir, "admin.sock") // short: unix socket paths are limited
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	got := make(chan string, 1)
	go func() {
		c, err := l.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		line, _ := bufio.NewReader(c).ReadString('\n')
		got <- line
		io.WriteString(c, "1\n# be_id be_name\n4 be_x\n\n") // then HAProxy closes
	}()
	out, errOut, code := runProbe(t, "-cli", sock, "set server be_x/s1 weight 5; show servers state be_x")
	if code != 0 || out != "1\n# be_id be_name\n4 be_x\n\n" || errOut != "" {
		t.Errorf("exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	if line := <-got; line != "set server be_x/s1 weight 5; show servers state be_x\n" {
		t.Errorf("the socket got %q", line)
	}
	if _, errOut, code := runProbe(t, "-cli", filepath.Join(dir, "missing.sock"), "show info"); code != 3 || !strings.Contains(errOut, "missing.sock") {
		t.Errorf("a missing socket: exit %d, stderr %q; want 3", code, errOut)
	}
	if _, _, code := runProbe(t, "-cli", sock, "show info\nshutdown sessions"); code != 2 {
		t.Errorf("a command with a newline: exit %d, want 2 (refused)", code)
	}
}
