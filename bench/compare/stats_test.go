package compare

import (
	"os"
	"testing"
	"time"
)

func TestSummarize(t *testing.T) {
	ms := time.Millisecond
	tests := []struct {
		name                  string
		in                    []time.Duration
		median, p95, min, max time.Duration
	}{
		{"one", []time.Duration{5 * ms}, 5 * ms, 5 * ms, 5 * ms, 5 * ms},
		{"odd, unsorted", []time.Duration{9 * ms, 1 * ms, 5 * ms}, 5 * ms, 9 * ms, 1 * ms, 9 * ms},
		{"even: mean of the middle two", []time.Duration{4 * ms, 1 * ms, 2 * ms, 3 * ms}, 2500 * time.Microsecond, 4 * ms, 1 * ms, 4 * ms},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := Summarize(tt.in)
			if s.N != len(tt.in) || s.Median != tt.median || s.P95 != tt.p95 || s.Min != tt.min || s.Max != tt.max {
				t.Errorf("Summarize(%v) = N %d median %v p95 %v min %v max %v, want median %v p95 %v min %v max %v",
					tt.in, s.N, s.Median, s.P95, s.Min, s.Max, tt.median, tt.p95, tt.min, tt.max)
			}
		})
	}
	if s := Summarize(nil); s.N != 0 || s.Median != 0 {
		t.Errorf("Summarize(nil) = %+v, want zero", s)
	}
}

func TestP95IsNearestRank(t *testing.T) {
	// 20 samples 1..20 ms: the 95th percentile by nearest rank is the
	// 19th, not the maximum.
	var in []time.Duration
	for i := 20; i >= 1; i-- {
		in = append(in, time.Duration(i)*time.Millisecond)
	}
	s := Summarize(in)
	if s.P95 != 19*time.Millisecond || s.Max != 20*time.Millisecond || s.Median != 10500*time.Microsecond {
		t.Errorf("p95 %v max %v median %v, want 19ms 20ms 10.5ms", s.P95, s.Max, s.Median)
	}
	// The input keeps its order for the report.
	if s.Samples[0] != 20*time.Millisecond {
		t.Errorf("Samples[0] = %v, want the first trial's 20ms", s.Samples[0])
	}
}

func TestRatio(t *testing.T) {
	tests := []struct {
		a, b float64
		want string
	}{
		{1, 400, "0.0025"},
		{1, 4, "0.250"},
		{3, 2, "1.50"},
		{0, 2, "n/a"},
		{2, 0, "n/a"},
	}
	for _, tt := range tests {
		if got := Ratio(tt.a, tt.b); got != tt.want {
			t.Errorf("Ratio(%v, %v) = %q, want %q", tt.a, tt.b, got, tt.want)
		}
	}
}

func TestParseStatCPU(t *testing.T) {
	// A command name with a space and a parenthesis: fields are counted
	// from the last ')'. utime 150, stime 50, cutime 30, cstime 20 ticks.
	line := "4242 (odd) name) S 1 4242 4242 0 -1 4194560 100 0 0 0 150 50 30 20 20 0 1 0 100 1000 10 18446744073709551615\n"
	got, err := parseStatCPU([]byte(line))
	if err != nil {
		t.Fatal(err)
	}
	if want := 2500 * time.Millisecond; got != want {
		t.Errorf("parseStatCPU = %v, want %v", got, want)
	}
	if _, err := parseStatCPU([]byte("4242 (short) S 1 2")); err == nil {
		t.Error("a truncated stat line parsed without error")
	}
}

func TestCPUTimeAndPeakRSSOfSelf(t *testing.T) {
	// Burn some CPU so the figure cannot be zero.
	deadline := time.Now().Add(50 * time.Millisecond)
	for x := 0; time.Now().Before(deadline); x++ {
		_ = x * x
	}
	cpu, err := CPUTime(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if cpu <= 0 {
		t.Errorf("CPUTime(self) = %v after busy work, want > 0", cpu)
	}
	rss, err := PeakRSS(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if rss < 1<<20 {
		t.Errorf("PeakRSS(self) = %d bytes, want at least 1 MiB for a Go test binary", rss)
	}
}

func TestParseStatusKB(t *testing.T) {
	status := "Name:\tx\nVmPeak:\t  2000 kB\nVmHWM:\t    1536 kB\n"
	got, err := parseStatusKB([]byte(status), "VmHWM")
	if err != nil || got != 1536*1024 {
		t.Errorf("parseStatusKB = %d, %v; want %d", got, err, 1536*1024)
	}
	if _, err := parseStatusKB([]byte(status), "VmRSS"); err == nil {
		t.Error("a missing key gave no error")
	}
}
