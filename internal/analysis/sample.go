package analysis

// Policy is how a canary is judged.
type Policy struct {
	// MinRequests is the fewest requests on each side for a look to pass;
	// below it a look is inconclusive, never a pass (a gross failure can
	// still fail it: the tests are exact at any count).
	MinRequests int
	// MaxErrorRate fails a canary whose 5xx share is significantly above it; 0 turns it off.
	MaxErrorRate float64
	// MaxLatency fails a canary whose mean response time stays above it
	// (seconds) for LatencyGuardLooks looks in a row: a guard rail outside
	// the false-alarm budget. 0 turns it off.
	MaxLatency float64
	// Alpha is the whole canary's false-alarm budget, shared by every
	// check (DefaultAlpha when 0).
	Alpha float64
	// Rho shapes how the budget is spent over the planned exposure
	// (DefaultRho when 0): alpha·t^rho by exposure fraction t.
	Rho float64
	// ErrorTypes says the application's error counter is read by type:
	// known types and new types are judged, each with a share of the budget.
	ErrorTypes bool
	// DetectDecrease also fails on a significant drop of a known error's rate.
	DetectDecrease bool
	// HasBaseline says the comparison is a baseline track of its own, with
	// stable serving the rest; without one, stable is the comparison.
	HasBaseline bool
	// MustCatch is the canary 5xx rate the test must have the power to
	// catch (0: MustCatchFor the baseline's rate).
	MustCatch float64
	// SlowRequests judges the canary's share of slow requests, where the
	// samples carry latency buckets, with a share of the budget.
	SlowRequests bool
	// Ranges are metric values that must stay within bounds (Prometheus
	// queries): guard rails outside the budget.
	Ranges []Range
}

// Range bounds one metric of the canary.
type Range struct {
	Name     string
	Min, Max *float64
}

// Counts are cumulative since the canary started.
type Counts struct {
	Requests int
	Errors   int // 5xx
	// MeanLatency in seconds; NaN when unknown.
	MeanLatency float64
	// Latencies counts requests by response time: Latencies[i] is how many
	// took at most LatencyBounds[i] seconds and more than the bound before;
	// the last holds those slower than every bound. Nil when unknown.
	Latencies []int
}

// LatencyBounds are the response-time buckets (seconds) a collector counts
// requests into (Counts.Latencies): the latency checks judge the share of
// requests slower than bounds picked from these.
var LatencyBounds = []float64{
	0.001, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.015, 0.02, 0.03, 0.05, 0.075,
	0.1, 0.15, 0.2, 0.3, 0.5, 0.75, 1, 1.5, 2, 3, 5, 7.5, 10, 15, 30, 60,
}

// Sample is what one analysis sees: cumulative counts, error types, metric values.
type Sample struct {
	Canary, Baseline Counts
	// Stable counts the stable servers since the canary began; with no
	// baseline it is the comparison, and Baseline holds the same counts.
	Stable Counts
	// StableBefore is how many requests stable served, as far as is known,
	// before the canary began: exposure in which no new error type appeared.
	StableBefore int
	// CountsNote says how the request counts may fall short of every
	// request served ("" when they are exact): a report shows it.
	CountsNote string
	// ErrorTypes holds cumulative counts of each known error type per track.
	ErrorTypes map[string]TypeCounts
	// Values of range metrics by name; missing means no data.
	Values map[string]float64
}

// TypeCounts are the cumulative occurrences of one error type. Canary and
// Baseline count since their containers started (with the canary); Stable
// since stable's did, so a type stable ever had is known.
type TypeCounts struct{ Canary, Baseline, Stable int }

// Check is one metric's judgment, as the report shows it.
type Check struct {
	Name     string
	Canary   string
	Baseline string
	Samples  string
	Verdict  Verdict
	Reason   string
	// Budget is the check's share of the false-alarm budget ("" for guard
	// rails, which are outside it); Boundary the count that fails it.
	Budget   string
	Boundary string
}

// Result is one analysis.
type Result struct {
	// Step is the canary step the analysis belongs to (1-based; 0 when not set).
	Step    int
	Look    int
	Verdict Verdict
	Checks  []Check
	// Progress is the planned exposure fraction the look was taken at.
	Progress float64
}

// Defaults chosen by the simulation suite (go test -tags sim
// ./internal/analysis/...): a canary no worse than its baseline is aborted
// in at most 1% of runs, and rho = 2 keeps most of the budget for the
// looks with the most data while letting gross failures stop a canary early.
const (
	DefaultAlpha = 0.01
	DefaultRho   = 2.0
	// LatencyGuardLooks is how many looks in a row the mean response time
	// must be above max_latency to fail: the router's average is a gauge
	// over its last 1,024 requests, not a count a test can judge.
	LatencyGuardLooks = 3
	// RequiredPower is the chance a step's test must have had of catching
	// must_catch; below it the step is underpowered.
	RequiredPower = 0.8
	// MinBaseRate is the baseline 5xx rate assumed when the baseline shows
	// fewer errors: the default must_catch is never below 0.3%.
	MinBaseRate = 0.001
)

// MustCatchFor is the default must_catch for a baseline 5xx rate: the
// smaller of 3× the rate and the rate plus 1 point.
func MustCatchFor(baseRate float64) float64 {
	baseRate = max(baseRate, MinBaseRate)
	return min(3*baseRate, baseRate+0.01)
}
