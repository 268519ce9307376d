package sloburnprocessor

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/processor/processortest"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.opentelemetry.io/otel/sdk/metric/metricdata/metricdatatest"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/fieldcol/fieldcol/processors/sloburnprocessor/internal/metadata"
	"github.com/fieldcol/fieldcol/processors/sloburnprocessor/internal/metadatatest"
)

const step = 15 * time.Second

// TestBurnRatesAtWindowEdges feeds 10 minutes without errors and then 10% overruns, and
// checks the exact burn rates just after and one window after the change.
func TestBurnRatesAtWindowEdges(t *testing.T) {
	h := newHarness(t, ovenConfig())
	h.p.origin = epoch.Add(-3 * 24 * time.Hour).UnixNano() // every alert window covered
	srcStart := epoch.Add(-time.Hour)                      // started before the processor: first point is a baseline
	var ok, overrun float64 = 5000, 7
	at := func(k int) time.Time { return epoch.Add(time.Duration(k) * step) }
	for k := 0; k <= 60; k++ {
		if k > 0 && k <= 40 {
			ok += 1000
		} else if k > 40 {
			ok += 900
			overrun += 100
		}
		h.clk.t = at(k)
		h.proc(cycles(srcStart, at(k), ok, overrun))
		md := h.p.collect(h.clk.t)
		switch k {
		case 40:
			assert.Zero(t, burnRate(t, md, "oven-deadline", "5m"))
		case 41:
			// (t-5m, t] holds steps 22..41: 20000 cycles, 100 overruns: ratio 0.005, burn 1.
			assert.InDelta(t, 1.0, burnRate(t, md, "oven-deadline", "5m"), 1e-9)
		case 60:
			assert.InDelta(t, 20.0, burnRate(t, md, "oven-deadline", "5m"), 1e-9, "steps 41..60 are all 10%")
			// Every other window holds steps 1..60: 60000 cycles, 2000 overruns.
			all := (2000.0 / 60000) / 0.005
			for _, w := range []string{"30m", "1h", "2h", "6h", "1d", "3d"} {
				assert.InDelta(t, all, burnRate(t, md, "oven-deadline", w), 1e-9, w)
			}
			assert.InDelta(t, 1-all, value(t, md, metricRemaining, attrsOf("slo", "oven-deadline")), 1e-9)
			assert.Equal(t, 0.995, value(t, md, metricObjective, attrsOf("slo", "oven-deadline")))
			assert.Equal(t, 58000.0, value(t, md, metricEvents, attrsOf("slo", "oven-deadline", "outcome", "good")))
			assert.Equal(t, 2000.0, value(t, md, metricEvents, attrsOf("slo", "oven-deadline", "outcome", "bad")))
			// 6.67 over 6h and 30m pages (factor 6), and over 1d and 2h opens a ticket (3).
			assert.Equal(t, 1.0, alertOf(t, md, "oven-deadline", "page"))
			assert.Equal(t, 1.0, alertOf(t, md, "oven-deadline", "ticket"))
		}
	}
}

// TestResetsRestartsAndGaps covers the counter semantics of increase(): a drop or a new
// start time is a reset after which the whole new value counts, and a gap hands its whole
// increase to the point after it.
func TestResetsRestartsAndGaps(t *testing.T) {
	h := newHarness(t, ovenConfig())
	s1 := epoch.Add(-time.Hour)
	h.proc(cycles(s1, epoch, 500, 10)) // baseline
	h.clk.t = epoch.Add(step)
	h.proc(cycles(s1, h.clk.t, 600, 10)) // +100 ok
	h.clk.t = epoch.Add(2 * step)
	h.proc(cycles(s1, h.clk.t, 5, 5)) // value dropped: the source restarted
	h.clk.t = epoch.Add(3 * step)
	s2 := h.clk.t.Add(-time.Second)
	h.proc(cycles(s2, h.clk.t, 20, 6)) // new start time although the values grew: restart again
	md := h.p.collect(h.clk.t)
	assert.Equal(t, 125.0, value(t, md, metricEvents, attrsOf("slo", "oven-deadline", "outcome", "good")))
	assert.Equal(t, 11.0, value(t, md, metricEvents, attrsOf("slo", "oven-deadline", "outcome", "bad")))
	assert.InDelta(t, (11.0/136)/0.005, burnRate(t, md, "oven-deadline", "5m"), 1e-9)

	// 30 minutes without a point, then one that carries the whole increase. As in
	// Prometheus' rate() over [t-w, t], the increase belongs to the windows that hold the
	// sample before the gap: not the 5m one (where Prometheus has a single sample and no
	// rate), the 1h one.
	h.clk.t = h.clk.t.Add(30 * time.Minute)
	h.proc(cycles(s2, h.clk.t, 3020, 306))
	md = h.p.collect(h.clk.t)
	assert.Zero(t, burnRate(t, md, "oven-deadline", "5m"))
	assert.InDelta(t, (311.0/3436)/0.005, burnRate(t, md, "oven-deadline", "1h"), 1e-9)

	// Each batch is read three times: the ok and overrun points by total, overrun by bad.
	assert.Equal(t, map[string]int64{"baseline": 3, "accepted": 6, "reset": 6}, pointsByResult(t, h))
}

// TestLateAndOutOfOrderPoints: a repeated or older cumulative point is ignored and counted;
// a late delta point lands in the bucket of its own time, so it counts in the windows that
// still cover that time and in none of the shorter ones.
func TestLateAndOutOfOrderPoints(t *testing.T) {
	h := newHarness(t, ovenConfig())
	s := epoch.Add(-time.Hour)
	h.clk.t = epoch.Add(time.Minute)
	h.proc(cycles(s, h.clk.t, 100, 0))
	h.proc(cycles(s, h.clk.t, 100, 0))           // duplicate
	h.proc(cycles(s, h.clk.t.Add(-step), 90, 0)) // older
	h.clk.t = h.clk.t.Add(step)
	h.proc(cycles(s, h.clk.t.Add(time.Hour), 1e9, 1e9)) // from a clock an hour ahead
	assert.Equal(t, map[string]int64{"baseline": 3, "out_of_order": 6, "future": 3}, pointsByResult(t, h))
	md := h.p.collect(h.clk.t)
	// The point from the future counted now instead of moving the windows an hour ahead.
	assert.InDelta(t, (1e9/(2e9-100))/0.005, burnRate(t, md, "oven-deadline", "5m"), 1e-9)
	// ... and its stream remembers now, not the future: the correctly stamped point after
	// it counts (before, every point for the next hour was out of order).
	h.clk.t = h.clk.t.Add(step)
	h.proc(cycles(s, h.clk.t, 1e9+1000, 1e9+100))
	assert.Equal(t, map[string]int64{"baseline": 3, "out_of_order": 6, "future": 3, "accepted": 3}, pointsByResult(t, h))

	// With max_delay 0 every point keeps its own time.
	cfg := ovenConfig()
	cfg.MaxDelay = 0
	d := newHarness(t, cfg)
	d.clk.t = epoch.Add(2 * time.Hour)
	now := d.clk.t
	delta := func(ts time.Time, ok, overrun float64) {
		d.proc(counter("controlloop.cycles", pmetric.AggregationTemporalityDelta, time.Time{}, ts, nil,
			sample{attrsOf("loop", "oven", "outcome", "ok"), ok},
			sample{attrsOf("loop", "oven", "outcome", "overrun"), overrun}))
	}
	delta(now.Add(-time.Minute), 1000, 0)
	delta(now.Add(-10*time.Minute), 0, 50) // late by 10 minutes
	delta(now.Add(-3*time.Hour), 0, 1e6)   // older than every window but the period
	delta(now.Add(-40*24*time.Hour), 0, 1) // older than the period: too old
	md = d.p.collect(now)
	assert.Zero(t, burnRate(t, md, "oven-deadline", "5m"))
	assert.InDelta(t, (50.0/1050)/0.005, burnRate(t, md, "oven-deadline", "1h"), 1e-9)
	assert.InDelta(t, (50.0/1050)/0.005, burnRate(t, md, "oven-deadline", "2h"), 1e-9)
	assert.InDelta(t, ((1e6+50)/(1e6+1050))/0.005, burnRate(t, md, "oven-deadline", "6h"), 1e-9)
	assert.Equal(t, 1e6+51, value(t, md, metricEvents, attrsOf("slo", "oven-deadline", "outcome", "bad")),
		"slo.events counts every event, even one too old for the windows")
	assert.Equal(t, map[string]int64{"accepted": 9, "too_old": 3}, pointsByResult(t, d))
}

// TestLatencySLI reads good events from the buckets of a cumulative histogram up to the
// threshold, and refuses a threshold that is not a bucket bound.
func TestLatencySLI(t *testing.T) {
	cfg := createDefaultConfig()
	cfg.SLOs = []SLOConfig{
		{Name: "api-latency", Objective: 0.95, GroupBy: []string{"service.name"},
			Latency: LatencyConfig{Histogram: `traces.span.metrics.duration{span.kind="SPAN_KIND_SERVER"}`, Threshold: 0.5}},
		{Name: "odd-latency", Objective: 0.95,
			Latency: LatencyConfig{Histogram: `traces.span.metrics.duration`, Threshold: 0.3}},
	}
	h := newHarness(t, cfg)
	// Bounds as the span_metrics connector computes them from 500ms: 500e6 ns / 1e9.
	bounds := []float64{0.1, float64(500*time.Millisecond) / float64(time.Second), 1}
	hist := func(ts time.Time, counts ...uint64) pmetric.Metrics {
		md := pmetric.NewMetrics()
		rm := md.ResourceMetrics().AppendEmpty()
		rm.Resource().Attributes().PutStr("service.name", "api")
		m := rm.ScopeMetrics().AppendEmpty().Metrics().AppendEmpty()
		m.SetName("traces.span.metrics.duration")
		m.SetUnit("s")
		hg := m.SetEmptyHistogram()
		hg.SetAggregationTemporality(pmetric.AggregationTemporalityCumulative)
		dp := hg.DataPoints().AppendEmpty()
		dp.Attributes().PutStr("span.kind", "SPAN_KIND_SERVER")
		dp.ExplicitBounds().FromRaw(bounds)
		dp.BucketCounts().FromRaw(counts)
		var n uint64
		for _, c := range counts {
			n += c
		}
		dp.SetCount(n)
		dp.SetStartTimestamp(pcommon.NewTimestampFromTime(epoch.Add(time.Second))) // after our start
		dp.SetTimestamp(pcommon.NewTimestampFromTime(ts))
		return md
	}
	h.clk.t = epoch.Add(time.Minute)
	h.proc(hist(h.clk.t, 50, 40, 8, 2)) // a new stream: all 100 count, 10 slower than 0.5 s
	h.clk.t = epoch.Add(2 * time.Minute)
	h.proc(hist(h.clk.t, 150, 40, 8, 12)) // +100 fast, +10 slow
	md := h.p.collect(h.clk.t)
	want := attrsOf("slo", "api-latency", "service.name", "api")
	assert.InDelta(t, (20.0/210)/0.05, value(t, md, metricBurnRate, map[string]string{"slo": "api-latency", "window": "5m"}), 1e-9)
	assert.Equal(t, 190.0, value(t, md, metricEvents, map[string]string{"slo": "api-latency", "outcome": "good"}))
	assert.InDelta(t, 1-(20.0/210)/0.05, value(t, md, metricRemaining, want), 1e-9)
	// service.name came from the resource, so it stays on the resource.
	found := false
	for i := 0; i < md.ResourceMetrics().Len(); i++ {
		v, ok := md.ResourceMetrics().At(i).Resource().Attributes().Get("service.name")
		found = found || ok && v.Str() == "api"
	}
	assert.True(t, found, "group_by attribute of the resource is emitted on the resource")

	assert.Equal(t, map[string]int64{"reset": 1, "accepted": 1, "not_a_bucket_bound": 2}, pointsByResult(t, h))
}

// TestGoodSLIAndGroupBy uses a good counter, groups by an attribute of the data point and
// checks that slo.events never steps back when good arrives before total.
func TestGoodSLIAndGroupBy(t *testing.T) {
	cfg := createDefaultConfig()
	cfg.SLOs = []SLOConfig{{
		Name: "api-availability", Objective: 0.99, GroupBy: []string{"device.id"},
		Total: `calls`, Good: `calls.ok`,
	}}
	h := newHarness(t, cfg)
	at := epoch.Add(time.Minute)
	h.clk.t = at
	send := func(name, device string, v float64) {
		h.proc(counter(name, pmetric.AggregationTemporalityDelta, time.Time{}, at, nil, sample{attrsOf("device.id", device), v}))
	}
	send("calls", "pi-1", 100)
	send("calls.ok", "pi-1", 99)
	send("calls", "pi-2", 10)
	md := h.p.collect(at)
	assert.InDelta(t, 1.0, value(t, md, metricBurnRate, attrsOf("slo", "api-availability", "device.id", "pi-1", "window", "5m")), 1e-9)
	// pi-2's good events have not arrived yet: every call reads as bad for now.
	assert.Equal(t, 10.0, value(t, md, metricEvents, attrsOf("device.id", "pi-2", "outcome", "bad")))
	send("calls.ok", "pi-2", 10)
	md = h.p.collect(at)
	assert.Equal(t, 10.0, value(t, md, metricEvents, attrsOf("device.id", "pi-2", "outcome", "good")))
	assert.Equal(t, 10.0, value(t, md, metricEvents, attrsOf("device.id", "pi-2", "outcome", "bad")),
		"a counter never decreases, so the early bad reading stays")
	assert.Zero(t, value(t, md, metricBurnRate, attrsOf("device.id", "pi-2", "window", "5m")), "the windows do correct it")
}

// TestMaxSeries folds the series past max_series into one overflow series per SLO.
func TestMaxSeries(t *testing.T) {
	cfg := ovenConfig()
	cfg.MaxSeries = 2
	cfg.SLOs[0].GroupBy = []string{"device.id"}
	h := newHarness(t, cfg)
	h.clk.t = epoch.Add(time.Minute)
	for _, dev := range []string{"pi-1", "pi-2", "pi-3", "pi-4"} {
		h.proc(counter("controlloop.cycles", pmetric.AggregationTemporalityDelta, time.Time{}, h.clk.t, map[string]string{"device.id": dev},
			sample{attrsOf("loop", "oven", "outcome", "ok"), 100}))
	}
	md := h.p.collect(h.clk.t)
	assert.Equal(t, 100.0, value(t, md, metricEvents, attrsOf("device.id", "pi-2", "outcome", "good")))
	assert.Equal(t, 200.0, value(t, md, metricEvents, attrsOf(overflowAttr, "true", "outcome", "good")))
	metadatatest.AssertEqualProcessorSloburnSeriesOverflow(t, h.tel, []metricdata.DataPoint[int64]{{Value: 2}}, metricdatatest.IgnoreTimestamp())
	metadatatest.AssertEqualProcessorSloburnSeries(t, h.tel, []metricdata.DataPoint[int64]{{Value: 2}}, metricdatatest.IgnoreTimestamp())

	// A series that stays silent for a whole period is forgotten, which makes room again.
	h.clk.t = h.clk.t.Add(defaultPeriod + time.Minute)
	h.p.collect(h.clk.t)
	metadatatest.AssertEqualProcessorSloburnSeries(t, h.tel, []metricdata.DataPoint[int64]{{Value: 0}}, metricdatatest.IgnoreTimestamp())
}

// TestAlertThresholds runs steady burns from the processor's start: 0.9x and exactly 1x
// never alert in four days (strictly above the factor, as the workbook and Sloth). The
// windows start empty, so a condition holds only once what the covered part of its long
// window saw proves it alone (error ratio x coverage > factor x budget): 15x pages when the
// 1h window is 57.6/60 covered (minute 58) and tickets when the 1d window is 1/5 covered
// (minute 289), all-bad (200x) pages at minute 5 (4.32 minutes) and tickets at minute 22
// (21.6), 1.2x opens a ticket once the 3d window is 5/6 covered (minute 3601).
func TestAlertThresholds(t *testing.T) {
	for _, tt := range []struct {
		name                   string
		badPerMinute           float64
		firstPage, firstTicket int // minute, 0 = never
		minutes                int
	}{
		{"15x pages when the 1h window proves it", 75, 58, 289, 300},
		{"all bad pages within 5 minutes", 1000, 5, 22, 30},
		{"0.9x stays silent", 4.5, 0, 0, 4 * 24 * 60},
		{"1x stays silent", 5, 0, 0, 4 * 24 * 60},
		{"1.2x opens a ticket", 6, 0, 3601, 3700},
	} {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, ovenConfig())
			firstPage, firstTicket := 0, 0
			for m := 1; m <= tt.minutes; m++ {
				h.clk.t = epoch.Add(time.Duration(m) * time.Minute)
				h.proc(counter("controlloop.cycles", pmetric.AggregationTemporalityDelta, time.Time{}, h.clk.t, nil,
					sample{attrsOf("loop", "oven", "outcome", "ok"), 1000 - tt.badPerMinute},
					sample{attrsOf("loop", "oven", "outcome", "skipped"), tt.badPerMinute}))
				md := h.p.collect(h.clk.t)
				if firstPage == 0 && alertOf(t, md, "oven-deadline", "page") == 1 {
					firstPage = m
				}
				if firstTicket == 0 && alertOf(t, md, "oven-deadline", "ticket") == 1 {
					firstTicket = m
				}
				if m == 1 {
					assert.InDelta(t, 1.0/60, value(t, md, metricCoverage, attrsOf("slo", "oven-deadline", "window", "1h")), 1e-12)
					assert.InDelta(t, 0.2, value(t, md, metricCoverage, attrsOf("slo", "oven-deadline", "window", "5m")), 1e-12)
				}
			}
			assert.Equal(t, tt.firstPage, firstPage, "first paging minute")
			assert.Equal(t, tt.firstTicket, firstTicket, "first ticketing minute")
		})
	}
}

// TestPassThroughAndEmitLoop runs the processor as the collector does: input passes
// unchanged, and the ticker sends slo.* metrics to the next consumer, also at shutdown.
func TestPassThroughAndEmitLoop(t *testing.T) {
	cfg := ovenConfig()
	cfg.EmitInterval = 10 * time.Millisecond
	sink := new(consumertest.MetricsSink)
	p, err := NewFactory().CreateMetrics(context.Background(), processortest.NewNopSettings(metadata.Type), cfg, sink)
	require.NoError(t, err)
	require.NoError(t, p.Start(context.Background(), componenttest.NewNopHost()))
	in := cycles(time.Now().Add(-time.Minute), time.Now(), 10, 1)
	want := pmetric.NewMetrics()
	in.CopyTo(want)
	require.NoError(t, p.ConsumeMetrics(context.Background(), in))
	var emitted pmetric.Metrics
	assert.Eventually(t, func() bool {
		for _, md := range sink.AllMetrics() {
			if md.ResourceMetrics().At(0).ScopeMetrics().At(0).Metrics().At(0).Name() == metricEvents {
				emitted = md
				return true
			}
		}
		return false
	}, 5*time.Second, 5*time.Millisecond)
	ts := emitted.ResourceMetrics().At(0).ScopeMetrics().At(0).Metrics().At(0).Sum().DataPoints().At(0).Timestamp()
	assert.Zero(t, int64(ts)%int64(cfg.EmitInterval), "ticks fall on multiples of emit_interval")
	assert.Equal(t, want, sink.AllMetrics()[0], "the input reaches the next consumer unchanged")
	before := len(sink.AllMetrics())
	require.NoError(t, p.Shutdown(context.Background()))
	// Shutdown joins the ticker goroutine (TestMain's goleak proves it ended) and emits once
	// more, so that the last events reach the exporters.
	assert.Greater(t, len(sink.AllMetrics()), before)
}

func TestNextTick(t *testing.T) {
	at := time.Unix(1005, 0) // a multiple of 15 s
	assert.Equal(t, time.Unix(1020, 0), nextTick(at, 15*time.Second), "on a tick: the next one")
	assert.Equal(t, time.Unix(1020, 0), nextTick(at.Add(time.Nanosecond), 15*time.Second))
	assert.Equal(t, time.Unix(1030, 0), nextTick(at.Add(19*time.Second), 10*time.Second))
}

func TestWindowLabel(t *testing.T) {
	for w, want := range map[time.Duration]string{
		5 * time.Minute: "5m", time.Hour: "1h", 6 * time.Hour: "6h", 24 * time.Hour: "1d", 72 * time.Hour: "3d", 90 * time.Minute: "90m",
	} {
		assert.Equal(t, want, windowLabel(w))
	}
}

// TestClockBehind: a device whose clock runs two hours behind (a Pi without RTC before NTP)
// still burns its SLO in the short windows: its points count at their arrival, are counted
// as delayed, and a log line names the device and the offset (at most one a minute).
func TestClockBehind(t *testing.T) {
	h := newHarness(t, ovenConfig())
	core, logs := observer.New(zap.WarnLevel)
	h.p.logger = zap.New(core)
	src := epoch.Add(-3 * time.Hour)
	var ok, overrun float64
	for k := 1; k <= 20; k++ {
		h.clk.t = epoch.Add(time.Duration(k) * step)
		ok, overrun = ok+900, overrun+100
		h.proc(counter("controlloop.cycles", pmetric.AggregationTemporalityCumulative, src, h.clk.t.Add(-2*time.Hour),
			map[string]string{"device.id": "pi-7"},
			sample{attrsOf("loop", "oven", "outcome", "ok"), ok},
			sample{attrsOf("loop", "oven", "outcome", "overrun"), overrun}))
	}
	md := h.p.collect(h.clk.t)
	// 19 increases after the baseline, all 10% bad, all in the 5m window.
	assert.InDelta(t, 0.1/0.005, burnRate(t, md, "oven-deadline", "5m"), 1e-9)
	assert.Equal(t, map[string]int64{"baseline": 3, "delayed": 57}, pointsByResult(t, h))
	require.Equal(t, 5, logs.Len(), "one line a minute")
	entry := logs.All()[0]
	assert.Contains(t, entry.Message, "behind")
	assert.Equal(t, -2*time.Hour, entry.ContextMap()["offset"])
	assert.Equal(t, map[string]any{"device.id": "pi-7"}, entry.ContextMap()["resource"])
}
