//go:build sim

package simulation

import "runtime"

func runtimeProcs() int { return runtime.GOMAXPROCS(0) }
