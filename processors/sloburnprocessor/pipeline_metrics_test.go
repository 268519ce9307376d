package sloburnprocessor

import (
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"

	"github.com/fieldcol/fieldcol/internal/mdmetrics"
)

// TestEmittedMetricsMatchMetadata holds what the processor emits to pipeline_metrics.yaml
// (where its slo.* metrics are declared, see there why not in metadata.yaml): every metric
// is declared with the same description, unit and type, its data points carry only declared
// attributes besides the SLO's group_by ones, and every declared metric is emitted.
func TestEmittedMetricsMatchMetadata(t *testing.T) {
	all, err := mdmetrics.Load("pipeline_metrics.yaml")
	require.NoError(t, err)
	declared := map[string]mdmetrics.Metric{}
	for _, m := range all {
		declared[m.Name] = m
	}
	require.Len(t, declared, 6)

	// Two series of one SLO fill max_series, a third folds into the overflow series.
	cfg := ovenConfig()
	cfg.MaxSeries = 2
	cfg.SLOs[0].GroupBy = []string{"device.id"}
	h := newHarness(t, cfg)
	h.clk.t = epoch.Add(time.Minute)
	for _, dev := range []string{"pi-1", "pi-2", "pi-3"} {
		h.proc(counter("controlloop.cycles", pmetric.AggregationTemporalityDelta, time.Time{}, h.clk.t, map[string]string{"device.id": dev},
			sample{attrsOf("loop", "oven", "outcome", "ok"), 100}))
	}
	md := h.p.collect(h.clk.t)

	emitted := map[string]bool{}
	overflowSeen := false
	rms := md.ResourceMetrics()
	for i := 0; i < rms.Len(); i++ {
		sms := rms.At(i).ScopeMetrics()
		for j := 0; j < sms.Len(); j++ {
			ms := sms.At(j).Metrics()
			for k := 0; k < ms.Len(); k++ {
				m := ms.At(k)
				emitted[m.Name()] = true
				d, ok := declared[m.Name()]
				if !assert.True(t, ok, "%s is not declared in metadata.yaml", m.Name()) {
					continue
				}
				assert.Equal(t, d.Description, m.Description(), m.Name())
				assert.Equal(t, d.Unit, m.Unit(), m.Name())
				var dps pmetric.NumberDataPointSlice
				switch d.Kind {
				case mdmetrics.Counter:
					require.Equal(t, pmetric.MetricTypeSum, m.Type(), m.Name())
					assert.True(t, m.Sum().IsMonotonic(), m.Name())
					assert.Equal(t, pmetric.AggregationTemporalityCumulative, m.Sum().AggregationTemporality(), m.Name())
					dps = m.Sum().DataPoints()
				case mdmetrics.Gauge:
					require.Equal(t, pmetric.MetricTypeGauge, m.Type(), m.Name())
					dps = m.Gauge().DataPoints()
				default:
					t.Fatalf("%s: the processor emits no %s", m.Name(), d.Kind)
				}
				require.Positive(t, dps.Len(), m.Name())
				for l := 0; l < dps.Len(); l++ {
					dps.At(l).Attributes().Range(func(key string, _ pcommon.Value) bool {
						if key == overflowAttr {
							overflowSeen = true
						}
						assert.True(t, slices.Contains(d.Attributes, key) || slices.Contains(cfg.SLOs[0].GroupBy, key),
							"%s carries attribute %s, which metadata.yaml does not declare", m.Name(), key)
						return true
					})
				}
			}
		}
	}
	assert.True(t, overflowSeen, "the overflow series was emitted")
	for name := range declared {
		assert.True(t, emitted[name], "%s is declared but not emitted", name)
	}
}
