package probe

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// One -serve process answers invocations in turn, each as its own exec
// would have (exit code, stdout and stderr as one), reads directories with
// -read, and exits 0 when its input ends.
func TestEmbeddedProbeServe(t *testing.T) {
	exe := embeddedProbe(t)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/metrics" {
			http.Error(w, "nothing here", http.StatusNotFound)
			return
		}
		fmt.Fprint(w, "line one\nline two\n")
	}))
	defer srv.Close()
	port := strconv.Itoa(srv.Listener.Addr().(*net.TCPAddr).Port)
	dir := t.TempDir()
	for name, content := range map[string]string{"haproxy.cfg": "global\n", "route a b.cfg": "", "big.cfg": strings.Repeat("x\n", 100000)} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Mkdir(filepath.Join(dir, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("haproxy.cfg", filepath.Join(dir, "link.cfg")); err != nil {
		t.Fatal(err)
	}

	cmd := exec.Command(exe, ServeArgs...)
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	outPipe, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	answers := bufio.NewReader(outPipe)
	// It names its build: the provider that embeds the same one places none.
	want, err := Identity("amd64")
	if err != nil {
		t.Fatal(err)
	}
	line, err := answers.ReadString('\n')
	if got, ok := ParseGreeting(line); err != nil || !ok || got != want {
		t.Fatalf("the probe greeted with %q (%v); want %q and its identity %s", line, err, ServeGreeting, want)
	}
	ask := func(args ...string) (int, string) {
		t.Helper()
		if err := WriteRequest(in, args); err != nil {
			t.Fatal(err)
		}
		code, out, err := ReadAnswer(answers)
		if err != nil {
			t.Fatalf("%v: %v", args, err)
		}
		return code, out
	}

	if code, out := ask("-body", port, "/metrics", "5s"); code != 0 || out != "line one\nline two\n" {
		t.Errorf("-body: exit %d, out %q", code, out)
	}
	// A failure's message (stderr) comes back in the output, with the exit code.
	if code, out := ask("-body", port, "/missing", "5s"); code != 1 || !strings.Contains(out, "404") {
		t.Errorf("-body of a missing path: exit %d, out %q; want 1 and the status", code, out)
	}
	// A health check of another container's address (as the gate runs it from the router).
	if code, out := ask(RemoteArgs("127.0.0.1:"+port, "/metrics", 5*time.Second)...); code != 0 || !strings.Contains(out, " 200 ") {
		t.Errorf("a check of host:port: exit %d, out %q; want 0 and the status line", code, out)
	}
	if code, out := ask(RemoteArgs("127.0.0.1:"+port, "/missing", 5*time.Second)...); code != 1 || !strings.Contains(out, " 404 ") {
		t.Errorf("a failing check of host:port: exit %d, out %q; want 1 and the status line", code, out)
	}
	code, out := ask(ReadArgs(dir)...)
	files, err := ReadFiles(out)
	if code != 0 || err != nil {
		t.Fatalf("-read: exit %d, %v", code, err)
	}
	if len(files) != 3 || string(files["haproxy.cfg"]) != "global\n" || len(files["route a b.cfg"]) != 0 || len(files["big.cfg"]) != 200000 {
		t.Errorf("-read gave %d files %v; want the three regular ones, whole", len(files), keys(files))
	}
	if code, out := ask(ReadArgs(filepath.Join(dir, "missing"))...); code != 0 || out != "" {
		t.Errorf("-read of a missing directory: exit %d, out %q; want no files", code, out)
	}
	// An argument with a newline and spaces travels as it is.
	placed := filepath.Join(dir, "placed.cfg")
	if code, out := ask("-place", placed, "bGluZSAxCmxpbmUgMgo="); code != 0 || out != "" {
		t.Errorf("-place: exit %d, out %q", code, out)
	}
	if b, _ := os.ReadFile(placed); string(b) != "line 1\nline 2\n" {
		t.Errorf("-place wrote %q", b)
	}
	if code, out := ask("-cli", filepath.Join(dir, "no.sock"), "show info"); code != 3 || !strings.Contains(out, "no.sock") {
		t.Errorf("-cli on a missing socket: exit %d, out %q; want 3", code, out)
	}
	if code, out := ask("-serve"); code != 2 || !strings.Contains(out, "usage") {
		t.Errorf("-serve inside -serve: exit %d, out %q; want 2", code, out)
	}
	// Still answering after all that.
	if code, _ := ask("-body", port, "/metrics", "5s"); code != 0 {
		t.Errorf("the last request: exit %d", code)
	}
	in.Close()
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("the probe ended with %v when its input ended; want exit 0", err)
		}
	case <-time.After(5 * time.Second):
		cmd.Process.Kill()
		t.Error("the probe did not exit when its input ended")
	}
}

func TestParseGreeting(t *testing.T) {
	if id, ok := ParseGreeting(ServeGreeting + " ab12\n"); !ok || id != "ab12" {
		t.Errorf("ParseGreeting of a serving probe = %q, %t", id, ok)
	}
	for _, line := range []string{"usage: release-probe <port> <path> [timeout]\n", ServeGreeting + "\n", ServeGreeting + " a b\n", "release-probe serve 2 ab12\n", ""} {
		if _, ok := ParseGreeting(line); ok {
			t.Errorf("ParseGreeting(%q) took it for a serving probe", line)
		}
	}
}

func TestReadFilesRefusesACutListing(t *testing.T) {
	for _, out := range []string{"3 5\nabc12", "x y\n", "3 5", "0 1\n\n"} {
		if _, err := ReadFiles(out); err == nil {
			t.Errorf("ReadFiles(%q) accepted a cut listing", out)
		}
	}
	files, err := ReadFiles("1 2\nab\n3 0\ncde")
	if err != nil || string(files["a"]) != "b\n" || len(files["cde"]) != 0 || len(files) != 2 {
		t.Errorf("ReadFiles: %v, %v", files, err)
	}
}

func keys(m map[string][]byte) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}
