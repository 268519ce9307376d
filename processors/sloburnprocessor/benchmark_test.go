package sloburnprocessor

import (
	"context"
	"fmt"
	"runtime"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
)

// batchOf builds the metrics a fleet gateway might see in one export: devices x loops x
// outcomes cumulative controlloop.cycles points, plus a gauge the processor ignores.
func batchOf(devices, loops int, ts time.Time, scale float64) pmetric.Metrics {
	md := pmetric.NewMetrics()
	for d := 0; d < devices; d++ {
		rm := md.ResourceMetrics().AppendEmpty()
		rm.Resource().Attributes().PutStr("device.id", fmt.Sprintf("pi-%04d", d))
		rm.Resource().Attributes().PutStr("service.name", "fieldcol-edge")
		ms := rm.ScopeMetrics().AppendEmpty().Metrics()
		m := ms.AppendEmpty()
		m.SetName("controlloop.cycles")
		s := m.SetEmptySum()
		s.SetIsMonotonic(true)
		s.SetAggregationTemporality(pmetric.AggregationTemporalityCumulative)
		for l := 0; l < loops; l++ {
			for i, outcome := range []string{"ok", "overrun", "skipped"} {
				dp := s.DataPoints().AppendEmpty()
				dp.Attributes().PutStr("loop", fmt.Sprintf("loop-%d", l))
				dp.Attributes().PutStr("outcome", outcome)
				dp.SetStartTimestamp(pcommon.NewTimestampFromTime(epoch.Add(-time.Hour)))
				dp.SetTimestamp(pcommon.NewTimestampFromTime(ts))
				dp.SetIntValue(int64(scale * float64(1000/(i*10+1))))
			}
		}
		g := ms.AppendEmpty()
		g.SetName("hw.temperature")
		g.SetEmptyGauge().DataPoints().AppendEmpty().SetDoubleValue(41)
	}
	return md
}

func fleetConfig() *Config {
	cfg := createDefaultConfig()
	cfg.SLOs = []SLOConfig{{
		Name: "loop-deadline", Objective: 0.995, GroupBy: []string{"device.id", "loop"},
		Total: `controlloop.cycles`, Bad: `controlloop.cycles{outcome=~"overrun|skipped"}`,
	}}
	return cfg
}

// BenchmarkProcessMetrics reports the cost of the hot path per data point of the input
// (each controlloop.cycles point is read by total and, for overrun and skipped, by bad).
func BenchmarkProcessMetrics(b *testing.B) {
	h := newHarness(b, fleetConfig())
	const devices, loops = 50, 4
	batches := make([]pmetric.Metrics, 16)
	for i := range batches {
		batches[i] = batchOf(devices, loops, epoch.Add(time.Duration(i+1)*time.Second), float64(i+1))
	}
	points := batches[0].DataPointCount()
	ctx := context.Background()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		md := batches[i%len(batches)]
		h.clk.t = epoch.Add(time.Duration(i+1) * time.Second)
		// The timestamps repeat every 16 batches: those points are then out of order, which
		// is the cheaper path; rewrite them so every point is a real increase.
		if i >= len(batches) {
			b.StopTimer()
			retime(md, h.clk.t, float64(i+1))
			b.StartTimer()
		}
		if _, err := h.p.processMetrics(ctx, md); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*points), "ns/point")
}

func retime(md pmetric.Metrics, ts time.Time, scale float64) {
	rms := md.ResourceMetrics()
	for i := 0; i < rms.Len(); i++ {
		dps := rms.At(i).ScopeMetrics().At(0).Metrics().At(0).Sum().DataPoints()
		for j := 0; j < dps.Len(); j++ {
			dps.At(j).SetTimestamp(pcommon.NewTimestampFromTime(ts))
			dps.At(j).SetIntValue(int64(scale * float64(1000/(j%3*10+1))))
		}
	}
}

// BenchmarkEmit reports the cost of computing and building the slo.* metrics per series.
func BenchmarkEmit(b *testing.B) {
	h := newHarness(b, fleetConfig())
	const devices, loops = 50, 4
	h.clk.t = epoch.Add(time.Second)
	h.p.ingest(batchOf(devices, loops, h.clk.t, 1), h.clk.t.UnixNano())
	h.clk.t = epoch.Add(2 * time.Second)
	h.p.ingest(batchOf(devices, loops, h.clk.t, 2), h.clk.t.UnixNano())
	series := h.p.nSeries
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		h.p.collect(h.clk.t.Add(time.Duration(i) * time.Second))
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*series), "ns/series")
}

// BenchmarkSeriesState reports the heap held per SLO series (B/series), stream table
// included, measured on the first iteration as in TestStateBytesPerSeries; the timed loop is
// the cost of creating 1000 series from scratch.
func BenchmarkSeriesState(b *testing.B) {
	cfg := fleetConfig()
	cfg.MaxSeries = 1 << 30
	md := batchOf(200, 5, epoch.Add(time.Second), 1)
	var perSeries float64
	for i := 0; i < b.N; i++ {
		h := newHarness(b, cfg)
		var before, after runtime.MemStats
		if i == 0 {
			b.StopTimer()
			runtime.GC()
			runtime.ReadMemStats(&before)
			b.StartTimer()
		}
		h.p.ingest(md, epoch.Add(time.Second).UnixNano())
		if i == 0 {
			b.StopTimer()
			runtime.GC()
			runtime.ReadMemStats(&after)
			// The stream table (last cumulative value of each input stream) counts too.
			perSeries = float64(after.HeapAlloc-before.HeapAlloc) / float64(h.p.nSeries)
			b.StartTimer()
		}
	}
	b.ReportMetric(perSeries, "B/series")
}
