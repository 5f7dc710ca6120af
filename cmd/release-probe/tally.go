package main

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
)

// tally counts the requests a router logs while a canary runs (-tally): it
// binds a UDP socket on the router's loopback, where the canary's route
// sends one line per request (internal/router.RequestLogFormat), and
// answers each line read from stdin with the counts so far. HAProxy's old
// workers, which finish their connections after a reload, send to the same
// socket as the new ones, so no reload by anyone loses a request. The
// counts live as long as this process: the provider's exec session, which
// ends with the provider.
//
// Its first line is "release-probe tally 1 127.0.0.1:<port>"; each answer
// is "0 <length>\n" and that many bytes (the -serve framing):
//
//	received <datagrams> unparsed <datagrams> dropped <datagrams>
//	<backend> <server> <requests> <5xx> <latency sum in ms> <bucket>,<bucket>,...
//
// dropped is the kernel's count of datagrams the socket could not take (its
// buffer was full): counts with drops are low by up to that many.
func tally(args []string, in io.Reader, out io.Writer) int {
	if len(args) != 1 {
		fmt.Fprintln(stderr, "usage: release-probe -tally <latency bounds in seconds, comma-separated>")
		return 2
	}
	bounds, err := parseBounds(args[0])
	if err != nil {
		fmt.Fprintln(stderr, "release-probe:", err)
		return 2
	}
	conn, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		fmt.Fprintln(stderr, "release-probe:", err)
		return 1
	}
	defer conn.Close()
	// A burst of requests must not overflow the socket while the reader is
	// descheduled; the kernel caps this at net.core.rmem_max.
	_ = conn.SetReadBuffer(8 << 20)
	port := conn.LocalAddr().(*net.UDPAddr).Port
	t := newTallies(bounds)
	go func() {
		buf := make([]byte, 4096)
		for {
			n, _, err := conn.ReadFromUDP(buf)
			if err != nil {
				return // closed
			}
			t.add(buf[:n])
		}
	}()
	if _, err := fmt.Fprintf(out, "release-probe tally 1 127.0.0.1:%d\n", port); err != nil {
		return 1
	}
	r := bufio.NewReader(in)
	for {
		if _, err := r.ReadString('\n'); err != nil {
			return 0 // the provider hung up
		}
		snapshot := t.write(udpDrops("/proc/self/net/udp", port))
		if _, err := fmt.Fprintf(out, "0 %d\n%s", len(snapshot), snapshot); err != nil {
			return 1
		}
	}
}

func parseBounds(s string) ([]float64, error) {
	var out []float64
	for _, f := range strings.Split(s, ",") {
		v, err := strconv.ParseFloat(f, 64)
		if err != nil || v <= 0 || (len(out) > 0 && v <= out[len(out)-1]) {
			return nil, fmt.Errorf("latency bounds %q are not increasing positive numbers", s)
		}
		out = append(out, v)
	}
	return out, nil
}

// serverTally is one server's counts.
type serverTally struct {
	requests, errors int64
	latencyMs        int64 // the sum of the requests' response times
	buckets          []int64
}

type tallies struct {
	mu                 sync.Mutex
	boundsMs           []float64
	received, unparsed int64
	servers            map[[2]string]*serverTally
}

func newTallies(bounds []float64) *tallies {
	t := &tallies{servers: map[[2]string]*serverTally{}}
	for _, b := range bounds {
		t.boundsMs = append(t.boundsMs, b*1000)
	}
	return t
}

// add counts one logged request: "<backend> <server> <status> <Tr> <Ta>"
// (HAProxy's %b %s %ST %Tr %Ta). Tr, the server's response time, is -1
// when no response came; the request's whole time (Ta) counts then. A
// request no server took (<NOSRV>) counts for no server.
func (t *tallies) add(line []byte) {
	f := strings.Fields(string(line))
	t.mu.Lock()
	defer t.mu.Unlock()
	t.received++
	if len(f) != 5 {
		t.unparsed++
		return
	}
	status, err1 := strconv.Atoi(f[2])
	tr, err2 := strconv.ParseInt(f[3], 10, 64)
	ta, err3 := strconv.ParseInt(f[4], 10, 64)
	if err1 != nil || err2 != nil || err3 != nil {
		t.unparsed++
		return
	}
	if f[1] == "<NOSRV>" {
		return
	}
	key := [2]string{f[0], f[1]}
	s := t.servers[key]
	if s == nil {
		s = &serverTally{buckets: make([]int64, len(t.boundsMs)+1)}
		t.servers[key] = s
	}
	s.requests++
	if status >= 500 && status <= 599 {
		s.errors++
	}
	ms := tr
	if ms < 0 {
		ms = ta
	}
	i := len(t.boundsMs) // slower than every bound, or unknown
	if ms >= 0 {
		s.latencyMs += ms
		i = sort.Search(len(t.boundsMs), func(i int) bool { return float64(ms) <= t.boundsMs[i] })
	}
	s.buckets[i]++
}

// write is the answer to one tally request.
func (t *tallies) write(dropped int64) []byte {
	t.mu.Lock()
	defer t.mu.Unlock()
	var buf bytes.Buffer
	fmt.Fprintf(&buf, "received %d unparsed %d dropped %d\n", t.received, t.unparsed, dropped)
	keys := make([][2]string, 0, len(t.servers))
	for k := range t.servers {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return keys[i][0]+" "+keys[i][1] < keys[j][0]+" "+keys[j][1] })
	for _, k := range keys {
		s := t.servers[k]
		b := make([]string, len(s.buckets))
		for i, n := range s.buckets {
			b[i] = strconv.FormatInt(n, 10)
		}
		fmt.Fprintf(&buf, "%s %s %d %d %d %s\n", k[0], k[1], s.requests, s.errors, s.latencyMs, strings.Join(b, ","))
	}
	return buf.Bytes()
}

// udpDrops reads the kernel's drop counter of the IPv4 UDP socket bound to
// 127.0.0.1:port from a /proc/net/udp table (its last column); -1 when the
// socket is not found, so that an unknown loss is never reported as none.
func udpDrops(table string, port int) int64 {
	content, err := os.ReadFile(table)
	if err != nil {
		return -1
	}
	local := fmt.Sprintf("0100007F:%04X", port)
	for _, line := range strings.Split(string(content), "\n") {
		f := strings.Fields(line)
		if len(f) < 13 || f[1] != local {
			continue
		}
		if n, err := strconv.ParseInt(f[len(f)-1], 10, 64); err == nil {
			return n
		}
	}
	return -1
}
