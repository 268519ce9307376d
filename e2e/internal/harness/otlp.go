package e2e

import (
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/ptrace"
)

// runKey marks the resources a test sends, so it can find them among what else the
// collector forwards (host metrics, its own telemetry).
const runKey = "e2e.run"

// sampleTraces is a small trace with attributes of every kind, events and a link.
func sampleTraces(run string) ptrace.Traces {
	td := ptrace.NewTraces()
	rs := td.ResourceSpans().AppendEmpty()
	rs.Resource().Attributes().PutStr("service.name", "conveyor-app")
	rs.Resource().Attributes().PutStr(runKey, run)
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

func sampleMetrics(run string) pmetric.Metrics {
	md := pmetric.NewMetrics()
	rm := md.ResourceMetrics().AppendEmpty()
	rm.Resource().Attributes().PutStr("service.name", "conveyor-app")
	rm.Resource().Attributes().PutStr(runKey, run)
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

func sampleLogs(run string) plog.Logs {
	ld := plog.NewLogs()
	rl := ld.ResourceLogs().AppendEmpty()
	rl.Resource().Attributes().PutStr("service.name", "conveyor-app")
	rl.Resource().Attributes().PutStr(runKey, run)
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

// hasRun reports whether a resource was sent by the test run.
func hasRun(res pcommon.Resource, run string) bool {
	v, ok := res.Attributes().Get(runKey)
	return ok && v.Str() == run
}

// pickTraces collects the resources of one run from what a sink received.
func pickTraces(all []ptrace.Traces, run string) ptrace.Traces {
	out := ptrace.NewTraces()
	for _, td := range all {
		for i := 0; i < td.ResourceSpans().Len(); i++ {
			if rs := td.ResourceSpans().At(i); hasRun(rs.Resource(), run) {
				rs.CopyTo(out.ResourceSpans().AppendEmpty())
			}
		}
	}
	return out
}

func pickMetrics(all []pmetric.Metrics, run string) pmetric.Metrics {
	out := pmetric.NewMetrics()
	for _, md := range all {
		for i := 0; i < md.ResourceMetrics().Len(); i++ {
			if rm := md.ResourceMetrics().At(i); hasRun(rm.Resource(), run) {
				rm.CopyTo(out.ResourceMetrics().AppendEmpty())
			}
		}
	}
	return out
}

func pickLogs(all []plog.Logs, run string) plog.Logs {
	out := plog.NewLogs()
	for _, ld := range all {
		for i := 0; i < ld.ResourceLogs().Len(); i++ {
			if rl := ld.ResourceLogs().At(i); hasRun(rl.Resource(), run) {
				rl.CopyTo(out.ResourceLogs().AppendEmpty())
			}
		}
	}
	return out
}
