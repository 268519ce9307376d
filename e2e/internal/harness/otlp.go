package harness

import (
	"fmt"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/fieldcol/fieldcol/internal/otlpsink"
)

// RunKey marks the resources a test sends, so it can find them among what else the
// collector forwards (host metrics, its own telemetry).
const RunKey = "e2e.run"

// SampleTraces are three spans of one service with attributes of every kind and an event
// each; the third has status ERROR.
func SampleTraces(run string) ptrace.Traces {
	td := ptrace.NewTraces()
	rs := td.ResourceSpans().AppendEmpty()
	rs.Resource().Attributes().PutStr("service.name", "conveyor-app")
	rs.Resource().Attributes().PutStr(RunKey, run)
	ss := rs.ScopeSpans().AppendEmpty()
	ss.Scope().SetName("e2e")
	ss.Scope().SetVersion("1.0.0")
	for i := range 3 {
		span := ss.Spans().AppendEmpty()
		span.SetName("move-pallet")
		span.SetTraceID(pcommon.TraceID{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, byte(i)})
		span.SetSpanID(pcommon.SpanID{8, 7, 6, 5, 4, 3, 2, byte(i)})
		span.SetKind(ptrace.SpanKindServer)
		span.SetStartTimestamp(pcommon.Timestamp(1_700_000_000_000_000_000 + i))
		span.SetEndTimestamp(pcommon.Timestamp(1_700_000_000_500_000_000 + i))
		span.Attributes().PutInt("pallet", int64(i))
		span.Attributes().PutBool("ok", i != 2)
		span.Attributes().PutDouble("weight.kg", 12.5)
		ev := span.Events().AppendEmpty()
		ev.SetName("gripper.closed")
		ev.Attributes().PutStr("gripper", "left")
		if i == 2 {
			span.Status().SetCode(ptrace.StatusCodeError)
			span.Status().SetMessage("pallet dropped")
		}
	}
	return td
}

// SampleMetrics is a gauge and a cumulative sum of the conveyor, one point each.
func SampleMetrics(run string) pmetric.Metrics {
	md := pmetric.NewMetrics()
	rm := md.ResourceMetrics().AppendEmpty()
	rm.Resource().Attributes().PutStr("service.name", "conveyor-app")
	rm.Resource().Attributes().PutStr(RunKey, run)
	sm := rm.ScopeMetrics().AppendEmpty()
	sm.Scope().SetName("e2e")
	g := sm.Metrics().AppendEmpty()
	g.SetName("e2e.belt.speed")
	g.SetUnit("m/s")
	g.SetDescription("Belt speed")
	dp := g.SetEmptyGauge().DataPoints().AppendEmpty()
	dp.SetTimestamp(pcommon.Timestamp(1_700_000_000_000_000_000))
	dp.SetDoubleValue(0.75)
	dp.Attributes().PutStr("belt", "b1")
	s := sm.Metrics().AppendEmpty()
	s.SetName("e2e.pallets")
	s.SetUnit("{pallet}")
	sum := s.SetEmptySum()
	sum.SetIsMonotonic(true)
	sum.SetAggregationTemporality(pmetric.AggregationTemporalityCumulative)
	sdp := sum.DataPoints().AppendEmpty()
	sdp.SetStartTimestamp(pcommon.Timestamp(1_699_999_000_000_000_000))
	sdp.SetTimestamp(pcommon.Timestamp(1_700_000_000_000_000_000))
	sdp.SetIntValue(1234)
	return md
}

// SampleLogs are two text records and one with a map body.
func SampleLogs(run string) plog.Logs {
	ld := plog.NewLogs()
	rl := ld.ResourceLogs().AppendEmpty()
	rl.Resource().Attributes().PutStr("service.name", "conveyor-app")
	rl.Resource().Attributes().PutStr(RunKey, run)
	sl := rl.ScopeLogs().AppendEmpty()
	for i, body := range []string{"belt started", "belt stopped"} {
		lr := sl.LogRecords().AppendEmpty()
		lr.SetTimestamp(pcommon.Timestamp(1_700_000_000_000_000_000 + i))
		lr.SetSeverityNumber(plog.SeverityNumberInfo)
		lr.SetSeverityText("INFO")
		lr.Body().SetStr(body)
		lr.Attributes().PutStr("belt", "b1")
	}
	m := sl.LogRecords().AppendEmpty()
	m.Body().SetEmptyMap().PutStr("event", "jam")
	return ld
}

// HasRun reports whether a resource was sent by the test run.
func HasRun(res pcommon.Resource, run string) bool {
	v, ok := res.Attributes().Get(RunKey)
	return ok && v.Str() == run
}

// PickTraces collects the resources of one run from what a sink received.
func PickTraces(all []ptrace.Traces, run string) ptrace.Traces {
	out := ptrace.NewTraces()
	for _, td := range all {
		for i := 0; i < td.ResourceSpans().Len(); i++ {
			if rs := td.ResourceSpans().At(i); HasRun(rs.Resource(), run) {
				rs.CopyTo(out.ResourceSpans().AppendEmpty())
			}
		}
	}
	return out
}

// PickMetrics is PickTraces for metrics.
func PickMetrics(all []pmetric.Metrics, run string) pmetric.Metrics {
	out := pmetric.NewMetrics()
	for _, md := range all {
		for i := 0; i < md.ResourceMetrics().Len(); i++ {
			if rm := md.ResourceMetrics().At(i); HasRun(rm.Resource(), run) {
				rm.CopyTo(out.ResourceMetrics().AppendEmpty())
			}
		}
	}
	return out
}

// PickLogs is PickTraces for logs.
func PickLogs(all []plog.Logs, run string) plog.Logs {
	out := plog.NewLogs()
	for _, ld := range all {
		for i := 0; i < ld.ResourceLogs().Len(); i++ {
			if rl := ld.ResourceLogs().At(i); HasRun(rl.Resource(), run) {
				rl.CopyTo(out.ResourceLogs().AppendEmpty())
			}
		}
	}
	return out
}

// Record is log record number n of run, one a request, as an application on the Pi sends
// it; RecordArrivals reads the numbers back.
func Record(run string, n int) plog.Logs {
	ld := plog.NewLogs()
	rl := ld.ResourceLogs().AppendEmpty()
	rl.Resource().Attributes().PutStr(RunKey, run)
	rl.ScopeLogs().AppendEmpty().LogRecords().AppendEmpty().Body().SetStr(fmt.Sprintf("record %d", n))
	return ld
}

// RecordArrivals lists the numbers of the records of run that reached the sink, in arrival
// order.
func RecordArrivals(t testing.TB, sink *otlpsink.Sink, run string) []int {
	t.Helper()
	var seen []int
	for _, body := range otlpsink.LogBodies(PickLogs(sink.Logs(), run)) {
		n, err := strconv.Atoi(strings.TrimPrefix(body, "record "))
		require.NoError(t, err, "body %q", body)
		seen = append(seen, n)
	}
	return seen
}
