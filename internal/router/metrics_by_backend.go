package router

import (
	"bufio"
	"bytes"
	"io"
	"strings"
)

// stateFamilies are the exporter's families ParseServerStatesByBackend reads.
var stateFamilies = []string{"haproxy_server_status", "haproxy_server_check_status", "haproxy_server_weight"}

// ParseServerStatesByBackend is ParseServerStates for every backend at
// once, by backend and server: a refresh reads a router's exporter once
// for all the environments it serves. Only the state, check status and
// weight series are parsed; the exporter's other families (most of its
// text) are skipped unparsed.
func ParseServerStatesByBackend(r io.Reader) (map[string]map[string]ServerState, error) {
	var kept bytes.Buffer
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64*1024), 1<<20)
	for sc.Scan() {
		if line := sc.Text(); isStateLine(line) {
			kept.WriteString(line)
			kept.WriteByte('\n')
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	families, err := parseExporter(&kept)
	if err != nil {
		return nil, err
	}
	out := map[string]map[string]ServerState{}
	each := func(family string, fn func(s *ServerState, labels map[string]string, v float64)) {
		f, ok := families[family]
		if !ok {
			return
		}
		for _, m := range f.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			backend, server := labels["proxy"], labels["server"]
			if server == "" {
				continue
			}
			if out[backend] == nil {
				out[backend] = map[string]ServerState{}
			}
			s := out[backend][server]
			fn(&s, labels, value(f.GetType(), m))
			out[backend][server] = s
		}
	}
	each("haproxy_server_status", func(s *ServerState, labels map[string]string, v float64) {
		if v == 1 {
			s.Status = labels["state"]
		}
	})
	each("haproxy_server_check_status", func(s *ServerState, labels map[string]string, v float64) {
		if v == 1 {
			s.CheckStatus = labels["state"]
		}
	})
	each("haproxy_server_weight", func(s *ServerState, _ map[string]string, v float64) {
		s.Weight = int(v)
	})
	return out, nil
}

// isStateLine says whether an exporter line belongs to one of the state
// families: its series, or its # HELP and # TYPE lines.
func isStateLine(line string) bool {
	name := line
	if rest, ok := strings.CutPrefix(line, "# HELP "); ok {
		name = rest
	} else if rest, ok := strings.CutPrefix(line, "# TYPE "); ok {
		name = rest
	}
	for _, f := range stateFamilies {
		if rest, ok := strings.CutPrefix(name, f); ok && (rest == "" || rest[0] == '{' || rest[0] == ' ') {
			return true
		}
	}
	return false
}
