package sloburnprocessor

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/fieldcol/fieldcol/processors/sloburnprocessor/internal/metadatatest"
)

// clock is the processor's clock in tests, moved by hand.
type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

// epoch is where test time starts: a multiple of every bucket width (72 min for 3d, 12 h
// for 30d) and far from zero.
var epoch = time.Unix(0, 0).Add(10000 * 24 * time.Hour)

// harness is one processor with a hand-moved clock and recorded self-telemetry.
type harness struct {
	t     testing.TB
	clk   *clock
	p     *sloburn
	sink  *consumertest.MetricsSink
	tel   *componenttest.Telemetry
	proc  func(pmetric.Metrics)
	start time.Time
}

func newHarness(t testing.TB, cfg *Config) *harness {
	t.Helper()
	return newHarnessAt(t, cfg, epoch)
}

// newHarnessAt is newHarness with the processor started at time at.
func newHarnessAt(t testing.TB, cfg *Config, at time.Time) *harness {
	t.Helper()
	require.NoError(t, cfg.Validate())
	h := &harness{t: t, clk: &clock{t: at}, sink: new(consumertest.MetricsSink), tel: componenttest.NewTelemetry(), start: at}
	t.Cleanup(func() { require.NoError(t, h.tel.Shutdown(context.Background())) })
	p, err := newSLOBurn(cfg, metadatatest.NewSettings(h.tel), h.sink, h.clk.now)
	require.NoError(t, err)
	h.p = p
	h.proc = func(md pmetric.Metrics) {
		out, err := p.processMetrics(context.Background(), md)
		require.NoError(t, err)
		require.Equal(t, md, out)
	}
	return h
}

func ovenConfig() *Config {
	cfg := createDefaultConfig()
	cfg.SLOs = []SLOConfig{{
		Name:      "oven-deadline",
		Objective: 0.995,
		Total:     `controlloop.cycles{loop="oven"}`,
		Bad:       `controlloop.cycles{loop="oven",outcome=~"overrun|skipped"}`,
	}}
	return cfg
}

// sample is one data point of a counter.
type sample struct {
	attrs map[string]string
	v     float64
}

// counter builds one monotonic sum with the given points at time ts.
func counter(name string, temporality pmetric.AggregationTemporality, start, ts time.Time, res map[string]string, pts ...sample) pmetric.Metrics {
	md := pmetric.NewMetrics()
	rm := md.ResourceMetrics().AppendEmpty()
	for k, v := range res {
		rm.Resource().Attributes().PutStr(k, v)
	}
	m := rm.ScopeMetrics().AppendEmpty().Metrics().AppendEmpty()
	m.SetName(name)
	s := m.SetEmptySum()
	s.SetIsMonotonic(true)
	s.SetAggregationTemporality(temporality)
	for _, p := range pts {
		dp := s.DataPoints().AppendEmpty()
		for k, v := range p.attrs {
			dp.Attributes().PutStr(k, v)
		}
		if !start.IsZero() {
			dp.SetStartTimestamp(pcommon.NewTimestampFromTime(start))
		}
		dp.SetTimestamp(pcommon.NewTimestampFromTime(ts))
		dp.SetIntValue(int64(p.v))
	}
	return md
}

// cycles is the controlloop.cycles counter of loop oven at ts with cumulative ok and overrun.
func cycles(start, ts time.Time, ok, overrun float64) pmetric.Metrics {
	return counter("controlloop.cycles", pmetric.AggregationTemporalityCumulative, start, ts, nil,
		sample{map[string]string{"loop": "oven", "outcome": "ok"}, ok},
		sample{map[string]string{"loop": "oven", "outcome": "overrun"}, overrun},
		sample{map[string]string{"loop": "mixer", "outcome": "overrun"}, 1e6}, // another loop: ignored
	)
}

// value returns the value of the one data point of metric name whose attributes include want.
func value(t testing.TB, md pmetric.Metrics, name string, want map[string]string) float64 {
	t.Helper()
	var found []float64
	rms := md.ResourceMetrics()
	for i := 0; i < rms.Len(); i++ {
		res := rms.At(i).Resource().Attributes()
		sms := rms.At(i).ScopeMetrics()
		for j := 0; j < sms.Len(); j++ {
			ms := sms.At(j).Metrics()
			for k := 0; k < ms.Len(); k++ {
				m := ms.At(k)
				if m.Name() != name {
					continue
				}
				var dps pmetric.NumberDataPointSlice
				if m.Type() == pmetric.MetricTypeSum {
					dps = m.Sum().DataPoints()
				} else {
					dps = m.Gauge().DataPoints()
				}
				for d := 0; d < dps.Len(); d++ {
					dp := dps.At(d)
					if matches(dp.Attributes(), res, want) {
						found = append(found, dp.DoubleValue())
					}
				}
			}
		}
	}
	require.Len(t, found, 1, "points of %s%v", name, want)
	return found[0]
}

func matches(dp, res pcommon.Map, want map[string]string) bool {
	for k, v := range want {
		got, ok := dp.Get(k)
		if !ok {
			got, ok = res.Get(k)
		}
		if !ok || got.AsString() != v {
			return false
		}
	}
	return true
}

func burnRate(t testing.TB, md pmetric.Metrics, slo, window string) float64 {
	t.Helper()
	return value(t, md, metricBurnRate, map[string]string{"slo": slo, "window": window})
}

func alertOf(t testing.TB, md pmetric.Metrics, slo, severity string) float64 {
	t.Helper()
	return value(t, md, metricAlert, map[string]string{"slo": slo, "severity": severity})
}

// pointsByResult reads otelcol_processor_sloburn_points from the self-telemetry.
func pointsByResult(t testing.TB, h *harness) map[string]int64 {
	t.Helper()
	m, err := h.tel.GetMetric("otelcol_processor_sloburn_points")
	require.NoError(t, err)
	out := map[string]int64{}
	for _, dp := range m.Data.(metricdata.Sum[int64]).DataPoints {
		r, _ := dp.Attributes.Value("result")
		out[r.AsString()] = dp.Value
	}
	return out
}

func attrsOf(kv ...string) map[string]string {
	m := map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	if len(kv)%2 != 0 {
		panic(fmt.Sprint("odd attribute list ", kv))
	}
	return m
}
