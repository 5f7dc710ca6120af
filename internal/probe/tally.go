package probe

import (
	"fmt"
	"strconv"
	"strings"
)

// The provider's side of `release-probe -tally` (cmd/release-probe/tally.go
// holds the other): a probe that counts the requests a canary's route logs
// to a UDP socket it binds in the router, for as long as its exec stays open.

// TallyArgs are the arguments that start a tally with these response-time
// bounds (seconds, increasing).
func TallyArgs(bounds []float64) []string {
	parts := make([]string, len(bounds))
	for i, b := range bounds {
		parts[i] = strconv.FormatFloat(b, 'g', -1, 64)
	}
	return []string{"-tally", strings.Join(parts, ",")}
}

// TallyGreeting begins the first line of a tally, followed by the address
// (127.0.0.1:port in the router) the route must log to.
const TallyGreeting = "release-probe tally 1"

// ParseTallyGreeting reads a tally's first line: the address it listens
// on, ok when it is a tally's greeting.
func ParseTallyGreeting(line string) (addr string, ok bool) {
	rest, ok := strings.CutPrefix(strings.TrimSuffix(line, "\n"), TallyGreeting+" ")
	if !ok || !strings.HasPrefix(rest, "127.0.0.1:") || strings.ContainsAny(rest, " \n") {
		return "", false
	}
	return rest, true
}

// Tally is what a tally counted since it started.
type Tally struct {
	// Received is every datagram read, Unparsed those that were not a
	// request line.
	Received, Unparsed int64
	// Dropped is how many datagrams the socket could not take (its buffer
	// was full): the counts are low by up to that many. -1 when unknown.
	Dropped int64
	// Servers by backend, then by server.
	Servers map[string]map[string]ServerTally
}

// ServerTally is one server's requests.
type ServerTally struct {
	Requests, Errors int64 // every request, 5xx answers
	LatencyMs        int64 // the sum of their response times
	// Buckets counts requests by response time: Buckets[i] took at most
	// the tally's bound i, the last is slower than every bound (or unknown).
	Buckets []int64
}

// ParseTally decodes one answer of a tally.
func ParseTally(out string) (Tally, error) {
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	t := Tally{Servers: map[string]map[string]ServerTally{}}
	if _, err := fmt.Sscanf(lines[0], "received %d unparsed %d dropped %d", &t.Received, &t.Unparsed, &t.Dropped); err != nil {
		return Tally{}, fmt.Errorf("the request tally answered %q", lines[0])
	}
	for _, line := range lines[1:] {
		f := strings.Fields(line)
		if len(f) != 6 {
			return Tally{}, fmt.Errorf("the request tally answered %q", line)
		}
		var s ServerTally
		var err error
		for i, p := range []*int64{&s.Requests, &s.Errors, &s.LatencyMs} {
			if *p, err = strconv.ParseInt(f[2+i], 10, 64); err != nil {
				return Tally{}, fmt.Errorf("the request tally answered %q", line)
			}
		}
		for _, b := range strings.Split(f[5], ",") {
			n, err := strconv.ParseInt(b, 10, 64)
			if err != nil {
				return Tally{}, fmt.Errorf("the request tally answered %q", line)
			}
			s.Buckets = append(s.Buckets, n)
		}
		if t.Servers[f[0]] == nil {
			t.Servers[f[0]] = map[string]ServerTally{}
		}
		t.Servers[f[0]][f[1]] = s
	}
	return t, nil
}
