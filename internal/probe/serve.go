package probe

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"
)

// The provider's side of `release-probe -serve` (cmd/release-probe holds the
// other): one exec of the probe answers many invocations, so a read or a
// change of the router costs a round trip over an open stream instead of
// Docker's exec create, start and inspect.

// ServeArgs are the arguments that start the probe answering invocations.
var ServeArgs = []string{"-serve"}

// ServeGreeting begins the line a serving probe writes first, followed by
// its Identity: a probe that cannot serve (one placed by an earlier
// provider) writes something else.
const ServeGreeting = "release-probe serve 1"

// ParseGreeting reads a serving probe's first line: ok when it serves, with
// the identity of its build.
func ParseGreeting(line string) (identity string, ok bool) {
	rest, ok := strings.CutPrefix(strings.TrimSuffix(line, "\n"), ServeGreeting+" ")
	if !ok || rest == "" || strings.ContainsAny(rest, " \n") {
		return "", false
	}
	return rest, true
}

var (
	identityMu sync.Mutex
	identities = map[string]string{}
)

// Identity is the SHA-256 of the probe built for arch, as a serving probe
// of that build reports its own.
func Identity(arch string) (string, error) {
	identityMu.Lock()
	defer identityMu.Unlock()
	if id, ok := identities[arch]; ok {
		return id, nil
	}
	b, err := Binary(arch)
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(b)
	identities[arch] = hex.EncodeToString(sum[:])
	return identities[arch], nil
}

// ReadArgs are the arguments of an invocation that writes a directory's
// regular files (ReadFiles decodes its output).
func ReadArgs(dir string) []string { return []string{"-read", dir} }

// maxAnswer bounds one answer: the router's metrics of hundreds of
// environments, or its configuration files.
const maxAnswer = 64 << 20

// WriteRequest writes one invocation: a line of the arguments' lengths, then
// the arguments.
func WriteRequest(w io.Writer, args []string) error {
	if len(args) == 0 {
		return fmt.Errorf("an invocation needs arguments")
	}
	var buf bytes.Buffer
	for i, a := range args {
		if i > 0 {
			buf.WriteByte(' ')
		}
		buf.WriteString(strconv.Itoa(len(a)))
	}
	buf.WriteByte('\n')
	for _, a := range args {
		buf.WriteString(a)
	}
	_, err := w.Write(buf.Bytes())
	return err
}

// ReadAnswer reads one invocation's answer: its exit code and its output.
func ReadAnswer(r *bufio.Reader) (code int, out string, err error) {
	line, err := r.ReadString('\n')
	if err != nil {
		return 0, "", fmt.Errorf("reading the probe's answer: %w", err)
	}
	f := strings.Fields(line)
	if len(f) != 2 {
		return 0, "", fmt.Errorf("the probe answered %q", strings.TrimSpace(line))
	}
	code, err1 := strconv.Atoi(f[0])
	n, err2 := strconv.Atoi(f[1])
	if err1 != nil || err2 != nil || n < 0 || n > maxAnswer {
		return 0, "", fmt.Errorf("the probe answered %q", strings.TrimSpace(line))
	}
	buf := make([]byte, n)
	if _, err := io.ReadFull(r, buf); err != nil {
		return 0, "", fmt.Errorf("reading the probe's answer: %w", err)
	}
	return code, string(buf), nil
}

// ReadFiles decodes the output of a -read invocation: file contents by name.
func ReadFiles(out string) (map[string][]byte, error) {
	files := map[string][]byte{}
	for out != "" {
		head, rest, ok := strings.Cut(out, "\n")
		f := strings.Fields(head)
		if !ok || len(f) != 2 {
			return nil, fmt.Errorf("the probe's file listing is cut at %q", head)
		}
		nameLen, err1 := strconv.Atoi(f[0])
		size, err2 := strconv.Atoi(f[1])
		if err1 != nil || err2 != nil || nameLen <= 0 || size < 0 || nameLen+size > len(rest) {
			return nil, fmt.Errorf("the probe's file listing is cut at %q", head)
		}
		files[rest[:nameLen]] = []byte(rest[nameLen : nameLen+size])
		out = rest[nameLen+size:]
	}
	return files, nil
}
