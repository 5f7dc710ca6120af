package main

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"runtime/trace"
)

// profileEnv names a directory where the provider writes a CPU profile, an
// execution trace and block, mutex and heap profiles of its process
// (files named with its pid), for a developer looking at where a plan's
// time goes. Unset, nothing is recorded.
const profileEnv = "RELEASE_PROVIDER_PROFILE_DIR"

// startProfiling starts the recording profileEnv asks for and returns the
// function that writes it out when the provider stops serving.
func startProfiling() func() {
	dir := os.Getenv(profileEnv)
	if dir == "" {
		return func() {}
	}
	name := func(kind string) string { return filepath.Join(dir, fmt.Sprintf("%s-%d.out", kind, os.Getpid())) }
	cpu, err := os.Create(name("cpu"))
	if err != nil {
		return func() {}
	}
	tr, err := os.Create(name("trace"))
	if err != nil {
		cpu.Close()
		return func() {}
	}
	_ = pprof.StartCPUProfile(cpu)
	_ = trace.Start(tr)
	runtime.SetBlockProfileRate(int(1e5)) // one sample per 100µs blocked
	runtime.SetMutexProfileFraction(10)
	return func() {
		trace.Stop()
		pprof.StopCPUProfile()
		tr.Close()
		cpu.Close()
		for _, kind := range []string{"block", "mutex", "heap"} {
			if f, err := os.Create(name(kind)); err == nil {
				_ = pprof.Lookup(kind).WriteTo(f, 0)
				f.Close()
			}
		}
	}
}
