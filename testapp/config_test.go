package main

import (
	"reflect"
	"strings"
	"testing"
	"time"
)

func env(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

func TestLoadConfigDefaults(t *testing.T) {
	cfg, err := loadConfig(env(nil))
	if err != nil {
		t.Fatal(err)
	}
	want := config{Version: defaultVersion, Port: 8080, ShutdownTimeout: 10 * time.Second}
	if !reflect.DeepEqual(cfg, want) {
		t.Fatalf("got %+v, want %+v", cfg, want)
	}
}

func TestLoadConfigAll(t *testing.T) {
	cfg, err := loadConfig(env(map[string]string{
		"APP_VERSION":      "2.0.0",
		"PORT":             "9090",
		"ERROR_RATE":       "0.25",
		"LATENCY":          "150ms",
		"ERROR_TYPES":      " timeout=0.05, auth=0.01 ,",
		"HEALTH":           "FAIL",
		"HEALTH_DELAY":     "3s",
		"HEALTH_LATENCY":   "6s",
		"SHUTDOWN_TIMEOUT": "1m",
	}))
	if err != nil {
		t.Fatal(err)
	}
	want := config{
		Version:         "2.0.0",
		Port:            9090,
		ErrorRate:       0.25,
		Latency:         150 * time.Millisecond,
		ErrorTypes:      []errorType{{"auth", 0.01}, {"timeout", 0.05}},
		HealthFail:      true,
		HealthDelay:     3 * time.Second,
		HealthLatency:   6 * time.Second,
		ShutdownTimeout: time.Minute,
	}
	if !reflect.DeepEqual(cfg, want) {
		t.Fatalf("got %+v, want %+v", cfg, want)
	}
}

func TestLoadConfigErrors(t *testing.T) {
	cases := map[string]struct {
		env  map[string]string
		want []string
	}{
		"port":            {map[string]string{"PORT": "http"}, []string{"PORT"}},
		"port range":      {map[string]string{"PORT": "70000"}, []string{"PORT"}},
		"rate high":       {map[string]string{"ERROR_RATE": "1.5"}, []string{"ERROR_RATE"}},
		"rate negative":   {map[string]string{"ERROR_RATE": "-0.1"}, []string{"ERROR_RATE"}},
		"rate nan":        {map[string]string{"ERROR_RATE": "NaN"}, []string{"ERROR_RATE"}},
		"latency":         {map[string]string{"LATENCY": "100"}, []string{"LATENCY"}},
		"latency neg":     {map[string]string{"LATENCY": "-1s"}, []string{"LATENCY", "negative"}},
		"health":          {map[string]string{"HEALTH": "maybe"}, []string{"HEALTH"}},
		"health delay":    {map[string]string{"HEALTH_DELAY": "soon"}, []string{"HEALTH_DELAY"}},
		"health latency":  {map[string]string{"HEALTH_LATENCY": "-1s"}, []string{"HEALTH_LATENCY"}},
		"shutdown":        {map[string]string{"SHUTDOWN_TIMEOUT": "x"}, []string{"SHUTDOWN_TIMEOUT"}},
		"types no eq":     {map[string]string{"ERROR_TYPES": "timeout"}, []string{"ERROR_TYPES", "name=probability"}},
		"types prob":      {map[string]string{"ERROR_TYPES": "timeout=2"}, []string{"ERROR_TYPES", "timeout"}},
		"types dup":       {map[string]string{"ERROR_TYPES": "a=0.1,a=0.2"}, []string{"twice"}},
		"types name":      {map[string]string{"ERROR_TYPES": `bad"name=0.1`}, []string{"bad\\\"name"}},
		"types empty":     {map[string]string{"ERROR_TYPES": " , "}, []string{"no error types"}},
		"several at once": {map[string]string{"PORT": "x", "LATENCY": "y"}, []string{"PORT", "LATENCY"}},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := loadConfig(env(tc.env))
			if err == nil {
				t.Fatal("expected an error")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
}

func TestParseErrorTypesSorted(t *testing.T) {
	got, err := parseErrorTypes("z=1,a=0,m.x:y-1=0.5")
	if err != nil {
		t.Fatal(err)
	}
	want := []errorType{{"a", 0}, {"m.x:y-1", 0.5}, {"z", 1}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
}
