package main

import (
	"bytes"
	"log"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
)

func newLocalListener(t *testing.T) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return ln
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func testLogger(t *testing.T) *log.Logger { return log.New(testWriter{t}, "", 0) }

func TestRealMainUsage(t *testing.T) {
	cases := []struct {
		args []string
		env  map[string]string
		code int
		out  string
		err  string
	}{
		{[]string{"version"}, map[string]string{"APP_VERSION": "7.0"}, 0, "7.0\n", ""},
		{[]string{"version"}, nil, 0, defaultVersion + "\n", ""},
		{[]string{"bogus"}, nil, 2, "", "unknown command"},
		{[]string{"migrate"}, nil, 2, "", "usage: app migrate up|down"},
		{[]string{"migrate", "sideways"}, nil, 2, "", "usage"},
		{[]string{"migrate", "up"}, nil, 1, "", "DATABASE_URL is not set"},
		{[]string{"migrate", "down"}, map[string]string{"MIGRATE_FAIL": "often", "DATABASE_URL": "postgres://x"}, 1, "", "MIGRATE_FAIL"},
		{[]string{"serve"}, map[string]string{"ERROR_RATE": "2"}, 2, "", "ERROR_RATE"},
	}
	for _, tc := range cases {
		var out, errb bytes.Buffer
		code := realMain(tc.args, env(tc.env), &out, &errb)
		if code != tc.code || out.String() != tc.out || !strings.Contains(errb.String(), tc.err) {
			t.Errorf("%v: code %d stdout %q stderr %q; want %d %q %q", tc.args, code, out.String(), errb.String(), tc.code, tc.out, tc.err)
		}
	}
}

func TestHealthcheckCommand(t *testing.T) {
	for _, tc := range []struct {
		health string
		code   int
	}{{"ok", 0}, {"fail", 1}} {
		cfg, _ := loadConfig(env(map[string]string{"HEALTH": tc.health}))
		ln := newLocalListener(t)
		port := ln.Addr().(*net.TCPAddr).Port
		srv := newServer(cfg)
		go func() { _ = httpServe(ln, srv) }()
		var out, errb bytes.Buffer
		code := realMain([]string{"healthcheck"}, env(map[string]string{"PORT": itoa(port)}), &out, &errb)
		code2 := realMain([]string{"healthcheck", "http://" + ln.Addr().String() + "/healthz"}, env(nil), &out, &errb)
		ln.Close()
		if code != tc.code || code2 != tc.code {
			t.Errorf("HEALTH=%s: healthcheck exit %d / by URL %d (%s), want %d", tc.health, code, code2, errb.String(), tc.code)
		}
	}
}

func itoa(i int) string { return strconv.Itoa(i) }

func httpServe(ln net.Listener, s *server) error { return http.Serve(ln, s.handler()) }
