package metricconv

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.opentelemetry.io/otel/sdk/resource"
)

func TestAppendFromSDK(t *testing.T) {
	reader := sdkmetric.NewManualReader()
	res := resource.NewSchemaless(attribute.String("service.name", "fieldcol-edge"))
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader), sdkmetric.WithResource(res))
	t.Cleanup(func() { _ = mp.Shutdown(context.Background()) })
	m := mp.Meter("controlloop")

	cnt, err := m.Int64Counter("controlloop.cycles")
	require.NoError(t, err)
	cnt.Add(context.Background(), 3, metric.WithAttributes(attribute.String("loop", "oven"), attribute.String("outcome", "ok")))
	hist, err := m.Float64Histogram("controlloop.cycle.lateness", metric.WithUnit("s"), metric.WithExplicitBucketBoundaries(0.001, 0.01))
	require.NoError(t, err)
	hist.Record(context.Background(), 0.0005, metric.WithAttributes(attribute.String("loop", "oven")))
	hist.Record(context.Background(), 0.02, metric.WithAttributes(attribute.String("loop", "oven")))
	_, err = m.Float64ObservableGauge("controlloop.process_value", metric.WithFloat64Callback(func(_ context.Context, o metric.Float64Observer) error {
		o.Observe(181.5, metric.WithAttributes(attribute.String("loop", "oven")))
		return nil
	}))
	require.NoError(t, err)
	_, err = m.Int64ObservableGauge("controlloop.alarms.active", metric.WithInt64Callback(func(_ context.Context, o metric.Int64Observer) error {
		o.Observe(1, metric.WithAttributes(attribute.Bool("flag", true), attribute.Int("n", 2), attribute.Float64("f", 0.5)))
		return nil
	}))
	require.NoError(t, err)

	var rm metricdata.ResourceMetrics
	require.NoError(t, reader.Collect(context.Background(), &rm))
	ms := pmetric.NewMetrics()
	require.NoError(t, Append(&rm, ms))

	require.Equal(t, 1, ms.ResourceMetrics().Len())
	r := ms.ResourceMetrics().At(0)
	sn, ok := r.Resource().Attributes().Get("service.name")
	require.True(t, ok)
	assert.Equal(t, "fieldcol-edge", sn.Str())
	byName := map[string]pmetric.Metric{}
	sm := r.ScopeMetrics().At(0)
	assert.Equal(t, "controlloop", sm.Scope().Name())
	for i := 0; i < sm.Metrics().Len(); i++ {
		byName[sm.Metrics().At(i).Name()] = sm.Metrics().At(i)
	}

	c := byName["controlloop.cycles"]
	require.Equal(t, pmetric.MetricTypeSum, c.Type())
	assert.True(t, c.Sum().IsMonotonic())
	assert.Equal(t, pmetric.AggregationTemporalityCumulative, c.Sum().AggregationTemporality())
	dp := c.Sum().DataPoints().At(0)
	assert.Equal(t, int64(3), dp.IntValue())
	assert.Equal(t, map[string]any{"loop": "oven", "outcome": "ok"}, dp.Attributes().AsRaw())
	assert.NotZero(t, dp.StartTimestamp())

	h := byName["controlloop.cycle.lateness"]
	require.Equal(t, pmetric.MetricTypeHistogram, h.Type())
	assert.Equal(t, "s", h.Unit())
	hdp := h.Histogram().DataPoints().At(0)
	assert.Equal(t, uint64(2), hdp.Count())
	assert.Equal(t, []float64{0.001, 0.01}, hdp.ExplicitBounds().AsRaw())
	assert.Equal(t, []uint64{1, 0, 1}, hdp.BucketCounts().AsRaw())
	assert.InDelta(t, 0.0205, hdp.Sum(), 1e-12)
	assert.InDelta(t, 0.0005, hdp.Min(), 1e-12)
	assert.InDelta(t, 0.02, hdp.Max(), 1e-12)

	g := byName["controlloop.process_value"]
	require.Equal(t, pmetric.MetricTypeGauge, g.Type())
	assert.Equal(t, 181.5, g.Gauge().DataPoints().At(0).DoubleValue())

	a := byName["controlloop.alarms.active"]
	assert.Equal(t, map[string]any{"flag": true, "n": int64(2), "f": 0.5}, a.Gauge().DataPoints().At(0).Attributes().AsRaw())
}

func TestUnsupportedAggregation(t *testing.T) {
	rm := metricdata.ResourceMetrics{ScopeMetrics: []metricdata.ScopeMetrics{{
		Metrics: []metricdata.Metrics{{Name: "x", Data: metricdata.Summary{}}},
	}}}
	err := Append(&rm, pmetric.NewMetrics())
	require.ErrorContains(t, err, `metric "x": aggregation metricdata.Summary is not supported`)
}
