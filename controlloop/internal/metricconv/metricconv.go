// Package metricconv turns what an OpenTelemetry SDK ManualReader collected into pdata, so
// that the control loop can be instrumented with the ordinary metric API and still hand its
// metrics to the collector pipeline through the hardware receiver.
package metricconv

import (
	"fmt"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
)

// Append adds rm as one ResourceMetrics to ms. Aggregations the control loop never creates
// (exponential histograms, summaries) are reported as an error rather than dropped silently.
func Append(rm *metricdata.ResourceMetrics, ms pmetric.Metrics) error {
	out := ms.ResourceMetrics().AppendEmpty()
	if rm.Resource != nil {
		putAttrs(out.Resource().Attributes(), rm.Resource.Iter())
		out.SetSchemaUrl(rm.Resource.SchemaURL())
	}
	for _, sm := range rm.ScopeMetrics {
		osm := out.ScopeMetrics().AppendEmpty()
		osm.Scope().SetName(sm.Scope.Name)
		osm.Scope().SetVersion(sm.Scope.Version)
		osm.SetSchemaUrl(sm.Scope.SchemaURL)
		for _, m := range sm.Metrics {
			om := osm.Metrics().AppendEmpty()
			om.SetName(m.Name)
			om.SetDescription(m.Description)
			om.SetUnit(m.Unit)
			if err := convertData(m.Data, om); err != nil {
				return fmt.Errorf("metric %q: %w", m.Name, err)
			}
		}
	}
	return nil
}

func convertData(data metricdata.Aggregation, om pmetric.Metric) error {
	switch d := data.(type) {
	case metricdata.Gauge[int64]:
		gaugeInt(d.DataPoints, om.SetEmptyGauge().DataPoints())
	case metricdata.Gauge[float64]:
		gaugeFloat(d.DataPoints, om.SetEmptyGauge().DataPoints())
	case metricdata.Sum[int64]:
		s := om.SetEmptySum()
		s.SetIsMonotonic(d.IsMonotonic)
		s.SetAggregationTemporality(temporality(d.Temporality))
		gaugeInt(d.DataPoints, s.DataPoints())
	case metricdata.Sum[float64]:
		s := om.SetEmptySum()
		s.SetIsMonotonic(d.IsMonotonic)
		s.SetAggregationTemporality(temporality(d.Temporality))
		gaugeFloat(d.DataPoints, s.DataPoints())
	case metricdata.Histogram[int64]:
		h := om.SetEmptyHistogram()
		h.SetAggregationTemporality(temporality(d.Temporality))
		histogram(d.DataPoints, h.DataPoints(), func(v int64) float64 { return float64(v) })
	case metricdata.Histogram[float64]:
		h := om.SetEmptyHistogram()
		h.SetAggregationTemporality(temporality(d.Temporality))
		histogram(d.DataPoints, h.DataPoints(), func(v float64) float64 { return v })
	default:
		return fmt.Errorf("aggregation %T is not supported", data)
	}
	return nil
}

func temporality(t metricdata.Temporality) pmetric.AggregationTemporality {
	switch t {
	case metricdata.CumulativeTemporality:
		return pmetric.AggregationTemporalityCumulative
	case metricdata.DeltaTemporality:
		return pmetric.AggregationTemporalityDelta
	}
	return pmetric.AggregationTemporalityUnspecified
}

func ts(t time.Time) pcommon.Timestamp {
	if t.IsZero() {
		return 0
	}
	return pcommon.NewTimestampFromTime(t)
}

func gaugeInt(dps []metricdata.DataPoint[int64], out pmetric.NumberDataPointSlice) {
	out.EnsureCapacity(len(dps))
	for _, dp := range dps {
		o := out.AppendEmpty()
		putAttrs(o.Attributes(), dp.Attributes.Iter())
		o.SetStartTimestamp(ts(dp.StartTime))
		o.SetTimestamp(ts(dp.Time))
		o.SetIntValue(dp.Value)
	}
}

func gaugeFloat(dps []metricdata.DataPoint[float64], out pmetric.NumberDataPointSlice) {
	out.EnsureCapacity(len(dps))
	for _, dp := range dps {
		o := out.AppendEmpty()
		putAttrs(o.Attributes(), dp.Attributes.Iter())
		o.SetStartTimestamp(ts(dp.StartTime))
		o.SetTimestamp(ts(dp.Time))
		o.SetDoubleValue(dp.Value)
	}
}

func histogram[N int64 | float64](dps []metricdata.HistogramDataPoint[N], out pmetric.HistogramDataPointSlice, f func(N) float64) {
	out.EnsureCapacity(len(dps))
	for _, dp := range dps {
		o := out.AppendEmpty()
		putAttrs(o.Attributes(), dp.Attributes.Iter())
		o.SetStartTimestamp(ts(dp.StartTime))
		o.SetTimestamp(ts(dp.Time))
		o.SetCount(dp.Count)
		o.SetSum(f(dp.Sum))
		o.ExplicitBounds().FromRaw(dp.Bounds)
		o.BucketCounts().FromRaw(dp.BucketCounts)
		if v, ok := dp.Min.Value(); ok {
			o.SetMin(f(v))
		}
		if v, ok := dp.Max.Value(); ok {
			o.SetMax(f(v))
		}
	}
}

func putAttrs(dst pcommon.Map, it attribute.Iterator) {
	dst.EnsureCapacity(it.Len())
	for it.Next() {
		kv := it.Attribute()
		k := string(kv.Key)
		switch kv.Value.Type() {
		case attribute.BOOL:
			dst.PutBool(k, kv.Value.AsBool())
		case attribute.INT64:
			dst.PutInt(k, kv.Value.AsInt64())
		case attribute.FLOAT64:
			dst.PutDouble(k, kv.Value.AsFloat64())
		case attribute.STRING:
			dst.PutStr(k, kv.Value.AsString())
		default:
			// Slices are not used by the control loop; keep them readable rather than lose them.
			dst.PutStr(k, kv.Value.String())
		}
	}
}
