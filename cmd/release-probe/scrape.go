package main

import (
	"bytes"
	"fmt"
	"io"
	"strings"
)

// scrapeAttempts bounds how often -scrape tries for an answer whose worker
// is known: each reload in between costs one.
const scrapeAttempts = 3

// scrape writes a metrics body as -body does, preceded by the line
// "# worker <pid>": the HAProxy worker that served it. Its runtime API
// names the worker (show info's Pid) before and after the GET; when both
// name the same, no reload came in between and that worker answered. When
// no attempt is sure, the body comes without the line (the counters'
// reader then infers reloads as before).
func scrape(args []string) int {
	if len(args) < 3 {
		fmt.Fprintln(stderr, "usage: release-probe -scrape <socket> <port> <path> [timeout]")
		return 2
	}
	socket := args[0]
	saved := stdout
	defer func() { stdout = saved }()
	var answer bytes.Buffer
	for attempt := 0; attempt < scrapeAttempts; attempt++ {
		before := workerPid(socket)
		answer.Reset()
		stdout = &answer
		code := body(args[1:])
		stdout = saved
		if code != 0 {
			return code
		}
		if before != "" && workerPid(socket) == before {
			fmt.Fprintf(stdout, "# worker %s\n", before)
			break
		}
	}
	if _, err := io.Copy(stdout, &answer); err != nil {
		return 1
	}
	return 0
}

// workerPid is the Pid the runtime API's worker reports, "" when unknown.
func workerPid(socket string) string {
	savedOut, savedErr := stdout, stderr
	defer func() { stdout, stderr = savedOut, savedErr }()
	var out bytes.Buffer
	stdout, stderr = &out, io.Discard
	if cli([]string{socket, "show info"}) != 0 {
		return ""
	}
	for _, line := range strings.Split(out.String(), "\n") {
		if v, ok := strings.CutPrefix(line, "Pid: "); ok {
			return strings.TrimSpace(v)
		}
	}
	return ""
}
