package loadgen

import (
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"
)

// The counter counts what the server answered: failures are not hidden.
func TestCountsAnswers(t *testing.T) {
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-App-Version", "1.0.0")
		if n.Add(1)%4 == 0 {
			w.WriteHeader(http.StatusInternalServerError)
		}
	}))
	run := Start(Config{URL: srv.URL, Rate: 200, Workers: 2, KeepAlive: true})
	time.Sleep(300 * time.Millisecond)
	srv.Close() // later requests fail to connect
	time.Sleep(100 * time.Millisecond)
	s := run.Stop()
	if s.Requests == 0 || s.OK == 0 || s.Non2xx == 0 || s.Errors == 0 {
		t.Fatalf("want successes, 5xx and connection errors counted, got %s", s)
	}
	if s.OK+s.Non2xx+s.Errors != s.Requests || s.ByVersion["1.0.0"] != s.OK {
		t.Errorf("counts do not add up: %s", s)
	}
	if s.Failed() != s.Non2xx+s.Errors {
		t.Errorf("Failed() = %d", s.Failed())
	}
}

// Finish counts every request the server answered, the slow last ones too:
// Stop would drop those under way.
func TestFinishCountsRequestsUnderWay(t *testing.T) {
	var served atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(30 * time.Millisecond)
		served.Add(1)
	}))
	defer srv.Close()
	run := Start(Config{URL: srv.URL, Rate: 400, Workers: 8, KeepAlive: true})
	time.Sleep(200 * time.Millisecond)
	s := run.Finish()
	if s.Requests == 0 || int64(s.Requests) != served.Load() {
		t.Errorf("counted %d requests, the server answered %d", s.Requests, served.Load())
	}
}
