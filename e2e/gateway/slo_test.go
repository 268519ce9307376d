package gateway

import (
	"context"
	"fmt"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.yaml.in/yaml/v3"

	"github.com/fieldcol/fieldcol/e2e/internal/harness"
	"github.com/fieldcol/fieldcol/internal/otlpsink"
	"github.com/fieldcol/fieldcol/internal/promtest"
)

// The gateway's two API SLOs, as shipped (selectors, objectives, the latency threshold in the
// span_metrics histogram's unit), go into a page on failing and slow server spans and back
// once the spans are fast and succeed again. Only the alert windows are shortened (2m and 1m
// at factor 6, emits and span_metrics flushes every second), so that a run takes about two
// minutes; the Prometheus names the pipeline produces are read, not assumed.
func TestGatewaySLOsPageAndRecover(t *testing.T) {
	var shipped struct {
		Processors struct {
			SLOBurn struct {
				SLOs []map[string]any `yaml:"slos"`
			} `yaml:"sloburn"`
		} `yaml:"processors"`
	}
	raw, err := os.ReadFile(harness.Shipped("distributions/gateway/config.yaml"))
	require.NoError(t, err)
	require.NoError(t, yaml.Unmarshal(raw, &shipped))
	slos := shipped.Processors.SLOBurn.SLOs
	var names []any
	for _, s := range slos {
		names = append(names, s["name"])
	}
	require.Subset(t, names, []any{"api-availability", "api-latency", "mission-success"}, "the gateway ships the fleet document's SLOs")
	for _, s := range slos {
		s["alerts"] = []map[string]any{{"severity": "page", "long_window": "2m", "short_window": "1m", "factor": 6}}
	}
	overlay, err := yaml.Marshal(map[string]any{
		"connectors": map[string]any{"span_metrics": map[string]any{"metrics_flush_interval": "1s"}},
		"processors": map[string]any{"sloburn": map[string]any{"emit_interval": "1s", "slos": slos}},
	})
	require.NoError(t, err)

	gw := harness.StartCollector(t, harness.Binary(t, "fieldcol-gateway"),
		[]string{harness.Shipped("distributions/gateway/config.yaml"), harness.Overlay(t, string(overlay))})
	prom := promtest.Start(t, promtest.Options{ScrapeTargets: []string{gw.Metrics}})
	client, err := otlpsink.Dial(gw.OTLPGRPC)
	require.NoError(t, err)
	defer client.Close()

	// Ten server calls of service api every 200 ms: failing and taking 800 ms while bad is
	// set, succeeding in 50 ms otherwise.
	var bad atomic.Bool
	bad.Store(true)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(200 * time.Millisecond)
		defer tick.Stop()
		var n uint64
		for {
			select {
			case <-ctx.Done():
				return
			case now := <-tick.C:
				n++
				if err := client.SendTraces(ctx, apiCalls(now, n, bad.Load())); err != nil && ctx.Err() == nil {
					t.Errorf("sending spans: %v", err)
					return
				}
			}
		}
	}()
	defer func() { cancel(); <-done }()

	// The robots' missions counter (docs/fleet-telemetry.md) reaches Prometheus as
	// missions_total{status} and feeds the mission-success SLO.
	require.NoError(t, client.SendMetrics(ctx, missions(time.Now(), 97, 2, 1)))
	prom.WaitFor(t, `missions_total{status="success",service_name="mission-api"}`, 60*time.Second)
	prom.WaitFor(t, `slo_burn_rate{slo="mission-success",window="2m"}`, 60*time.Second)

	page := func(slo string) string {
		return fmt.Sprintf(`slo_alert{slo=%q,service_name="api",severity="page"}`, slo)
	}
	// The names the gateway produces: the histogram in seconds with a 0.5 bound.
	prom.WaitFor(t, `traces_span_metrics_duration_seconds_bucket{service_name="api",span_kind="SPAN_KIND_SERVER",le="0.5"}`, 60*time.Second)
	for _, slo := range []string{"api-availability", "api-latency"} {
		harness.WaitUntil(t, 90*time.Second, time.Second, func() (bool, string) {
			v := prom.Value(page(slo))
			return v == 1, fmt.Sprintf("%s does not page: slo_alert %v, burn 1m %v, 2m %v", slo, v,
				prom.Value(fmt.Sprintf(`slo_burn_rate{slo=%q,service_name="api",window="1m"}`, slo)),
				prom.Value(fmt.Sprintf(`slo_burn_rate{slo=%q,service_name="api",window="2m"}`, slo)))
		})
	}

	bad.Store(false)
	for _, slo := range []string{"api-availability", "api-latency"} {
		harness.WaitUntil(t, 100*time.Second, time.Second, func() (bool, string) {
			v := prom.Value(page(slo))
			return v == 0, fmt.Sprintf("%s still pages after recovery: slo_alert %v, burn 1m %v", slo, v,
				prom.Value(fmt.Sprintf(`slo_burn_rate{slo=%q,service_name="api",window="1m"}`, slo)))
		})
	}
	cancel()
	<-done
	gw.Stop(t)
}

// apiCalls is one batch of ten server spans of service api ending at now.
func apiCalls(now time.Time, batch uint64, failing bool) ptrace.Traces {
	td := ptrace.NewTraces()
	rs := td.ResourceSpans().AppendEmpty()
	rs.Resource().Attributes().PutStr("service.name", "api")
	ss := rs.ScopeSpans().AppendEmpty()
	dur := 50 * time.Millisecond
	if failing {
		dur = 800 * time.Millisecond
	}
	for i := range 10 {
		span := ss.Spans().AppendEmpty()
		span.SetName("GET /missions/{id}")
		span.SetKind(ptrace.SpanKindServer)
		var tid pcommon.TraceID
		for j := range 8 {
			tid[j] = byte(batch >> (8 * j))
		}
		tid[15] = byte(i)
		span.SetTraceID(tid)
		span.SetSpanID(pcommon.SpanID{1, byte(i), byte(batch), byte(batch >> 8), byte(batch >> 16), 0, 0, 1})
		span.SetStartTimestamp(pcommon.NewTimestampFromTime(now.Add(-dur)))
		span.SetEndTimestamp(pcommon.NewTimestampFromTime(now))
		span.Attributes().PutStr("http.request.method", "GET")
		span.Attributes().PutStr("http.route", "/missions/{id}")
		if failing {
			span.Attributes().PutInt("http.response.status_code", 503)
			span.Status().SetCode(ptrace.StatusCodeError)
		} else {
			span.Attributes().PutInt("http.response.status_code", 200)
		}
	}
	return td
}

// missions is the robots' mission counter, one cumulative point per status.
func missions(now time.Time, success, failure, aborted int64) pmetric.Metrics {
	md := pmetric.NewMetrics()
	rm := md.ResourceMetrics().AppendEmpty()
	rm.Resource().Attributes().PutStr("service.name", "mission-api")
	rm.Resource().Attributes().PutStr("device.id", "robot-7")
	m := rm.ScopeMetrics().AppendEmpty().Metrics().AppendEmpty()
	m.SetName("missions")
	m.SetUnit("{mission}")
	sum := m.SetEmptySum()
	sum.SetIsMonotonic(true)
	sum.SetAggregationTemporality(pmetric.AggregationTemporalityCumulative)
	for status, v := range map[string]int64{"success": success, "failure": failure, "aborted": aborted} {
		dp := sum.DataPoints().AppendEmpty()
		dp.Attributes().PutStr("status", status)
		dp.SetStartTimestamp(pcommon.NewTimestampFromTime(now.Add(-time.Hour)))
		dp.SetTimestamp(pcommon.NewTimestampFromTime(now))
		dp.SetIntValue(v)
	}
	return md
}
