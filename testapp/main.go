// Command testapp is the small HTTP application the acceptance tests of
// terraform-provider-release deploy. Every behaviour is a knob set by an
// environment variable; see README.md.
//
//	/app                  serve HTTP (same as /app serve)
//	/app migrate up|down  run the database migration of this version
//	/app healthcheck      GET /healthz on the local server, exit 0 if it answers 200
//	/app healthcheck URL  GET that URL instead (a check from inside a network)
//	/app version          print the version
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"
)

func main() {
	os.Exit(realMain(os.Args[1:], os.Getenv, os.Stdout, os.Stderr))
}

func realMain(args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	cmd := "serve"
	if len(args) > 0 {
		cmd = args[0]
		args = args[1:]
	}
	switch cmd {
	case "serve":
		return serveMain(getenv, stderr)
	case "migrate":
		if len(args) != 1 || (args[0] != "up" && args[0] != "down") {
			fmt.Fprintln(stderr, "usage: app migrate up|down")
			return 2
		}
		if err := migrateMain(args[0], getenv, stdout); err != nil {
			fmt.Fprintf(stderr, "migrate %s: error: %v\n", args[0], err)
			return 1
		}
		return 0
	case "healthcheck":
		path := "/healthz"
		if len(args) > 0 {
			path = args[0]
		}
		if err := healthcheck(getenv, path); err != nil {
			fmt.Fprintf(stderr, "healthcheck: %v\n", err)
			return 1
		}
		return 0
	case "version", "-version", "--version":
		cfg, _ := loadConfig(getenv)
		fmt.Fprintln(stdout, cfg.Version)
		return 0
	default:
		fmt.Fprintf(stderr, "unknown command %q; usage: app [serve | migrate up|down | healthcheck [path|URL] | version]\n", cmd)
		return 2
	}
}

func serveMain(getenv func(string) string, stderr io.Writer) int {
	logger := log.New(stderr, "", log.LstdFlags|log.LUTC)
	cfg, err := loadConfig(getenv)
	if err != nil {
		logger.Printf("invalid configuration:\n%v", err)
		return 2
	}
	ln, err := net.Listen("tcp", ":"+strconv.Itoa(cfg.Port))
	if err != nil {
		logger.Printf("listen: %v", err)
		return 1
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	if err := run(ctx, cfg, ln, logger); err != nil {
		logger.Printf("%v", err)
		return 1
	}
	return 0
}

// run serves on ln until ctx is done, then shuts down gracefully: the
// listener closes at once, in-flight requests get SHUTDOWN_TIMEOUT to finish.
func run(ctx context.Context, cfg config, ln net.Listener, logger *log.Logger) error {
	s := newServer(cfg)
	srv := &http.Server{
		Handler:           s.handler(),
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          logger,
	}
	logger.Printf("testapp version=%s listening on %s (error_rate=%g latency=%s error_types=%v health_fail=%t health_delay=%s health_latency=%s)",
		cfg.Version, ln.Addr(), cfg.ErrorRate, cfg.Latency, cfg.ErrorTypes, cfg.HealthFail, cfg.HealthDelay, cfg.HealthLatency)

	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()

	select {
	case err := <-errc:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}

	logger.Printf("shutting down (timeout %s)", cfg.ShutdownTimeout)
	close(s.stopping) // event streams end: Shutdown waits for no idle stream
	sctx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		_ = srv.Close()
		return fmt.Errorf("shutdown: %w", err)
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve: %w", err)
	}
	logger.Printf("stopped")
	return nil
}

// healthcheck lets a FROM scratch container check itself (there is no curl
// in the image): HEALTHCHECK CMD ["/app", "healthcheck"]. Given a full URL
// instead of a path, it checks that URL (e.g. another container by name).
func healthcheck(getenv func(string) string, target string) error {
	url := target
	if !strings.HasPrefix(target, "http://") && !strings.HasPrefix(target, "https://") {
		cfg, err := loadConfig(getenv)
		if err != nil {
			return err
		}
		if !strings.HasPrefix(target, "/") {
			target = "/" + target
		}
		url = "http://127.0.0.1:" + strconv.Itoa(cfg.Port) + target
	}
	client := &http.Client{Timeout: 5 * time.Second}
	resp, err := client.Get(url)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return nil
}
