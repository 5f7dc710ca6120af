package main

import (
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"
)

// defaultVersion is the version reported when APP_VERSION is not set.
// Release builds set it with -ldflags "-X main.defaultVersion=1.0.0", so
// that images of different versions differ even without any environment.
var defaultVersion = "dev"

// errorType is one entry of ERROR_TYPES: a named error that occurs with a
// probability on every request to "/".
type errorType struct {
	Name        string
	Probability float64
}

// config holds every knob of the server; see README.md.
type config struct {
	Version         string
	Port            int
	ErrorRate       float64
	Latency         time.Duration
	ErrorTypes      []errorType
	HealthFail      bool
	HealthDelay     time.Duration
	HealthLatency   time.Duration
	ShutdownTimeout time.Duration
}

// loadConfig reads the server knobs through getenv (os.Getenv in main,
// a map in tests). Every problem is reported, not only the first.
func loadConfig(getenv func(string) string) (config, error) {
	cfg := config{
		Version:         defaultVersion,
		Port:            8080,
		ShutdownTimeout: 10 * time.Second,
	}
	var errs []error

	if v := strings.TrimSpace(getenv("APP_VERSION")); v != "" {
		cfg.Version = v
	}

	if v := strings.TrimSpace(getenv("PORT")); v != "" {
		p, err := strconv.Atoi(v)
		if err != nil || p < 1 || p > 65535 {
			errs = append(errs, fmt.Errorf("PORT: %q is not a port number (1-65535)", v))
		} else {
			cfg.Port = p
		}
	}

	if v := strings.TrimSpace(getenv("ERROR_RATE")); v != "" {
		f, err := parseProbability(v)
		if err != nil {
			errs = append(errs, fmt.Errorf("ERROR_RATE: %w", err))
		} else {
			cfg.ErrorRate = f
		}
	}

	durations := []struct {
		name string
		dst  *time.Duration
	}{
		{"LATENCY", &cfg.Latency},
		{"HEALTH_DELAY", &cfg.HealthDelay},
		{"HEALTH_LATENCY", &cfg.HealthLatency},
		{"SHUTDOWN_TIMEOUT", &cfg.ShutdownTimeout},
	}
	for _, d := range durations {
		v := strings.TrimSpace(getenv(d.name))
		if v == "" {
			continue
		}
		dur, err := parseDuration(v)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", d.name, err))
			continue
		}
		*d.dst = dur
	}

	if v := getenv("ERROR_TYPES"); strings.TrimSpace(v) != "" {
		types, err := parseErrorTypes(v)
		if err != nil {
			errs = append(errs, fmt.Errorf("ERROR_TYPES: %w", err))
		} else {
			cfg.ErrorTypes = types
		}
	}

	switch h := strings.ToLower(strings.TrimSpace(getenv("HEALTH"))); h {
	case "", "ok":
	case "fail":
		cfg.HealthFail = true
	default:
		errs = append(errs, fmt.Errorf("HEALTH: %q is neither \"ok\" nor \"fail\"", h))
	}

	return cfg, errors.Join(errs...)
}

func parseProbability(s string) (float64, error) {
	f, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
	if err != nil || f < 0 || f > 1 || f != f {
		return 0, fmt.Errorf("%q is not a number between 0 and 1", s)
	}
	return f, nil
}

// parseDuration accepts a Go duration ("250ms", "1m30s") or a bare "0".
func parseDuration(s string) (time.Duration, error) {
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("%q is not a duration such as 250ms or 2s", s)
	}
	if d < 0 {
		return 0, fmt.Errorf("%q is negative", s)
	}
	return d, nil
}

// parseErrorTypes parses "timeout=0.05,auth=0.01". Names must be valid
// Prometheus label values we can print without escaping trouble: letters,
// digits, '_', '-', '.', ':'. The result is sorted by name.
func parseErrorTypes(s string) ([]errorType, error) {
	seen := map[string]bool{}
	var out []errorType
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		name, prob, ok := strings.Cut(part, "=")
		name = strings.TrimSpace(name)
		if !ok || name == "" {
			return nil, fmt.Errorf("%q is not name=probability", part)
		}
		if !validErrorName(name) {
			return nil, fmt.Errorf("error type name %q: use letters, digits, '_', '-', '.', ':'", name)
		}
		if seen[name] {
			return nil, fmt.Errorf("error type %q is listed twice", name)
		}
		seen[name] = true
		p, err := parseProbability(prob)
		if err != nil {
			return nil, fmt.Errorf("error type %q: %w", name, err)
		}
		out = append(out, errorType{Name: name, Probability: p})
	}
	if len(out) == 0 {
		return nil, errors.New("no error types given")
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

func validErrorName(name string) bool {
	for _, r := range name {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9':
		case r == '_', r == '-', r == '.', r == ':':
		default:
			return false
		}
	}
	return name != ""
}
