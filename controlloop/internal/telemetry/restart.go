package telemetry

import (
	"context"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
)

// RecordRestart counts this start in controlloop.restarts (restart = first, warm or cold;
// clean = whether the previous run stopped cleanly) and logs the event controlloop.restart.
func (t *Telemetry) RecordRestart(kind string, clean bool) {
	c, err := t.mp.Meter(ScopeName).Int64Counter("controlloop.restarts",
		metric.WithDescription("Starts of the control loops: restart = first, warm or cold; clean = false after a crash, kill or power cut."))
	if err == nil {
		c.Add(context.Background(), 1, metric.WithAttributes(attribute.String("restart", kind), attribute.Bool("clean", clean)))
	}
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
