package telemetry

import (
	"context"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
)

// RecordRestart logs this start as the event controlloop.restart (restart = first, warm or
// cold; clean = whether the previous run stopped cleanly) and sets controlloop.restarts to
// the starts the latch file has counted since it was created, by clean, so that the counter
// grows across the restarts it counts instead of starting over at each.
func (t *Telemetry) RecordRestart(kind string, clean bool, cleanStarts, uncleanStarts uint64) {
	ctx := context.Background()
	t.tel.Restarts.Add(ctx, int64(cleanStarts), metric.WithAttributes(attribute.Bool("clean", true)))    //nolint:gosec // a count of starts
	t.tel.Restarts.Add(ctx, int64(uncleanStarts), metric.WithAttributes(attribute.Bool("clean", false))) //nolint:gosec // a count of starts
	t.mu.Lock()
	defer t.mu.Unlock()
	lr, ok := t.newLog()
	if !ok {
		return
	}
	sev, body := plog.SeverityNumberInfo, "control loops started ("+kind+" restart)"
	if !clean {
		sev, body = plog.SeverityNumberWarn, "control loops restarted after an unclean stop ("+kind+" restart): latches restored, outputs started safe"
	}
	now := pcommon.NewTimestampFromTime(time.Now())
	lr.SetTimestamp(now)
	lr.SetObservedTimestamp(now)
	lr.SetSeverityNumber(sev)
	lr.SetSeverityText(sevText(sev))
	lr.SetEventName("controlloop.restart")
	lr.Body().SetStr(body)
	lr.Attributes().PutStr("event.name", "controlloop.restart")
	lr.Attributes().PutStr("restart", kind)
	lr.Attributes().PutBool("clean", clean)
}
