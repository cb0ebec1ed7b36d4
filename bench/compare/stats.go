package compare

import (
	"fmt"
	"slices"
	"time"
)

// Summary is the distribution of one latency over the trials of a workload.
type Summary struct {
	N                     int
	Median, P95, Min, Max time.Duration
	Samples               []time.Duration // in trial order
}

// Summarize returns the median, 95th percentile (nearest rank), minimum and
// maximum of samples; an empty input gives a zero Summary with N 0.
func Summarize(samples []time.Duration) Summary {
	s := Summary{N: len(samples), Samples: slices.Clone(samples)}
	if len(samples) == 0 {
		return s
	}
	sorted := slices.Clone(samples)
	slices.Sort(sorted)
	n := len(sorted)
	if n%2 == 1 {
		s.Median = sorted[n/2]
	} else {
		s.Median = (sorted[n/2-1] + sorted[n/2]) / 2
	}
	s.P95 = sorted[nearestRank(95, n)-1]
	s.Min, s.Max = sorted[0], sorted[n-1]
	return s
}

// nearestRank is the 1-based rank of the p-th percentile of n samples.
func nearestRank(p, n int) int {
	r := (p*n + 99) / 100 // ceil(p*n/100)
	return max(1, min(r, n))
}

// Ratio is a/b as a figure for the report: "0.012" or "n/a".
func Ratio(a, b float64) string {
	if a <= 0 || b <= 0 {
		return "n/a"
	}
	r := a / b
	switch {
	case r < 0.01:
		return fmt.Sprintf("%.4f", r)
	case r < 1:
		return fmt.Sprintf("%.3f", r)
	default:
		return fmt.Sprintf("%.2f", r)
	}
}

// ms formats a duration in milliseconds with a precision that suits it.
func ms(d time.Duration) string {
	v := float64(d) / float64(time.Millisecond)
	switch {
	case v < 10:
		return fmt.Sprintf("%.2f ms", v)
	case v < 1000:
		return fmt.Sprintf("%.1f ms", v)
	default:
		return fmt.Sprintf("%.0f ms", v)
	}
}
