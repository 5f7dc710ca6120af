package router

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/releasekit/terraform-provider-release/internal/docker"
)

// Reloads while clients keep their connections alive: the worker a reload
// stops still answers the requests those connections carry, from the
// servers it has. Its stopped backend counts no usable server, so a route's
// "no server" answer must not fire there (found by TestAccFault05 in CI).
func TestReloadUnderKeepAliveRealHAProxy(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	engine, id := realRouter(t, docker.Port{Internal: 8080, External: port, HostIP: "127.0.0.1"})
	ctx := context.Background()
	c := &Controller{Docker: engine}
	route := Route{Environment: "prod", Service: "web", ListenPort: 8080, HealthPath: "/healthz", CheckInterval: time.Second,
		Servers: []Server{{Name: "r1-1", Address: "127.0.0.1:18080", Weight: 100}}}
	if err := c.Apply(ctx, id, map[string][]byte{fakeAppFile: []byte(fakeApp), route.FileName(): mustRenderRoute(t, route)}); err != nil {
		t.Fatal(err)
	}
	url := fmt.Sprintf("http://127.0.0.1:%d/healthz", port) // the fake app answers 204 there
	var (
		requests, refused atomic.Int64
		mu                sync.Mutex
		bad               []string
		stop              = make(chan struct{})
		wg                sync.WaitGroup
	)
	for range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 1}, Timeout: 5 * time.Second}
			for {
				select {
				case <-stop:
					return
				default:
				}
				resp, err := client.Get(url)
				if err != nil {
					refused.Add(1) // a kept-alive connection closed by the stopping worker: retried by real clients
					continue
				}
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				requests.Add(1)
				if resp.StatusCode != http.StatusNoContent {
					mu.Lock()
					bad = append(bad, fmt.Sprintf("HTTP %d %q", resp.StatusCode, body))
					mu.Unlock()
				}
			}
		}()
	}
	// A setting of the route changes: each apply reloads.
	for i := 0; i < 4; i++ {
		time.Sleep(400 * time.Millisecond)
		route.CheckInterval = time.Duration(i+2) * time.Second
		if err := c.Apply(ctx, id, map[string][]byte{route.FileName(): mustRenderRoute(t, route)}); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(400 * time.Millisecond)
	close(stop)
	wg.Wait()
	t.Logf("%d requests over 4 reloads, %d connection errors, %d bad answers", requests.Load(), refused.Load(), len(bad))
	if requests.Load() < 100 {
		t.Fatalf("only %d requests reached the router", requests.Load())
	}
	if len(bad) > 0 {
		t.Errorf("%d answers were not the app's across reloads: %v", len(bad), bad[:min(len(bad), 5)])
	}
}
