package sloburnprocessor

import (
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pmetric"
)

// documentedWindowBytes is the size the README states for the bucket state of one series
// with the workbook's seven windows and the 30-day period at the default 15s emit interval:
// (20 + 120 + 240 + 480 + 1440 + 1440 + 1440 + 1440) buckets x 16 bytes, 8 ring heads and
// the series header.
const documentedWindowBytes = 106040

// documentedSeriesBytes is the README's bound for everything one SLO series holds, measured
// on the heap: the buckets (105,920 bytes, which the allocator rounds up to whole 8 KiB
// pages: 106,496), the group record, its key and its map entry.
const documentedSeriesBytes = 108 * 1024

func TestStateBytesPerSeries(t *testing.T) {
	cfg := ovenConfig()
	cfg.SLOs[0].GroupBy = []string{"device.id"}
	const n = 200
	cfg.MaxSeries = n
	h := newHarness(t, cfg)
	require.Equal(t, documentedWindowBytes, h.p.slos[0].plan.StateBytes())

	// Build the input first so that only the processor's state is in the measurement.
	h.clk.t = epoch.Add(time.Minute)
	batches := make([]pmetric.Metrics, n)
	for i := range batches {
		batches[i] = counter("controlloop.cycles", pmetric.AggregationTemporalityDelta, time.Time{}, h.clk.t,
			map[string]string{"device.id": fmt.Sprintf("pi-%06d", i)},
			sample{attrsOf("loop", "oven", "outcome", "overrun"), 1})
	}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	for _, md := range batches {
		h.p.ingest(md, h.clk.t.UnixNano())
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	perSeries := float64(after.HeapAlloc-before.HeapAlloc) / n
	t.Logf("heap per SLO series: %.0f bytes (buckets %d)", perSeries, documentedWindowBytes)
	assert.Len(t, h.p.slos[0].groups, n)
	assert.GreaterOrEqual(t, perSeries, float64(documentedWindowBytes))
	assert.LessOrEqual(t, perSeries, float64(documentedSeriesBytes))
	runtime.KeepAlive(batches)
}
