package canary

import "time"

// The defaults of a policy's settings: what release_canary's schema fills
// in, and what a policy built from a configuration that leaves them out takes.
const (
	// DefaultInterval is the time between analyses.
	DefaultInterval = 30 * time.Second
	// DefaultMinRequests is how many requests each side needs before a check counts.
	DefaultMinRequests = 100
	// DefaultErrorLabel is the label of the error counter that holds the error type.
	DefaultErrorLabel = "type"
	// DefaultNewTypeIntervals is how many consecutive intervals a new error type must appear in.
	DefaultNewTypeIntervals = 2
	// DefaultDetectDecrease says whether a significant decrease of a known error's rate also fails.
	DefaultDetectDecrease = false
	// DefaultFailureLimit is how many failed analyses abort the canary.
	DefaultFailureLimit = 1
	// DefaultInconclusiveLimit is how many inconclusive analyses in a row, at the end of a step, abort the canary.
	DefaultInconclusiveLimit = 3
	// DefaultBaseline says whether a baseline of the stable version runs beside the canary.
	DefaultBaseline = true
	// DefaultFalseAlarmRate is the chance a canary no worse than its baseline is aborted, at most.
	DefaultFalseAlarmRate = 0.01
	// DefaultOnUnderpowered is what a step whose test could not have caught must_catch does.
	DefaultOnUnderpowered = "abort"
	// DefaultOnInterrupt is what the next apply does with a canary an interrupted apply left mid-way.
	DefaultOnInterrupt = "abort"
)
