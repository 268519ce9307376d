package telemetry

import (
	"context"
	"fmt"
	"math"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.uber.org/goleak"

	"github.com/fieldcol/fieldcol/controlloop/internal/loop"
	"github.com/fieldcol/fieldcol/controlloop/internal/pid"
	"github.com/fieldcol/fieldcol/controlloop/schedule"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

type sensor struct {
	mu sync.Mutex
	v  float64
}

func (s *sensor) read(context.Context) (float64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.v, nil
}

func (s *sensor) set(v float64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.v = v
}

func newLoop(t *testing.T, s *sensor) *loop.Loop {
	t.Helper()
	c, err := pid.New(pid.Gains{Kp: 0.5, Ki: 0.1}, pid.Limits{OutMin: 0, OutMax: 1})
	require.NoError(t, err)
	noop := func(context.Context, float64) error { return nil }
	en := func(context.Context, bool) error { return nil }
	l, err := loop.New(loop.Spec{
		Name: "oven", Period: 10 * time.Millisecond, Input: s.read, InputName: "oven_temp",
		ValidMin: 0, ValidMax: 300, Main: loop.Output{Name: "heater", Duty: noop},
		Enable: &loop.Output{Name: "fan", Level: en},
		Kind:   loop.PID, PID: c, Setpoint: 100, SetpointMax: 250, TraceEvery: 1,
		Alarms: []loop.AlarmSpec{{Name: "high_limit", Kind: loop.AlarmHigh, Limit: 200}},
	}, nil, nil)
	require.NoError(t, err)
	return l
}

func cycle(l *loop.Loop) {
	now := schedule.Now()
	l.Cycle(schedule.Tick{Deadline: now - 100_000, Woke: now})
}

func metricsByName(t *testing.T, ms pmetric.Metrics) map[string]pmetric.Metric {
	t.Helper()
	out := map[string]pmetric.Metric{}
	require.Equal(t, 1, ms.ResourceMetrics().Len())
	sms := ms.ResourceMetrics().At(0).ScopeMetrics()
	for i := 0; i < sms.Len(); i++ {
		for j := 0; j < sms.At(i).Metrics().Len(); j++ {
			m := sms.At(i).Metrics().At(j)
			out[m.Name()] = m
		}
	}
	return out
}

func TestContractMetrics(t *testing.T) {
	s := &sensor{v: 20}
	l := newLoop(t, s)
	tel, err := New([]*loop.Loop{l}, Settings{ServiceName: "fieldcol-edge", MaxLogRecords: 100, MaxSpans: 100})
	require.NoError(t, err)
	defer func() { require.NoError(t, tel.Shutdown(context.Background())) }()

	for range 3 {
		cycle(l)
	}
	s.set(math.NaN())
	// One cycle with a raw leg: the kernel woke the thread 70 µs after the deadline and the
	// runtime ran the loop 30 µs later; only that cycle has a runtime part.
	now := schedule.Now()
	l.Cycle(schedule.Tick{Deadline: now - 100_000, Kernel: now - 30_000, Woke: now})
	tel.RecordCommand(CommandRecord{Command: "ACK_ALARM", Loop: "oven", Result: "invalid", Who: "anonymous", Start: time.Now(), End: time.Now()})

	ms := pmetric.NewMetrics()
	require.NoError(t, tel.CollectMetrics(ms))
	sn, _ := ms.ResourceMetrics().At(0).Resource().Attributes().Get("service.name")
	assert.Equal(t, "fieldcol-edge", sn.Str())
	got := metricsByName(t, ms)

	cycles := got["controlloop.cycles"]
	require.Equal(t, pmetric.MetricTypeSum, cycles.Type())
	outcomes := map[string]int64{}
	for i := 0; i < cycles.Sum().DataPoints().Len(); i++ {
		dp := cycles.Sum().DataPoints().At(i)
		assert.Equal(t, []string{"loop", "outcome"}, keys(dp.Attributes().AsRaw()))
		o, _ := dp.Attributes().Get("outcome")
		outcomes[o.Str()] = dp.IntValue()
	}
	assert.Equal(t, map[string]int64{"ok": 4, "overrun": 0, "skipped": 0}, outcomes)

	for _, name := range []string{"controlloop.cycle.duration", "controlloop.cycle.lateness"} {
		h := got[name]
		require.Equal(t, pmetric.MetricTypeHistogram, h.Type(), name)
		assert.Equal(t, "s", h.Unit())
		dp := h.Histogram().DataPoints().At(0)
		assert.Equal(t, uint64(4), dp.Count())
		assert.Equal(t, map[string]any{"loop": "oven"}, dp.Attributes().AsRaw())
	}
	assert.InDelta(t, 0.0004, got["controlloop.cycle.lateness"].Histogram().DataPoints().At(0).Sum(), 1e-9)
	rt := got["controlloop.cycle.lateness.runtime"].Histogram().DataPoints().At(0)
	assert.Equal(t, uint64(1), rt.Count(), "cycles without a raw leg have no runtime part")
	assert.InDelta(t, 0.00003, rt.Sum(), 1e-9)
	assert.Equal(t, map[string]any{"loop": "oven"}, rt.Attributes().AsRaw())

	_, hasPV := got["controlloop.process_value"]
	assert.False(t, hasPV, "no process value is reported while the reading is invalid")
	assert.Equal(t, 100.0, got["controlloop.setpoint"].Gauge().DataPoints().At(0).DoubleValue())

	out := got["controlloop.output"]
	require.Equal(t, 2, out.Gauge().DataPoints().Len())
	assert.Equal(t, "1", out.Unit())
	for i := 0; i < 2; i++ {
		assert.Equal(t, []string{"actuator", "loop"}, keys(out.Gauge().DataPoints().At(i).Attributes().AsRaw()))
	}
	assert.Equal(t, int64(1), got["controlloop.safe_state"].Gauge().DataPoints().At(0).IntValue())
	assert.Empty(t, got["controlloop.safe_state"].Unit(), "Prometheus would add _ratio for unit 1")

	active := got["controlloop.alarms.active"]
	assert.Equal(t, "{alarm}", active.Unit())
	// Every alarm reports both of its series (latched true and false) on every collection,
	// so an acknowledged latch reads 0 instead of vanishing with its last value.
	byAlarm := map[string]int64{}
	for i := 0; i < active.Gauge().DataPoints().Len(); i++ {
		dp := active.Gauge().DataPoints().At(i)
		a := dp.Attributes().AsRaw()
		assert.Equal(t, "oven", a["loop"])
		byAlarm[fmt.Sprintf("%s latched=%v", a["alarm"], a["latched"])] = dp.IntValue()
	}
	assert.Equal(t, map[string]int64{
		"sensor_fault latched=true": 1, "sensor_fault latched=false": 0,
		"high_limit latched=true": 0, "high_limit latched=false": 0,
		"plausibility latched=true": 0, "plausibility latched=false": 0,
		"actuator_fault latched=true": 0, "actuator_fault latched=false": 0,
	}, byAlarm)

	tr := got["controlloop.alarm.transitions"].Sum().DataPoints().At(0)
	assert.Equal(t, map[string]any{"loop": "oven", "alarm": "sensor_fault", "transition": "raised"}, tr.Attributes().AsRaw())

	cmd := got["controlloop.commands"].Sum().DataPoints().At(0)
	assert.Equal(t, map[string]any{"command": "ACK_ALARM", "result": "invalid"}, cmd.Attributes().AsRaw())
	assert.Equal(t, map[string]any{"command": "ACK_ALARM"}, got["controlloop.command.duration"].Histogram().DataPoints().At(0).Attributes().AsRaw())

	// Once reads are good again the process value comes back.
	s.set(21)
	cycle(l)
	ms = pmetric.NewMetrics()
	require.NoError(t, tel.CollectMetrics(ms))
	assert.Equal(t, 21.0, metricsByName(t, ms)["controlloop.process_value"].Gauge().DataPoints().At(0).DoubleValue())
}

func keys(m map[string]any) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	for i := 1; i < len(out); i++ {
		for j := i; j > 0 && out[j] < out[j-1]; j-- {
			out[j], out[j-1] = out[j-1], out[j]
		}
	}
	return out
}

// TestLatenessResolvesCyclictest: the lateness histogram, as it leaves the extension, has
// bounds at most 25 µs apart from 10 µs to 200 µs (where a SCHED_FIFO wake-up and
// cyclictest's p99 lie), then coarser up to the longest period, and a cycle 37 µs late
// lands in the 30..40 µs bucket.
func TestLatenessResolvesCyclictest(t *testing.T) {
	l := newLoop(t, &sensor{v: 20})
	tel, err := New([]*loop.Loop{l}, Settings{ServiceName: "fieldcol-edge"})
	require.NoError(t, err)
	defer func() { require.NoError(t, tel.Shutdown(context.Background())) }()
	now := schedule.Now()
	l.Cycle(schedule.Tick{Deadline: now - 37_000, Woke: now})

	ms := pmetric.NewMetrics()
	require.NoError(t, tel.CollectMetrics(ms))
	dp := metricsByName(t, ms)["controlloop.cycle.lateness"].Histogram().DataPoints().At(0)
	bounds := dp.ExplicitBounds().AsRaw()
	require.NotEmpty(t, bounds)
	assert.LessOrEqual(t, bounds[0], 10e-6, "first bound")
	for i := 1; i < len(bounds); i++ {
		require.Greater(t, bounds[i], bounds[i-1], "bounds ascend")
		if bounds[i] <= 200e-6+1e-12 {
			assert.LessOrEqual(t, bounds[i]-bounds[i-1], 25e-6+1e-12, "step below 200 µs at %g", bounds[i])
		}
	}
	assert.Contains(t, bounds, 200e-6)
	assert.GreaterOrEqual(t, bounds[len(bounds)-1], 10.0, "the last bound reaches the 10 s maximum period")
	i := slices.Index(bounds, 40e-6)
	require.GreaterOrEqual(t, i, 1, "a bound at 40 µs")
	assert.Equal(t, 30e-6, bounds[i-1])
	assert.Equal(t, uint64(1), dp.BucketCounts().At(i), "37 µs is counted in (30, 40] µs")
	assert.Equal(t, uint64(1), dp.Count())
}

func TestEventsBecomeLogsOnce(t *testing.T) {
	s := &sensor{v: 20}
	l := newLoop(t, s)
	tel, err := New([]*loop.Loop{l}, Settings{ServiceName: "x", MaxLogRecords: 100, MaxSpans: 100})
	require.NoError(t, err)
	defer func() { require.NoError(t, tel.Shutdown(context.Background())) }()
	cycle(l)
	s.set(500) // out of range
	cycle(l)

	ld := plog.NewLogs()
	n := tel.DrainLogs(ld)
	require.Positive(t, n)
	names := map[string]bool{}
	lrs := ld.ResourceLogs().At(0).ScopeLogs().At(0).LogRecords()
	require.Equal(t, n, lrs.Len())
	for i := 0; i < lrs.Len(); i++ {
		names[lrs.At(i).EventName()] = true
	}
	assert.True(t, names["controlloop.alarm"])
	assert.True(t, names["controlloop.fault"])
	assert.True(t, names["controlloop.safe_state"])
	assert.Zero(t, tel.DrainLogs(plog.NewLogs()), "each event is delivered once")
}

func TestCycleSpansHavePhases(t *testing.T) {
	s := &sensor{v: 20}
	l := newLoop(t, s)
	tel, err := New([]*loop.Loop{l}, Settings{ServiceName: "x", MaxLogRecords: 100, MaxSpans: 100})
	require.NoError(t, err)
	defer func() { require.NoError(t, tel.Shutdown(context.Background())) }()
	cycle(l)
	td := ptrace.NewTraces()
	require.Equal(t, 5, tel.DrainTraces(td))
	spans := td.ResourceSpans().At(0).ScopeSpans().At(0).Spans()
	root := spans.At(0)
	assert.Equal(t, "controlloop.cycle oven", root.Name())
	var phases []string
	for i := 1; i < spans.Len(); i++ {
		sp := spans.At(i)
		assert.Equal(t, root.TraceID(), sp.TraceID())
		assert.Equal(t, root.SpanID(), sp.ParentSpanID())
		assert.GreaterOrEqual(t, sp.EndTimestamp(), sp.StartTimestamp())
		phases = append(phases, sp.Name())
	}
	assert.Equal(t, []string{"sensor read", "validate", "compute", "actuator write"}, phases)
}

func TestBuffersAreBoundedAndCountDrops(t *testing.T) {
	s := &sensor{v: 20}
	l := newLoop(t, s)
	tel, err := New([]*loop.Loop{l}, Settings{ServiceName: "x", MaxLogRecords: 2, MaxSpans: 5})
	require.NoError(t, err)
	defer func() { require.NoError(t, tel.Shutdown(context.Background())) }()
	for range 3 {
		tel.RecordCommand(CommandRecord{Command: "SET_MODE", Result: "accepted", Start: time.Now(), End: time.Now()})
	}
	cycle(l)
	tel.Drain()
	logs, spans, _ := tel.Dropped()
	assert.Equal(t, uint64(2), logs, "the third command and the loop's \"back in control\" event")
	assert.Equal(t, uint64(5), spans, "a cycle's 5 spans do not fit after 3 command spans: dropped whole")
	assert.Equal(t, 2, tel.DrainLogs(plog.NewLogs()))

	ms := pmetric.NewMetrics()
	require.NoError(t, tel.CollectMetrics(ms))
	d := metricsByName(t, ms)["controlloop.telemetry.dropped"].Sum().DataPoints()
	bySignal := map[string]int64{}
	for i := 0; i < d.Len(); i++ {
		sig, _ := d.At(i).Attributes().Get("signal")
		bySignal[sig.Str()] = d.At(i).IntValue()
	}
	assert.Equal(t, map[string]int64{"logs": 2, "spans": 5, "samples": 0}, bySignal)
}

func TestDrainerRuns(t *testing.T) {
	s := &sensor{v: 20}
	l := newLoop(t, s)
	tel, err := New([]*loop.Loop{l}, Settings{ServiceName: "x", DrainInterval: time.Millisecond})
	require.NoError(t, err)
	tel.Start()
	cycle(l)
	assert.Eventually(t, func() bool { return l.Samples().Len() == 0 }, 5*time.Second, time.Millisecond)
	require.NoError(t, tel.Shutdown(context.Background()))
}
