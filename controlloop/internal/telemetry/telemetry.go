// Package telemetry turns the control loops' atomics and rings into OpenTelemetry metrics
// (through an SDK MeterProvider with a ManualReader, on instruments that the TelemetryBuilder
// generated from controlloop/metadata.yaml declares), log records and spans, held in bounded
// buffers until the hardware receiver collects them. Everything here runs off the loop
// threads: the drainer goroutine empties the loops' rings, and the SDK's locks are never
// taken by a loop.
package telemetry

import (
	"context"
	"encoding/binary"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.opentelemetry.io/otel/sdk/resource"
	"go.uber.org/zap"

	"github.com/fieldcol/fieldcol/controlloop/internal/alarm"
	"github.com/fieldcol/fieldcol/controlloop/internal/loop"
	"github.com/fieldcol/fieldcol/controlloop/internal/metadata"
	"github.com/fieldcol/fieldcol/controlloop/internal/metricconv"
	"github.com/fieldcol/fieldcol/controlloop/internal/pid"
)

// Settings configure New.
type Settings struct {
	Logger        *zap.Logger
	ServiceName   string
	TraceEvery    int
	MaxLogRecords int
	MaxSpans      int
	// DrainInterval is how often the rings are emptied (default 100ms).
	DrainInterval time.Duration
	// AuditLogger writes the `controlloop audit` line of every command; default
	// NewAuditLogger(Logger, stderr), which no log sampling thins out.
	AuditLogger *zap.Logger
}

type loopAttrs struct {
	l        *loop.Loop
	base     metric.MeasurementOption // loop
	ok, over metric.MeasurementOption
	skipped  metric.MeasurementOption
	outMain  metric.MeasurementOption
	outEn    metric.MeasurementOption
	alarms   []string
	outNames [2]string
}

// Telemetry is the extension's telemetry hub.
type Telemetry struct {
	set    Settings
	log    *zap.Logger
	audit  *zap.Logger
	reader *sdkmetric.ManualReader
	mp     *sdkmetric.MeterProvider
	// tel holds every instrument, with the names, units, descriptions and buckets of
	// controlloop/metadata.yaml.
	tel   *metadata.TelemetryBuilder
	loops []loopAttrs

	mu           sync.Mutex // guards logs, spans and the drain of the rings
	logs         plog.Logs
	logRecords   plog.LogRecordSlice
	nLogs        int
	spans        ptrace.Traces
	spanSlice    ptrace.SpanSlice
	nSpans       int
	droppedLogs  atomic.Uint64
	droppedSpans atomic.Uint64
	rng          *rand.Rand

	stop chan struct{}
	wg   sync.WaitGroup
}

// New builds the instruments over loops.
func New(loops []*loop.Loop, set Settings) (*Telemetry, error) {
	if set.Logger == nil {
		set.Logger = zap.NewNop()
	}
	if set.AuditLogger == nil {
		set.AuditLogger = NewAuditLogger(set.Logger, os.Stderr)
	}
	if set.DrainInterval <= 0 {
		set.DrainInterval = 100 * time.Millisecond
	}
	if set.MaxLogRecords <= 0 {
		set.MaxLogRecords = 1024
	}
	if set.MaxSpans <= 0 {
		set.MaxSpans = 512
	}
	t := &Telemetry{
		set:    set,
		log:    set.Logger,
		audit:  set.AuditLogger,
		reader: sdkmetric.NewManualReader(),
		stop:   make(chan struct{}),
		rng:    rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64())),
	}
	res := resource.NewSchemaless(attribute.String("service.name", set.ServiceName))
	t.mp = sdkmetric.NewMeterProvider(sdkmetric.WithReader(t.reader), sdkmetric.WithResource(res))
	// Only the meter provider of these settings is used: the extension's own, not the
	// collector's (see the package comment).
	ts := component.TelemetrySettings{MeterProvider: t.mp}
	var err error
	if t.tel, err = metadata.NewTelemetryBuilder(ts); err != nil {
		return nil, fmt.Errorf("creating the control-loop instruments: %w", err)
	}
	t.resetLogs()
	t.resetSpans()

	for _, l := range loops {
		la := loopAttrs{l: l, alarms: l.AlarmNames()}
		name := attribute.String("loop", l.Name())
		la.base = metric.WithAttributeSet(attribute.NewSet(name))
		la.ok = metric.WithAttributeSet(attribute.NewSet(name, attribute.String("outcome", "ok")))
		la.over = metric.WithAttributeSet(attribute.NewSet(name, attribute.String("outcome", "overrun")))
		la.skipped = metric.WithAttributeSet(attribute.NewSet(name, attribute.String("outcome", "skipped")))
		sp := l.Spec()
		la.outNames[0] = sp.Main.Name
		la.outMain = metric.WithAttributeSet(attribute.NewSet(name, attribute.String("actuator", sp.Main.Name)))
		if sp.Enable != nil {
			la.outNames[1] = sp.Enable.Name
			la.outEn = metric.WithAttributeSet(attribute.NewSet(name, attribute.String("actuator", sp.Enable.Name)))
		}
		t.loops = append(t.loops, la)
	}

	if err = t.observe(metadata.Meter(ts)); err != nil {
		return nil, fmt.Errorf("registering the control-loop observer: %w", err)
	}
	return t, nil
}

// observe registers one callback for every asynchronous instrument rather than the
// builder's one per instrument, so that a collection reads each loop once and the series
// of one loop agree with each other (the enable output and safe_state, for instance).
func (t *Telemetry) observe(m metric.Meter) error {
	tel := t.tel
	cycles, pv, sp, out, safe := tel.Cycles, tel.ProcessValue, tel.Setpoint, tel.Output, tel.SafeState
	active, actErr, dryWrites, dryRun, dropped := tel.AlarmsActive, tel.ActuatorErrors, tel.DryRunWrites, tel.DryRun, tel.TelemetryDropped
	dropLogs := metric.WithAttributeSet(attribute.NewSet(attribute.String("signal", "logs")))
	dropSpans := metric.WithAttributeSet(attribute.NewSet(attribute.String("signal", "spans")))
	dropSamples := metric.WithAttributeSet(attribute.NewSet(attribute.String("signal", "samples")))
	_, err := m.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		logs, spans, samples := t.Dropped()
		o.ObserveInt64(dropped, int64(logs), dropLogs)
		o.ObserveInt64(dropped, int64(spans), dropSpans)
		o.ObserveInt64(dropped, int64(samples), dropSamples)
		for i := range t.loops {
			la := &t.loops[i]
			l := la.l
			ok, over, skipped := l.Counters()
			o.ObserveInt64(cycles, int64(ok), la.ok)
			o.ObserveInt64(cycles, int64(over), la.over)
			o.ObserveInt64(cycles, int64(skipped), la.skipped)
			if v := l.PV(); !math.IsNaN(v) {
				o.ObserveFloat64(pv, v, la.base)
			}
			o.ObserveFloat64(sp, l.Setpoint(), la.base)
			u := l.Output()
			o.ObserveFloat64(out, u, la.outMain)
			isSafe := l.Safe()
			if la.outEn != nil {
				en := 0.0
				if u > 0 && !isSafe && l.Mode() != pid.Off {
					en = 1
				}
				o.ObserveFloat64(out, en, la.outEn)
			}
			s := int64(0)
			if isSafe {
				s = 1
			}
			o.ObserveInt64(safe, s, la.base)
			dry := int64(0)
			if l.DryRun() {
				dry = 1
			}
			o.ObserveInt64(dryRun, dry, la.base)
			if n := l.DryRunWrites(0); n > 0 {
				o.ObserveInt64(dryWrites, int64(n), la.outMain)
			}
			if n := l.DryRunWrites(1); n > 0 && la.outEn != nil {
				o.ObserveInt64(dryWrites, int64(n), la.outEn)
			}
			// Both series of an alarm (latched true and false) are observed on every
			// collection, so an acknowledged latch reads 0 at once instead of leaving its last
			// 1 behind until the exporter expires a series that stopped being reported.
			act, lat := l.ActiveMask(), l.LatchedMask()
			for j, name := range la.alarms {
				bit := uint64(1) << uint(j)
				latched, unlatched := int64(0), int64(0)
				if lat&bit != 0 {
					latched = 1
				} else if act&bit != 0 {
					unlatched = 1
				}
				o.ObserveInt64(active, latched, metric.WithAttributes(attribute.String("loop", l.Name()),
					attribute.String("alarm", name), attribute.Bool("latched", true)))
				o.ObserveInt64(active, unlatched, metric.WithAttributes(attribute.String("loop", l.Name()),
					attribute.String("alarm", name), attribute.Bool("latched", false)))
			}
			for k, actuator := range la.outNames {
				if actuator == "" {
					continue
				}
				for et := loop.ErrType(1); int(et) < loop.NumErrTypes; et++ {
					if n := l.ActuatorErrors(k, et); n > 0 {
						o.ObserveInt64(actErr, int64(n), metric.WithAttributes(
							attribute.String("actuator", actuator), attribute.String("error.type", et.String())))
					}
				}
			}
		}
		return nil
	}, cycles, pv, sp, out, safe, active, actErr, dryWrites, dryRun, dropped)
	return err
}

// Start runs the drainer.
func (t *Telemetry) Start() {
	t.wg.Add(1)
	go func() {
		defer t.wg.Done()
		tk := time.NewTicker(t.set.DrainInterval)
		defer tk.Stop()
		for {
			select {
			case <-t.stop:
				t.Drain()
				return
			case <-tk.C:
				t.Drain()
			}
		}
	}()
}

// Shutdown stops the drainer and the meter provider.
func (t *Telemetry) Shutdown(ctx context.Context) error {
	select {
	case <-t.stop:
	default:
		close(t.stop)
	}
	t.wg.Wait()
	return t.mp.Shutdown(ctx)
}

// Drain empties every loop's rings into the instruments and buffers.
func (t *Telemetry) Drain() {
	t.mu.Lock()
	defer t.mu.Unlock()
	ctx := context.Background()
	var s loop.Sample
	var e loop.Event
	var c loop.CycleSpan
	for i := range t.loops {
		la := &t.loops[i]
		for la.l.Samples().Pop(&s) {
			t.tel.CycleDuration.Record(ctx, float64(s.Duration)/1e9, la.base)
			t.tel.CycleLateness.Record(ctx, float64(s.Lateness)/1e9, la.base)
			if s.Runtime >= 0 {
				t.tel.CycleLatenessRuntime.Record(ctx, float64(s.Runtime)/1e9, la.base)
			}
		}
		for la.l.Events().Pop(&e) {
			t.event(la, &e)
		}
		for la.l.Spans().Pop(&c) {
			t.cycleSpan(la, &c)
		}
	}
}

// Dropped reports records lost to full buffers or rings (logs, spans, cycle samples).
func (t *Telemetry) Dropped() (logs, spans, samples uint64) {
	for _, la := range t.loops {
		logs += la.l.Events().Dropped()
		spans += la.l.Spans().Dropped()
		samples += la.l.Samples().Dropped()
	}
	return logs + t.droppedLogs.Load(), spans + t.droppedSpans.Load(), samples
}

// CollectMetrics implements loopbridge.Source.
func (t *Telemetry) CollectMetrics(ms pmetric.Metrics) error {
	t.Drain()
	var rm metricdata.ResourceMetrics
	if err := t.reader.Collect(context.Background(), &rm); err != nil {
		return fmt.Errorf("collecting control-loop metrics: %w", err)
	}
	return metricconv.Append(&rm, ms)
}

// DrainLogs implements loopbridge.Source.
func (t *Telemetry) DrainLogs(ld plog.Logs) int {
	t.Drain()
	t.mu.Lock()
	defer t.mu.Unlock()
	n := t.nLogs
	if n == 0 {
		return 0
	}
	t.logs.ResourceLogs().MoveAndAppendTo(ld.ResourceLogs())
	t.resetLogs()
	return n
}

// DrainTraces implements loopbridge.Source.
func (t *Telemetry) DrainTraces(td ptrace.Traces) int {
	t.Drain()
	t.mu.Lock()
	defer t.mu.Unlock()
	n := t.nSpans
	if n == 0 {
		return 0
	}
	t.spans.ResourceSpans().MoveAndAppendTo(td.ResourceSpans())
	t.resetSpans()
	return n
}

func (t *Telemetry) resetLogs() {
	t.logs = plog.NewLogs()
	rl := t.logs.ResourceLogs().AppendEmpty()
	rl.Resource().Attributes().PutStr("service.name", t.set.ServiceName)
	sl := rl.ScopeLogs().AppendEmpty()
	sl.Scope().SetName(metadata.ScopeName)
	t.logRecords = sl.LogRecords()
	t.nLogs = 0
}

func (t *Telemetry) resetSpans() {
	t.spans = ptrace.NewTraces()
	rs := t.spans.ResourceSpans().AppendEmpty()
	rs.Resource().Attributes().PutStr("service.name", t.set.ServiceName)
	ss := rs.ScopeSpans().AppendEmpty()
	ss.Scope().SetName(metadata.ScopeName)
	t.spanSlice = ss.Spans()
	t.nSpans = 0
}

// newLog returns a record to fill, or false when the buffer is full (the drop is counted).
// Callers hold mu.
func (t *Telemetry) newLog() (plog.LogRecord, bool) {
	if t.nLogs >= t.set.MaxLogRecords {
		t.droppedLogs.Add(1)
		return plog.LogRecord{}, false
	}
	t.nLogs++
	return t.logRecords.AppendEmpty(), true
}

// newSpan is newLog for spans. Callers hold mu.
func (t *Telemetry) newSpan() (ptrace.Span, bool) {
	if t.nSpans >= t.set.MaxSpans {
		t.droppedSpans.Add(1)
		return ptrace.Span{}, false
	}
	t.nSpans++
	return t.spanSlice.AppendEmpty(), true
}

func (t *Telemetry) traceID() pcommon.TraceID {
	var id pcommon.TraceID
	binary.BigEndian.PutUint64(id[:8], t.rng.Uint64())
	binary.BigEndian.PutUint64(id[8:], t.rng.Uint64()|1)
	return id
}

func (t *Telemetry) spanID() pcommon.SpanID {
	var id pcommon.SpanID
	binary.BigEndian.PutUint64(id[:], t.rng.Uint64()|1)
	return id
}

func (t *Telemetry) event(la *loopAttrs, e *loop.Event) {
	loopName := la.l.Name()
	var (
		name, body string
		sev        = plog.SeverityNumberInfo
		attrs      = map[string]any{"loop": loopName, "cycle": int64(e.Cycle)}
	)
	switch e.Kind {
	case loop.EventAlarm:
		tr := alarm.Transition(e.Transition)
		an := ""
		if int(e.Alarm) < len(la.alarms) {
			an = la.alarms[e.Alarm]
		}
		t.tel.AlarmTransitions.Add(context.Background(), 1, metric.WithAttributes(attribute.String("loop", loopName),
			attribute.String("alarm", an), attribute.String("transition", tr.String())))
		name, body = "controlloop.alarm", fmt.Sprintf("alarm %s %s on loop %s", an, tr, loopName)
		attrs["alarm"], attrs["transition"] = an, tr.String()
		if tr == alarm.Raised {
			sev = plog.SeverityNumberWarn
			t.log.Warn("alarm raised; outputs forced safe until it is acknowledged after its condition clears", zap.String("loop", loopName), zap.String("alarm", an))
		} else {
			t.log.Info("alarm "+tr.String(), zap.String("loop", loopName), zap.String("alarm", an))
		}
	case loop.EventSensorFault:
		name, body, sev = "controlloop.fault", fmt.Sprintf("invalid reading on loop %s: %s", loopName, e.ErrType), plog.SeverityNumberWarn
		attrs["device"], attrs["error.type"] = la.l.Spec().InputName, e.ErrType.String()
		t.log.Warn("invalid sensor reading; outputs forced safe", zap.String("loop", loopName), zap.String("error.type", e.ErrType.String()))
	case loop.EventActuatorError:
		act := la.outNames[0]
		if e.Index == 1 {
			act = la.outNames[1]
		}
		name, body, sev = "controlloop.fault", fmt.Sprintf("actuator %s write failed: %s", act, e.ErrType), plog.SeverityNumberError
		attrs["actuator"], attrs["error.type"] = act, e.ErrType.String()
	case loop.EventInterlock:
		il := la.l.Spec().Interlocks[e.Index].Name
		state := "released"
		if !e.Holds {
			state, sev = "tripped", plog.SeverityNumberWarn
		}
		name, body = "controlloop.interlock", fmt.Sprintf("interlock %s %s on loop %s", il, state, loopName)
		attrs["interlock"], attrs["state"] = il, state
	case loop.EventSafe:
		name = "controlloop.safe_state"
		if e.Holds {
			body, sev = "outputs forced safe on loop "+loopName, plog.SeverityNumberWarn
		} else {
			body = "loop " + loopName + " back in control"
		}
		attrs["safe"] = e.Holds
	case loop.EventDryRunWrite:
		act := la.outNames[0]
		if e.Index == 1 {
			act = la.outNames[1]
		}
		name, body = "controlloop.dry_run.write", fmt.Sprintf("dry run: loop %s would write %g to %s (not written; it holds its safe state)", loopName, e.Value, act)
		attrs["actuator"], attrs["output"] = act, e.Value
		t.log.Info("dry run: actuator not written", zap.String("loop", loopName), zap.String("actuator", act), zap.Float64("would_write", e.Value))
	case loop.EventDryRunCleared:
		name, body, sev = "controlloop.dry_run", "dry run cleared on loop "+loopName+": mode off, actuators written again", plog.SeverityNumberWarn
		t.log.Warn("dry run cleared: the loop writes its actuators again, in mode off until SET_MODE auto", zap.String("loop", loopName))
	case loop.EventPanic:
		name, body, sev = "controlloop.panic", "loop "+loopName+" panicked; outputs forced safe, loop stopped", plog.SeverityNumberFatal
	case loop.EventOverrun:
		name, body, sev = "controlloop.overrun", fmt.Sprintf("cycle of loop %s took %.6fs, longer than its period", loopName, e.Value), plog.SeverityNumberWarn
		attrs["duration_s"] = e.Value
	default:
		return
	}
	lr, ok := t.newLog()
	if !ok {
		return
	}
	ts := pcommon.Timestamp(uint64(e.Time))
	lr.SetTimestamp(ts)
	lr.SetObservedTimestamp(pcommon.NewTimestampFromTime(time.Now()))
	lr.SetSeverityNumber(sev)
	lr.SetSeverityText(sevText(sev))
	lr.SetEventName(name)
	lr.Body().SetStr(body)
	_ = lr.Attributes().FromRaw(attrs)
	lr.Attributes().PutStr("event.name", name)
}

func sevText(s plog.SeverityNumber) string {
	switch {
	case s >= plog.SeverityNumberFatal:
		return "FATAL"
	case s >= plog.SeverityNumberError:
		return "ERROR"
	case s >= plog.SeverityNumberWarn:
		return "WARN"
	}
	return "INFO"
}

// cycleSpanCount is a cycle's root span plus its four phases.
const cycleSpanCount = 5

func (t *Telemetry) cycleSpan(la *loopAttrs, c *loop.CycleSpan) {
	// All or nothing: a cycle trace without some of its phases would mislead.
	if t.nSpans+cycleSpanCount > t.set.MaxSpans {
		t.droppedSpans.Add(cycleSpanCount)
		return
	}
	root, _ := t.newSpan()
	tid := t.traceID()
	rootID := t.spanID()
	root.SetTraceID(tid)
	root.SetSpanID(rootID)
	root.SetName("controlloop.cycle " + la.l.Name())
	root.SetKind(ptrace.SpanKindInternal)
	root.SetStartTimestamp(pcommon.Timestamp(uint64(c.Start)))
	root.SetEndTimestamp(pcommon.Timestamp(uint64(c.Write)))
	a := root.Attributes()
	a.PutStr("loop", la.l.Name())
	a.PutInt("cycle", int64(c.Cycle))
	if !math.IsNaN(c.PV) {
		a.PutDouble("process_value", c.PV)
	}
	if !math.IsNaN(c.Setpoint) {
		a.PutDouble("setpoint", c.Setpoint)
	}
	a.PutDouble("output", c.Output)
	a.PutBool("safe_state", c.Safe)
	if c.ErrType != loop.ErrNone {
		a.PutStr("error.type", c.ErrType.String())
		root.Status().SetCode(ptrace.StatusCodeError)
		root.Status().SetMessage("invalid reading: " + c.ErrType.String())
	}
	phases := []struct {
		name       string
		start, end int64
	}{
		{"sensor read", c.Start, c.Read},
		{"validate", c.Read, c.Validate},
		{"compute", c.Validate, c.Compute},
		{"actuator write", c.Compute, c.Write},
	}
	for _, p := range phases {
		s, _ := t.newSpan()
		s.SetTraceID(tid)
		s.SetSpanID(t.spanID())
		s.SetParentSpanID(rootID)
		s.SetName(p.name)
		s.SetStartTimestamp(pcommon.Timestamp(uint64(p.start)))
		s.SetEndTimestamp(pcommon.Timestamp(uint64(p.end)))
		s.Attributes().PutStr("loop", la.l.Name())
	}
}
