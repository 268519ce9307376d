package looptiming

import (
	"math"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Output of `cyclictest -q --default-system -t1 -d0 -i 50000 -l 5 -v -N --policy=other`
// (rt-tests 2.4) on this machine.
const verboseOutput = `Max CPUs = 2
Online CPUs = 2
Thread 0 Interval: 50000
       0:       0:   92482
       0:       1:  104160
       0:       2:  104326
       0:       3:  101597
       0:       4:  107305
T: 0 (15721) P: 0 I:50000 C:      5 Min:  92482 Act:  107305 Avg:  101974 Max:  107305
`

func TestParseVerbose(t *testing.T) {
	got, err := parseVerbose([]byte(verboseOutput))
	require.NoError(t, err)
	assert.Equal(t, figures{n: 5, p50: 104160, p99: 107305, max: 107305, over: [7]int64{4}}, got)

	// The run ended after the last cycle was counted but before it was printed: the
	// summary's count and max stand for it.
	cut := strings.Replace(verboseOutput, "       0:       4:  107305\n", "", 1)
	got, err = parseVerbose([]byte(cut))
	require.NoError(t, err)
	assert.Equal(t, figures{n: 5, p50: 101597, p99: 104326, max: 107305, over: [7]int64{3}}, got)

	for name, out := range map[string]string{
		"two samples missing": strings.Replace(cut, "       0:       2:  104326\n", "", 1),
		"a sample above max":  strings.Replace(verboseOutput, "Max:  107305", "Max:  107304", 1),
		"no summary":          strings.Replace(verboseOutput, "T: 0", "X: 0", 1),
		"no sample":           "T: 0 (1) P: 0 I:50000 C:      1 Min:  1 Act:  1 Avg:  1 Max:  1\n",
		"histogram, not -v":   "# Histogram\n000000 000000\n# Total: 000000038\n",
		"empty output":        "",
	} {
		_, err := parseVerbose([]byte(out))
		assert.Error(t, err, name)
	}
}

func TestCyclictestArgs(t *testing.T) {
	other := strings.Join(cyclictestArgs(50*time.Millisecond, 60*time.Second, 0), " ")
	assert.Equal(t, "-q --default-system -t1 -d0 -v -N -i 50000 -l 1200 --policy=other", other)
	fifo := strings.Join(cyclictestArgs(50*time.Millisecond, 3*time.Second, 50), " ")
	assert.Equal(t, "-q --default-system -t1 -d0 -v -N -i 50000 -l 60 --policy=fifo -p 50 -m", fifo)
	assert.Contains(t, strings.Join(cyclictestArgs(time.Second, time.Millisecond, 0), " "), "-l 1 ", "at least one cycle")
}

func TestStats(t *testing.T) {
	var s []int64
	for i := int64(1000); i >= 1; i-- { // 1..1000 ns, shuffled order does not matter
		s = append(s, i)
	}
	assert.Equal(t, figures{n: 1000, p50: 500, p99: 990, max: 1000}, stats(s))
	assert.Equal(t, figures{n: 1, p50: 7, p99: 7, max: 7}, stats([]int64{7}))
	f := stats([]int64{50_000, 100_000, 100_001, 600_000, 20_000_000})
	assert.Equal(t, [7]int64{3, 2, 2, 1, 1, 1, 1}, f.over, "strictly later than 100 µs, 200 µs ... 10 ms")
}

const exposition = `# HELP controlloop_cycle_lateness_seconds Wake-up minus deadline of each cycle.
# TYPE controlloop_cycle_lateness_seconds histogram
controlloop_cycle_lateness_seconds_bucket{device_id="vm",loop="conveyor",service_name="fieldcol-edge",le="1e-05"} 0
controlloop_cycle_lateness_seconds_bucket{device_id="vm",loop="conveyor",service_name="fieldcol-edge",le="2e-05"} 3
controlloop_cycle_lateness_seconds_bucket{device_id="vm",loop="conveyor",service_name="fieldcol-edge",le="3e-05"} 90
controlloop_cycle_lateness_seconds_bucket{device_id="vm",loop="conveyor",service_name="fieldcol-edge",le="0.001"} 99
controlloop_cycle_lateness_seconds_bucket{device_id="vm",loop="conveyor",service_name="fieldcol-edge",le="+Inf"} 100
controlloop_cycle_lateness_seconds_sum{device_id="vm",loop="conveyor",service_name="fieldcol-edge"} 0.02
controlloop_cycle_lateness_seconds_count{device_id="vm",loop="conveyor",service_name="fieldcol-edge"} 100
controlloop_cycle_lateness_seconds_bucket{device_id="vm",loop="oven",service_name="fieldcol-edge",le="1e-05"} 5
controlloop_cycle_lateness_seconds_bucket{device_id="vm",loop="oven",service_name="fieldcol-edge",le="2e-05"} 5
controlloop_cycle_lateness_seconds_bucket{device_id="vm",loop="oven",service_name="fieldcol-edge",le="3e-05"} 5
controlloop_cycle_lateness_seconds_bucket{device_id="vm",loop="oven",service_name="fieldcol-edge",le="0.001"} 5
controlloop_cycle_lateness_seconds_bucket{device_id="vm",loop="oven",service_name="fieldcol-edge",le="+Inf"} 5
controlloop_cycle_lateness_seconds_sum{device_id="vm",loop="oven",service_name="fieldcol-edge"} 0.00002
controlloop_cycle_lateness_seconds_count{device_id="vm",loop="oven",service_name="fieldcol-edge"} 5
# HELP controlloop_safe_state 1 while the loop's outputs are forced to their safe state.
# TYPE controlloop_safe_state gauge
controlloop_safe_state{device_id="vm",loop="conveyor",service_name="fieldcol-edge"} 0
`

func TestLatenessFromExposition(t *testing.T) {
	h, err := parseLateness(strings.NewReader(exposition), "conveyor")
	require.NoError(t, err)
	assert.Equal(t, []float64{10e-6, 20e-6, 30e-6, 1e-3, math.Inf(1)}, h.bounds)
	assert.Equal(t, []uint64{0, 3, 90, 99, 100}, h.counts)
	assert.Equal(t, 30e-6, h.quantile(0.5))
	assert.Equal(t, 1e-3, h.quantile(0.99))
	assert.True(t, math.IsInf(h.quantile(1), 1), "the largest observation is above every finite bound")
	assert.Equal(t, int64(30_000), h.bucketOf(25_000))
	assert.Equal(t, int64(30_000), h.bucketOf(30_000), "a bound is inclusive, as le says")
	assert.Equal(t, int64(math.MaxInt64), h.bucketOf(2_000_000))

	earlier := histogram{bounds: h.bounds, counts: []uint64{0, 1, 40, 40, 40}}
	d, err := h.since(earlier)
	require.NoError(t, err)
	assert.Equal(t, []uint64{0, 2, 50, 59, 60}, d.counts)
	assert.Equal(t, figures{n: 60, p50: 30_000, p99: math.MaxInt64, max: math.MaxInt64,
		over: [7]int64{-1, -1, -1, 1, -1, -1, -1}}, d.figures(), "only 1 ms is a bound of this histogram")

	_, err = h.since(histogram{bounds: h.bounds, counts: []uint64{0, 4, 90, 99, 100}})
	assert.Error(t, err, "a bucket that went down: the edge restarted")
	_, err = h.since(histogram{bounds: []float64{1, math.Inf(1)}, counts: []uint64{0, 0}})
	assert.Error(t, err, "other bounds")

	_, err = parseLateness(strings.NewReader(exposition), "mixer")
	assert.ErrorIs(t, err, errNoSeries)
	_, err = parseLateness(strings.NewReader("# TYPE controlloop_cycle_lateness_seconds gauge\ncontrolloop_cycle_lateness_seconds{loop=\"conveyor\"} 1\n"), "conveyor")
	assert.Error(t, err, "not a histogram")
}

func TestRuntimePartFromExposition(t *testing.T) {
	s, err := parseExposition(strings.NewReader(exposition), "conveyor")
	require.NoError(t, err, "an edge without the runtime's part still gives its lateness")
	assert.Zero(t, s.runtime.count())
	assert.Equal(t, uint64(100), s.lateness.count())

	withRuntime := exposition + `# HELP controlloop_cycle_lateness_runtime_seconds Runtime's part.
# TYPE controlloop_cycle_lateness_runtime_seconds histogram
controlloop_cycle_lateness_runtime_seconds_bucket{device_id="vm",loop="conveyor",le="1e-05"} 80
controlloop_cycle_lateness_runtime_seconds_bucket{device_id="vm",loop="conveyor",le="0.001"} 95
controlloop_cycle_lateness_runtime_seconds_bucket{device_id="vm",loop="conveyor",le="+Inf"} 96
controlloop_cycle_lateness_runtime_seconds_sum{device_id="vm",loop="conveyor"} 0.01
controlloop_cycle_lateness_runtime_seconds_count{device_id="vm",loop="conveyor"} 96
`
	s, err = parseExposition(strings.NewReader(withRuntime), "conveyor")
	require.NoError(t, err)
	assert.Equal(t, []float64{10e-6, 1e-3, math.Inf(1)}, s.runtime.bounds)
	assert.Equal(t, []uint64{80, 95, 96}, s.runtime.counts)
	assert.Equal(t, uint64(100), s.lateness.count())
}

func TestResolution(t *testing.T) {
	assert.NoError(t, resolution([]float64{10e-6, 20e-6, 30e-6, 40e-6, 50e-6, 60e-6, 70e-6, 80e-6, 90e-6, 100e-6, 125e-6, 150e-6, 175e-6, 200e-6, 250e-6, 1e-3}))
	assert.Error(t, resolution([]float64{10e-6, 25e-6, 50e-6, 100e-6, 250e-6, 1e-3}), "the old bounds: 50 µs steps")
	assert.Error(t, resolution([]float64{20e-6, 40e-6}), "starts above 10 µs")
	assert.Error(t, resolution([]float64{10e-6, 20e-6, 30e-6}), "ends below 200 µs")
	assert.Error(t, resolution(nil))
}

func TestSchedOf(t *testing.T) {
	// A thread whose name holds a space and a parenthesis; SCHED_FIFO (1) at priority 50.
	stat := "4242 (weird) name) S 1 4242 4242 0 -1 4194560 100 0 0 0 5 3 0 0 -51 0 12 0 1234 100000 200 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1 50 1 0 0 0 0 0 0 0 0 0 0 0\n"
	prio, policy, err := schedOf(stat)
	require.NoError(t, err)
	assert.Equal(t, 50, prio)
	assert.Equal(t, 1, policy)
	_, _, err = schedOf("4242 (x) S 1 2 3")
	assert.Error(t, err)

	self, err := os.ReadFile("/proc/self/stat")
	if err == nil {
		_, _, err := schedOf(string(self))
		assert.NoError(t, err, "this kernel's stat line")
	}
}

func TestTimingOfShippedConfig(t *testing.T) {
	raw, err := os.ReadFile(shippedConfig(t))
	require.NoError(t, err)
	lt, err := timingOf(raw, "conveyor")
	require.NoError(t, err)
	assert.Equal(t, loopTiming{period: 50 * time.Millisecond, priority: 50}, lt, "the conveyor's period and the default realtime_priority")

	lt, err = timingOf([]byte("extensions:\n  controlloop:\n    realtime_priority: 70\n    loops: [{name: a, period: 1ms}]\n"), "a")
	require.NoError(t, err)
	assert.Equal(t, loopTiming{period: time.Millisecond, priority: 70}, lt)
	_, err = timingOf(raw, "mixer")
	assert.Error(t, err)
	_, err = timingOf([]byte("extensions: {}\n"), "conveyor")
	assert.Error(t, err)
}

func TestParseGCTrace(t *testing.T) {
	log := `2026-12-06T17:00:00.000Z	info	something else
gc 1 @0.512s 1%: 0.021+1.1+0.030 ms clock, 0.043+0.2/0.9/0+0.060 ms cpu, 3->4->2 MB, 4 MB goal, 0 MB stacks, 0 MB globals, 2 P
gc 2 @3.250s 2%: 0.40+2.5+1.5 ms clock, 0.80+0.5/1.1/0+3.0 ms cpu, 40->45->20 MB, 42 MB goal, 0 MB stacks, 0 MB globals, 2 P
gc 3 @4.100s 2%: 0.10+2.0+0.20 ms clock, 0.20+0.5/1.1/0+0.40 ms cpu, 40->45->20 MB, 42 MB goal, 0 MB stacks, 0 MB globals, 2 P
gc 4 @9.000s 2%: 9.0+2.0+9.0 ms clock, 0.20+0.5/1.1/0+0.40 ms cpu, 40->45->20 MB, 42 MB goal, 0 MB stacks, 0 MB globals, 2 P
`
	g, err := parseGCTrace(log, 3*time.Second, 5*time.Second)
	require.NoError(t, err)
	assert.Equal(t, 2, g.n)
	assert.Equal(t, 1500*time.Microsecond, g.stwMax)
	assert.Equal(t, 2200*time.Microsecond, g.stwSum)
	assert.Equal(t, 20, g.liveMax)
	assert.Contains(t, g.String(), "2 GCs")

	g, err = parseGCTrace("no trace here\n", 0, time.Hour)
	require.NoError(t, err)
	assert.Equal(t, "no GC in the window", g.String())
}

func TestParseProbe(t *testing.T) {
	got, rt, err := parseProbe([]byte("52000 3000\n61000 -1\n1200000 1150000\n"))
	require.NoError(t, err)
	assert.Equal(t, []int64{52000, 61000, 1200000}, got)
	assert.Equal(t, []int64{3000, 1150000}, rt, "a cycle without a raw leg has no runtime part")
	_, _, err = parseProbe([]byte("probe: not permitted\n"))
	assert.Error(t, err)
	_, _, err = parseProbe([]byte("52000\n"))
	assert.Error(t, err)
	_, _, err = parseProbe(nil)
	assert.Error(t, err)
}
