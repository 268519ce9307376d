package telemetry

import (
	"context"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.uber.org/zap"
)

// CommandRecord is one API command as the audit trail keeps it: who, what, result.
type CommandRecord struct {
	// Command is SET_MOTOR, SET_TEMP_SETTINGS, ACK_ALARM, SET_MODE, SIM_FAULT, or UNKNOWN
	// when the request was refused before its body was read.
	Command string
	Loop    string
	// Result is accepted, invalid, unauthorized, failed or rate_limited.
	Result string
	// Error is why a command was not accepted.
	Error     string
	RequestID string
	// Who is the authenticated subject when the authenticator gives one, else "anonymous".
	Who        string
	RemoteAddr string
	Args       map[string]any
	// TraceID and ParentSpanID come from a W3C traceparent header; zero starts a new trace.
	TraceID      pcommon.TraceID
	ParentSpanID pcommon.SpanID
	Start, End   time.Time
}

// RecordCommand counts the command, records its duration, and emits the audit log record
// and the command's span.
func (t *Telemetry) RecordCommand(r CommandRecord) {
	ctx := context.Background()
	t.tel.Commands.Add(ctx, 1, metric.WithAttributes(attribute.String("command", r.Command), attribute.String("result", r.Result)))
	t.tel.CommandDuration.Record(ctx, r.End.Sub(r.Start).Seconds(), metric.WithAttributes(attribute.String("command", r.Command)))

	fields := []zap.Field{
		zap.String("command", r.Command), zap.String("loop", r.Loop), zap.String("result", r.Result),
		zap.String("who", r.Who), zap.String("remote_addr", r.RemoteAddr), zap.String("request_id", r.RequestID),
		zap.Any("args", r.Args),
	}
	if r.Error != "" {
		fields = append(fields, zap.String("error", r.Error))
	}
	t.audit.Info("controlloop audit", fields...)

	t.mu.Lock()
	defer t.mu.Unlock()
	traceID := r.TraceID
	if traceID.IsEmpty() {
		traceID = t.traceID()
	}
	spanID := t.spanID()
	if lr, ok := t.newLog(); ok {
		lr.SetTimestamp(pcommon.NewTimestampFromTime(r.End))
		lr.SetObservedTimestamp(pcommon.NewTimestampFromTime(time.Now()))
		lr.SetEventName("controlloop.command")
		sev := plog.SeverityNumberInfo
		if r.Result != "accepted" {
			sev = plog.SeverityNumberWarn
		}
		lr.SetSeverityNumber(sev)
		lr.SetSeverityText(sevText(sev))
		lr.SetTraceID(traceID)
		lr.SetSpanID(spanID)
		lr.Body().SetStr("command " + r.Command + " " + r.Result)
		t.putCommandAttrs(lr.Attributes(), &r)
		lr.Attributes().PutStr("event.name", "controlloop.command")
	}
	if s, ok := t.newSpan(); ok {
		s.SetTraceID(traceID)
		s.SetSpanID(spanID)
		s.SetParentSpanID(r.ParentSpanID)
		s.SetName("controlloop.command " + r.Command)
		s.SetKind(ptrace.SpanKindServer)
		s.SetStartTimestamp(pcommon.NewTimestampFromTime(r.Start))
		s.SetEndTimestamp(pcommon.NewTimestampFromTime(r.End))
		t.putCommandAttrs(s.Attributes(), &r)
		if r.Result != "accepted" {
			s.Status().SetCode(ptrace.StatusCodeError)
			s.Status().SetMessage(r.Error)
		} else {
			s.Status().SetCode(ptrace.StatusCodeOk)
		}
	}
}

func (t *Telemetry) putCommandAttrs(a pcommon.Map, r *CommandRecord) {
	a.PutStr("command", r.Command)
	if r.Loop != "" {
		a.PutStr("loop", r.Loop)
	}
	a.PutStr("result", r.Result)
	a.PutStr("enduser.id", r.Who)
	a.PutStr("client.address", r.RemoteAddr)
	a.PutStr("request.id", r.RequestID)
	if r.Error != "" {
		a.PutStr("error.message", r.Error)
	}
	if len(r.Args) > 0 {
		_ = a.PutEmptyMap("args").FromRaw(r.Args)
	}
}
