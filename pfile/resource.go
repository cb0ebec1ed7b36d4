package pfile

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// Metric is what a _bi_resource monitor measures over its entry's process
// tree (the watched processes and their descendants).
type Metric string

// The resource metrics.
const (
	MetricRSS      Metric = "rss"      // resident memory, bytes, summed over the tree
	MetricCPU      Metric = "cpu"      // processor use, percent of one core, summed over the tree
	MetricFDs      Metric = "fds"      // open descriptors, summed over the tree
	MetricThreads  Metric = "threads"  // threads, summed over the tree
	MetricChildren Metric = "children" // descendants of the watched processes
)

// Metrics lists the metrics in the order the documentation gives them.
var Metrics = []Metric{MetricRSS, MetricCPU, MetricFDs, MetricThreads, MetricChildren}

// Limit is the most a _bi_resource monitor allows: a measure above it is
// a failed attempt.
type Limit struct {
	// Value is in the metric's unit: bytes for rss, percent of one core
	// for cpu, a count for the others.
	Value int64
	// Suffix is how the limit was written, and how the measures are
	// shown: "K", "M", "G" (powers of 1024) or "" (bytes) for rss, "%"
	// for cpu, "" for a count.
	Suffix string
}

// suffixSizes are the multipliers of an rss limit's suffixes.
var suffixSizes = map[string]int64{"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30}

// unit is the size of one unit of the limit's suffix.
func (l Limit) unit() int64 {
	if n, ok := suffixSizes[l.Suffix]; ok {
		return n
	}
	return 1 // "%"
}

// String is the limit as a pfile writes it: 512M, 90%, 1000.
func (l Limit) String() string { return l.Format(l.Value) }

// Format shows the measure v (in the metric's unit) as the limit is
// written: in the unit of its suffix, rounded up, so that a measure above
// the limit never shows as the limit itself.
func (l Limit) Format(v int64) string {
	u := l.unit()
	n := v / u
	if v%u > 0 {
		n++
	}
	return strconv.FormatInt(n, 10) + l.Suffix
}

// MarshalText implements encoding.TextMarshaler: the limit as written,
// as the JSON form of the model gives durations as written (json.go).
func (l Limit) MarshalText() ([]byte, error) { return []byte(l.String()), nil }

// parseMetric reads argv[1] of a _bi_resource PS_EXEC.
func (b *Builder) parseMetric(v string, pos Pos) (Metric, bool) {
	for _, m := range Metrics {
		if strings.EqualFold(string(m), v) {
			return m, true
		}
	}
	names := make([]string, len(Metrics))
	for i, m := range Metrics {
		names[i] = string(m)
	}
	b.errorf(pos, "resource metric (argv[1]) must be one of %s, not %q", strings.Join(names, ", "), v)
	return "", false
}

// parseLimit reads argv[2] of a _bi_resource PS_EXEC for metric m: a
// whole number, with a K, M or G suffix (or none, bytes) for rss and a %
// for cpu. A limit of 0 is allowed for children alone (no child at all).
func (b *Builder) parseLimit(m Metric, v string, pos Pos) (Limit, bool) {
	var l Limit
	digits, shape := v, ""
	switch m {
	case MetricRSS:
		shape = "a whole number of bytes with an optional K, M or G suffix (512M)"
		if n := len(v); n > 0 {
			if _, ok := suffixSizes[strings.ToUpper(v[n-1:])]; ok {
				digits, l.Suffix = v[:n-1], strings.ToUpper(v[n-1:])
			}
		}
	case MetricCPU:
		shape = "a whole percent of one core (90%)"
		var ok bool
		if digits, ok = strings.CutSuffix(v, "%"); !ok {
			b.errorf(pos, "%s limit (argv[2]) must be %s, not %q", m, shape, v)
			return l, false
		}
		l.Suffix = "%"
	default:
		shape = "a whole number"
	}
	n, err := strconv.ParseInt(digits, 10, 64)
	if err != nil || n < 0 || digits[0] == '+' {
		b.errorf(pos, "%s limit (argv[2]) must be %s, not %q", m, shape, v)
		return l, false
	}
	if n == 0 && m != MetricChildren {
		b.errorf(pos, "%s limit (argv[2]) must be at least 1, not %q", m, v)
		return l, false
	}
	if n > math.MaxInt64/l.unit() {
		b.errorf(pos, "%s limit (argv[2]) %q is too large", m, v)
		return l, false
	}
	l.Value = n * l.unit()
	return l, true
}

// describeResource is the resource monitor's line in the rules.
func describeResource(m Monitor) string {
	if m.Metric == MetricChildren {
		return fmt.Sprintf("children: descendants of the watched processes at most %s", m.Limit)
	}
	what := map[Metric]string{
		MetricRSS:     "rss: resident memory",
		MetricCPU:     "cpu: processor use in percent of one core",
		MetricFDs:     "fds: open descriptors",
		MetricThreads: "threads",
	}[m.Metric]
	return fmt.Sprintf("%s of the process tree at most %s", what, m.Limit)
}
