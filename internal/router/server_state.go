package router

import (
	"fmt"
	"sort"
	"strings"
)

// ServerState is one server as HAProxy itself sees it, read from its
// Prometheus exporter: the running worker's view, not the files on disk.
type ServerState struct {
	// Status is UP, DOWN, MAINT, DRAIN or NOLB. A server added by a reload
	// starts UP before any check has run; the first failing check turns it DOWN.
	Status string
	// CheckStatus is HAProxy's code for the last check (L7OK, L4CON, L7STS,
	// L7TOUT, …); "" until the first check has run.
	CheckStatus string
	// Weight is the live weight.
	Weight int
}

// Ready says that HAProxy's own check of the server has passed and the
// server is UP: only then may traffic be moved to it (a new server is UP
// before it was ever checked).
func (s ServerState) Ready() bool { return s.Status == "UP" && s.CheckStatus == "L7OK" }

// describe says what state a server is in, in words: "is DOWN (Layer 7
// timeout, L7TOUT)", "is UP (not checked yet)".
func (s ServerState) describe() string {
	if s.Status == "" {
		return "is not in the router's running configuration"
	}
	return fmt.Sprintf("is %s (%s)", s.Status, CheckStatusText(s.CheckStatus))
}

// checkStatusWords are HAProxy's check result codes (its manual's
// "check_status") in words.
var checkStatusWords = map[string]string{
	"UNK":      "unknown",
	"INI":      "not checked yet",
	"SOCKERR":  "socket error",
	"L4OK":     "Layer 4 check passed",
	"L4TOUT":   "Layer 4 timeout",
	"L4CON":    "Layer 4 connection problem, such as a refused connection",
	"L6OK":     "Layer 6 check passed",
	"L6TOUT":   "Layer 6 (TLS) timeout",
	"L6RSP":    "Layer 6 invalid response",
	"L7OK":     "Layer 7 check passed",
	"L7OKC":    "Layer 7 check conditionally passed",
	"L7TOUT":   "Layer 7 timeout",
	"L7RSP":    "Layer 7 invalid response",
	"L7STS":    "Layer 7 wrong status",
	"HANA":     "health analysis error",
	"PROCERR":  "external check error",
	"PROCTOUT": "external check timeout",
	"PROCOK":   "external check passed",
}

// CheckStatusText says a check result code in words, with the code:
// "Layer 7 timeout, L7TOUT"; no code, or INI, is "not checked yet".
func CheckStatusText(code string) string {
	if code == "" || code == "INI" {
		return "not checked yet"
	}
	if w, ok := checkStatusWords[code]; ok {
		return w + ", " + code
	}
	return code
}

// describeServers lists servers and their states, sorted by name.
func describeServers(states map[string]ServerState) string {
	names := make([]string, 0, len(states))
	for name := range states {
		names = append(names, name)
	}
	sort.Strings(names)
	parts := make([]string, 0, len(names))
	for _, name := range names {
		parts = append(parts, name+" "+states[name].describe())
	}
	return strings.Join(parts, "; ")
}
