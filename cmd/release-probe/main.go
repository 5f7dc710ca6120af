// Command release-probe is the provider's hands inside a router container
// (and inside an application container, where the router cannot check it):
// images built FROM scratch have no curl or shell, and the Docker API offers
// no other way to reach a container's port over every kind of connection.
// It makes one HTTP/1.0 GET and exits 0 on a 2xx answer.
//
// With -body it prints the response body instead of the status line, so that
// the provider can read an endpoint inside a container (the router's metrics)
// through the Docker API alone.
//
// With -rename it moves files into place with rename(2), atomic on one file
// system, and with -remove it removes files: the router's image has no shell,
// no mv and no rm, and the provider moves each checked configuration file
// into place this way (and removes the staged files of a refused one).
//
// With -cli it sends one line to HAProxy's runtime API on a unix socket and
// prints the answer: the router's image may have no socat, and the provider
// changes weights this way without a reload.
//
// With -place it writes a file beside its destination, syncs it and renames
// it into place, then runs an optional -cli: a route change the runtime API
// applies costs one exec.
//
// It avoids net/http to stay small: it is embedded in the provider twice.
//
// With -read it writes a directory's files, and with -serve it answers
// invocations read from stdin one after another: the provider keeps one
// exec per router open and reads and changes the router through it.
//
// With -scrape it does what -body does and names the HAProxy worker that
// answered, read from the runtime API before and after (see scrape.go).
//
// With -tally it counts the requests a canary's route logs to a UDP socket
// it binds on the router's loopback, and answers a request for the counts
// per line of stdin (see tally.go).
//
// Given host:port instead of a port, it checks another container: the
// provider gates a new container from the router this way.
//
// Usage:
//
//	release-probe [-body] <port or host:port> <path> [timeout]
//	release-probe -rename <src> <dst> [<src> <dst>...]
//	release-probe -remove <file>...
//	release-probe -cli <socket> <command>
//	release-probe -place <dst> <base64 content> [-cli <socket> <command>]
//	release-probe -read <dir>
//	release-probe -serve
//	release-probe -scrape <socket> <port> <path> [timeout]
//	release-probe -tally <latency bounds>
package main

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// stdout and stderr are where a mode writes: the process's own, or in
// -serve one buffer per request, as an exec would have mixed them.
var stdout, stderr io.Writer = os.Stdout, os.Stderr

func main() {
	os.Exit(run(os.Args[1:]))
}

// run carries out one invocation (the arguments after the program's name)
// and returns its exit code.
func run(args []string) int {
	if len(args) > 0 {
		switch args[0] {
		case "-body":
			return body(args[1:])
		case "-rename":
			return rename(args[1:])
		case "-remove":
			return remove(args[1:])
		case "-cli":
			return cli(args[1:])
		case "-place":
			return place(args[1:])
		case "-read":
			return read(args[1:])
		case "-serve":
			return serve(os.Stdin, os.Stdout)
		case "-scrape":
			return scrape(args[1:])
		case "-tally":
			return tally(args[1:], os.Stdin, os.Stdout)
		}
	}
	if len(args) < 2 {
		fmt.Fprintln(stderr, "usage: release-probe <port or host:port> <path> [timeout]")
		return 2
	}
	timeout := 2 * time.Second
	if len(args) > 2 {
		if d, err := time.ParseDuration(args[2]); err == nil {
			timeout = d
		}
	}
	status, err := probe(address(args[0]), args[1], timeout)
	if err != nil {
		fmt.Fprintln(stdout, "unhealthy:", err)
		return 1
	}
	fmt.Fprintln(stdout, status)
	if !strings.HasPrefix(strings.TrimPrefix(status, "HTTP/1.1 "), "2") && !strings.HasPrefix(strings.TrimPrefix(status, "HTTP/1.0 "), "2") {
		return 1
	}
	return 0
}

// address is where to connect: a port alone is the container's own,
// host:port another's (the provider gates a new container from its router).
func address(arg string) string {
	if strings.Contains(arg, ":") {
		return arg
	}
	return "127.0.0.1:" + arg
}

// body writes the response body to stdout and returns the exit code. Only
// the body goes to stdout, and nothing goes to stderr on success, because
// Docker's exec hands the caller both streams mixed.
func body(args []string) int {
	if len(args) < 2 {
		fmt.Fprintln(stderr, "usage: release-probe -body <port> <path> [timeout]")
		return 2
	}
	timeout := 2 * time.Second
	if len(args) > 2 {
		if d, err := time.ParseDuration(args[2]); err == nil {
			timeout = d
		}
	}
	conn, r, err := get(address(args[0]), args[1], timeout)
	if err != nil {
		fmt.Fprintln(stderr, "release-probe:", err)
		return 1
	}
	defer conn.Close()
	status, length, chunked, err := readHead(r)
	if err != nil {
		fmt.Fprintln(stderr, "release-probe:", err)
		return 1
	}
	if f := strings.Fields(status); len(f) < 2 || len(f[1]) != 3 || f[1][0] != '2' {
		fmt.Fprintf(stderr, "release-probe: GET %s answered %q\n", args[1], status)
		return 1
	}
	// Read it all before writing, so that a cut-off answer prints nothing.
	var content []byte
	switch {
	case chunked:
		content, err = readChunked(r)
	case length >= 0:
		content = make([]byte, length)
		_, err = io.ReadFull(r, content)
	default:
		content, err = io.ReadAll(r)
	}
	if err != nil {
		fmt.Fprintln(stderr, "release-probe: reading the body:", err)
		return 1
	}
	if _, err := stdout.Write(content); err != nil {
		fmt.Fprintln(stderr, "release-probe:", err)
		return 1
	}
	return 0
}

// rename renames each pair in order and returns the exit code: 0 when all
// were renamed, 1 when one could not be. Every source is opened and synced
// before any is renamed, so a missing or unreadable one renames nothing;
// once data is on disk, renaming within one directory does not fail short of
// an I/O error. A host that stops midway leaves the old file or the whole new one.
func rename(args []string) int {
	if len(args) == 0 || len(args)%2 != 0 {
		fmt.Fprintln(stderr, "usage: release-probe -rename <src> <dst> [<src> <dst>...]")
		return 2
	}
	for i := 0; i < len(args); i += 2 {
		if err := syncPath(args[i]); err != nil {
			fmt.Fprintln(stderr, "release-probe: nothing renamed:", err)
			return 1
		}
	}
	dirs := map[string]bool{}
	for i := 0; i < len(args); i += 2 {
		if err := os.Rename(args[i], args[i+1]); err != nil {
			fmt.Fprintf(stderr, "release-probe: %d of %d renamed: %v\n", i/2, len(args)/2, err)
			return 1
		}
		dirs[filepath.Dir(args[i+1])] = true
	}
	// The new names are in place; only their durability is left.
	for dir := range dirs {
		if err := syncPath(dir); err != nil {
			fmt.Fprintln(stderr, "release-probe: renamed, not synced:", err)
		}
	}
	return 0
}

// remove removes files; one that is not there is not an error.
func remove(args []string) int {
	if len(args) == 0 {
		fmt.Fprintln(stderr, "usage: release-probe -remove <file>...")
		return 2
	}
	for _, name := range args {
		if err := os.Remove(name); err != nil && !errors.Is(err, os.ErrNotExist) {
			fmt.Fprintln(stderr, "release-probe:", err)
			return 1
		}
	}
	return 0
}

// cli sends a command line (commands separated by ';') to HAProxy's
// runtime API and writes its answer to stdout. Exit code 3 means the socket
// could not be reached (a router whose configuration has no socket), 1 any
// other failure; HAProxy's own complaints are in the answer, exit code 0.
func cli(args []string) int {
	if len(args) != 2 || strings.ContainsAny(args[1], "\n\r") {
		fmt.Fprintln(stderr, "usage: release-probe -cli <socket> <command>")
		return 2
	}
	conn, err := net.DialTimeout("unix", args[0], 2*time.Second)
	if err != nil {
		fmt.Fprintln(stderr, "release-probe:", err)
		return 3
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	// Without "prompt" HAProxy answers the line and closes the connection.
	if _, err := io.WriteString(conn, args[1]+"\n"); err != nil {
		fmt.Fprintln(stderr, "release-probe:", err)
		return 1
	}
	answer, err := io.ReadAll(conn)
	if err != nil {
		fmt.Fprintln(stderr, "release-probe: reading the answer:", err)
		return 1
	}
	if _, err := stdout.Write(answer); err != nil {
		return 1
	}
	return 0
}

// placeFailed is -place's exit code when the file was not placed (and no
// command was sent); after it is placed, the codes are -cli's.
const placeFailed = 5

// place writes a file under a hidden name beside its destination, syncs it
// and renames it into place, then runs -cli when it follows.
func place(args []string) int {
	if len(args) != 2 && !(len(args) == 5 && args[2] == "-cli") {
		fmt.Fprintln(stderr, "usage: release-probe -place <dst> <base64 content> [-cli <socket> <command>]")
		return 2
	}
	content, err := base64.StdEncoding.DecodeString(args[1])
	if err != nil {
		fmt.Fprintln(stderr, "release-probe: nothing placed:", err)
		return placeFailed
	}
	dst := args[0]
	tmp := filepath.Join(filepath.Dir(dst), ".place-"+filepath.Base(dst))
	if err := os.WriteFile(tmp, content, 0o644); err != nil {
		fmt.Fprintln(stderr, "release-probe: nothing placed:", err)
		return placeFailed
	}
	if code := rename([]string{tmp, dst}); code != 0 {
		_ = os.Remove(tmp)
		return placeFailed
	}
	if len(args) == 5 {
		return cli(args[3:])
	}
	return 0
}

// serve answers invocations read from in, one after another, until in
// ends: the provider keeps one exec open per router and pays for Docker's
// exec once instead of per read or change. A request is a line of the
// arguments' lengths in bytes, then the arguments; the answer is a line
// "<exit code> <length>", then that many bytes of output (stdout and stderr
// as one, as an exec mixes them).
func serve(in io.Reader, out io.Writer) int {
	// The greeting tells the provider this probe serves, and which build it
	// is (internal/probe.ServeGreeting, Identity): a provider with the same
	// build embedded need not place its own.
	if _, err := fmt.Fprintf(out, "release-probe serve 1 %s\n", identity()); err != nil {
		return 1
	}
	r := bufio.NewReader(in)
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return 0 // the provider hung up
		}
		var args []string
		for _, f := range strings.Fields(line) {
			n, err := strconv.Atoi(f)
			if err != nil || n < 0 || n > 1<<20 {
				fmt.Fprintf(os.Stderr, "release-probe: bad request line %q\n", line)
				return 2
			}
			arg := make([]byte, n)
			if _, err := io.ReadFull(r, arg); err != nil {
				return 0
			}
			args = append(args, string(arg))
		}
		var buf bytes.Buffer
		code := 2
		if len(args) == 0 || args[0] == "-serve" || args[0] == "-tally" {
			fmt.Fprintln(&buf, "usage: a request names an invocation other than -serve or -tally")
		} else {
			stdout, stderr = &buf, &buf
			code = run(args)
			stdout, stderr = os.Stdout, os.Stderr
		}
		answer := append([]byte(fmt.Sprintf("%d %d\n", code, buf.Len())), buf.Bytes()...)
		if _, err := out.Write(answer); err != nil {
			return 1
		}
	}
}

// identity is the SHA-256 of the probe's own executable, "-" when it
// cannot be read.
func identity() string {
	f, err := os.Open("/proc/self/exe")
	if err != nil {
		return "-"
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "-"
	}
	return hex.EncodeToString(h.Sum(nil))
}

// read writes every regular file of a directory (not below it) as a line
// "<name length> <content length>" followed by the name and the content: the
// router's configuration, read without Docker's archive API. A directory
// that is not there has no files.
func read(args []string) int {
	if len(args) != 1 {
		fmt.Fprintln(stderr, "usage: release-probe -read <dir>")
		return 2
	}
	entries, err := os.ReadDir(args[0])
	if errors.Is(err, os.ErrNotExist) {
		return 0
	}
	if err != nil {
		fmt.Fprintln(stderr, "release-probe:", err)
		return 1
	}
	var buf bytes.Buffer
	for _, e := range entries {
		if !e.Type().IsRegular() {
			continue
		}
		content, err := os.ReadFile(filepath.Join(args[0], e.Name()))
		if errors.Is(err, os.ErrNotExist) {
			continue // renamed away since the listing
		}
		if err != nil {
			fmt.Fprintln(stderr, "release-probe:", err)
			return 1
		}
		fmt.Fprintf(&buf, "%d %d\n%s", len(e.Name()), len(content), e.Name())
		buf.Write(content)
	}
	if _, err := stdout.Write(buf.Bytes()); err != nil {
		return 1
	}
	return 0
}

// syncPath flushes a file's or directory's contents to disk.
func syncPath(name string) error {
	f, err := os.Open(name)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := f.Sync(); err != nil {
		return fmt.Errorf("sync %s: %w", name, err)
	}
	return nil
}

// readHead reads the status line and headers; length is the Content-Length,
// or -1 when the body is chunked or ends with the connection.
func readHead(r *bufio.Reader) (status string, length int64, chunked bool, err error) {
	line, err := r.ReadString('\n')
	if err != nil {
		return "", 0, false, fmt.Errorf("reading the status line: %w", err)
	}
	status, length = strings.TrimSpace(line), -1
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return "", 0, false, fmt.Errorf("reading the headers: %w", err)
		}
		line = strings.TrimSpace(line)
		if line == "" {
			return status, length, chunked, nil
		}
		name, value, _ := strings.Cut(line, ":")
		value = strings.TrimSpace(value)
		switch strings.ToLower(strings.TrimSpace(name)) {
		case "content-length":
			n, err := strconv.ParseInt(value, 10, 64)
			if err != nil || n < 0 {
				return "", 0, false, fmt.Errorf("bad Content-Length %q", value)
			}
			length = n
		case "transfer-encoding":
			chunked = strings.EqualFold(value, "chunked")
		}
	}
}

// readChunked reads a chunked body. HAProxy's exporter chunks its answer
// even to an HTTP/1.0 request.
func readChunked(r *bufio.Reader) ([]byte, error) {
	var out []byte
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return nil, fmt.Errorf("reading a chunk size: %w", err)
		}
		hex, _, _ := strings.Cut(strings.TrimSpace(line), ";")
		size, err := strconv.ParseUint(hex, 16, 31)
		if err != nil {
			return nil, fmt.Errorf("bad chunk size %q", hex)
		}
		if size == 0 {
			return out, nil // trailers, if any, are not wanted
		}
		start := len(out)
		out = append(out, make([]byte, size)...)
		if _, err := io.ReadFull(r, out[start:]); err != nil {
			return nil, err
		}
		if crlf, err := r.ReadString('\n'); err != nil || strings.TrimSpace(crlf) != "" {
			return nil, errors.New("a chunk does not end where its size says")
		}
	}
}

func probe(addr, path string, timeout time.Duration) (string, error) {
	conn, r, err := get(addr, path, timeout)
	if err != nil {
		return "", err
	}
	defer conn.Close()
	line, err := r.ReadString('\n')
	if err != nil {
		return "", fmt.Errorf("reading the status line: %w", err)
	}
	return strings.TrimSpace(line), nil
}

// get sends the request; the deadline covers the whole exchange.
func get(addr, path string, timeout time.Duration) (net.Conn, *bufio.Reader, error) {
	conn, err := net.DialTimeout("tcp", addr, timeout)
	if err != nil {
		return nil, nil, err
	}
	_ = conn.SetDeadline(time.Now().Add(timeout))
	if _, err := fmt.Fprintf(conn, "GET %s HTTP/1.0\r\nHost: %s\r\nUser-Agent: release-probe\r\n\r\n", path, addr); err != nil {
		conn.Close()
		return nil, nil, err
	}
	return conn, bufio.NewReader(conn), nil
}
