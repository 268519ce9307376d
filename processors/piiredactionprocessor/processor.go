package piiredactionprocessor // import "github.com/fieldcol/fieldcol/processors/piiredactionprocessor"

import (
	"context"
	"sync"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/processor"
	"go.opentelemetry.io/collector/processor/processorhelper"
	"go.uber.org/zap"

	"github.com/fieldcol/fieldcol/processors/piiredactionprocessor/internal/metadata"
)

type piiProcessor struct {
	rs        *ruleSet
	telemetry *metadata.TelemetryBuilder
	walkers   sync.Pool
}

func newPIIProcessor(set processor.Settings, cfg *Config) (*piiProcessor, error) {
	rs, err := compileRules(cfg)
	if err != nil {
		return nil, err
	}
	tb, err := metadata.NewTelemetryBuilder(set.TelemetrySettings)
	if err != nil {
		return nil, err
	}
	p := &piiProcessor{rs: rs, telemetry: tb}
	p.walkers.New = func() any { return newWalker(rs) }
	// Rule names only: the processor never logs a value it finds.
	names := make([]string, len(rs.rules))
	for i, r := range rs.rules {
		names[i] = r.name + "=" + string(r.action)
	}
	set.Logger.Info("PII redaction rules", zap.Strings("rules", names), zap.Bool("summary", rs.summary))
	return p, nil
}

func (p *piiProcessor) shutdown(context.Context) error {
	p.telemetry.Shutdown()
	return nil
}

func (p *piiProcessor) get() *walker { return p.walkers.Get().(*walker) }

func (p *piiProcessor) put(ctx context.Context, w *walker, sig signal) {
	w.flush(ctx, p, sig)
	w.release()
	p.walkers.Put(w)
}

// scoped redacts the attributes of a resource or scope; a drop_record match there drops
// everything under it.
func (w *walker) scoped(attrs pcommon.Map) (drop bool) {
	w.beginRecord()
	w.attrs(attrs)
	if w.drop {
		return true
	}
	w.endRecord(attrs)
	return false
}

// str redacts a string field that is not an attribute (span name, event name, status
// message), counted under key: drop_attribute replaces it with the mask, drop_record drops the record.
func (w *walker) str(key, s string, set func(string)) {
	w.key = key
	out, v := w.text(s)
	switch v {
	case verdictChanged:
		set(out)
	case verdictRemove:
		set(w.rs.mask)
	}
}

func (p *piiProcessor) processTraces(ctx context.Context, td ptrace.Traces) (ptrace.Traces, error) {
	w := p.get()
	defer p.put(ctx, w, signalTraces)
	td.ResourceSpans().RemoveIf(func(rs ptrace.ResourceSpans) bool {
		w.resource(signalTraces, rs.Resource().Attributes())
		if w.scoped(rs.Resource().Attributes()) {
			return true
		}
		rs.ScopeSpans().RemoveIf(func(ss ptrace.ScopeSpans) bool {
			w.scope(ss.Scope().Name())
			if w.scoped(ss.Scope().Attributes()) {
				return true
			}
			ss.Spans().RemoveIf(w.span)
			return ss.Spans().Len() == 0
		})
		return rs.ScopeSpans().Len() == 0
	})
	if td.ResourceSpans().Len() == 0 {
		return td, processorhelper.ErrSkipProcessingData
	}
	return td, nil
}

// span redacts one span with its events and links and reports whether to drop it.
func (w *walker) span(span ptrace.Span) bool {
	w.beginRecord()
	attrs := span.Attributes()
	w.attrs(attrs)
	w.str("span.name", span.Name(), span.SetName)
	w.str("span.status.message", span.Status().Message(), span.Status().SetMessage)
	events := span.Events()
	for i := 0; i < events.Len() && !w.drop; i++ {
		ev := events.At(i)
		w.str("span.event.name", ev.Name(), ev.SetName)
		w.attrs(ev.Attributes())
	}
	links := span.Links()
	for i := 0; i < links.Len() && !w.drop; i++ {
		w.attrs(links.At(i).Attributes())
	}
	if w.drop {
		return true
	}
	w.endRecord(attrs)
	return false
}

func (p *piiProcessor) processLogs(ctx context.Context, ld plog.Logs) (plog.Logs, error) {
	w := p.get()
	defer p.put(ctx, w, signalLogs)
	ld.ResourceLogs().RemoveIf(func(rl plog.ResourceLogs) bool {
		w.resource(signalLogs, rl.Resource().Attributes())
		if w.scoped(rl.Resource().Attributes()) {
			return true
		}
		rl.ScopeLogs().RemoveIf(func(sl plog.ScopeLogs) bool {
			w.scope(sl.Scope().Name())
			if w.scoped(sl.Scope().Attributes()) {
				return true
			}
			sl.LogRecords().RemoveIf(w.logRecord)
			return sl.LogRecords().Len() == 0
		})
		return rl.ScopeLogs().Len() == 0
	})
	if ld.ResourceLogs().Len() == 0 {
		return ld, processorhelper.ErrSkipProcessingData
	}
	return ld, nil
}

func (w *walker) logRecord(lr plog.LogRecord) bool {
	w.beginRecord()
	attrs := lr.Attributes()
	w.attrs(attrs)
	body := lr.Body()
	w.key = "log.body"
	if !w.drop && w.value(body) {
		// drop_attribute on a string body: the body is the only field, so it is masked.
		body.SetStr(w.rs.mask)
	}
	if w.drop {
		return true
	}
	w.endRecord(attrs)
	return false
}

func (p *piiProcessor) processMetrics(ctx context.Context, md pmetric.Metrics) (pmetric.Metrics, error) {
	w := p.get()
	defer p.put(ctx, w, signalMetrics)
	md.ResourceMetrics().RemoveIf(func(rm pmetric.ResourceMetrics) bool {
		w.resource(signalMetrics, rm.Resource().Attributes())
		if w.scoped(rm.Resource().Attributes()) {
			return true
		}
		rm.ScopeMetrics().RemoveIf(func(sm pmetric.ScopeMetrics) bool {
			w.scope(sm.Scope().Name())
			if w.scoped(sm.Scope().Attributes()) {
				return true
			}
			sm.Metrics().RemoveIf(w.metric)
			return sm.Metrics().Len() == 0
		})
		return rm.ScopeMetrics().Len() == 0
	})
	if md.ResourceMetrics().Len() == 0 {
		return md, processorhelper.ErrSkipProcessingData
	}
	return md, nil
}

// metric redacts the data points of one metric and reports whether none is left.
func (w *walker) metric(m pmetric.Metric) bool {
	switch m.Type() {
	case pmetric.MetricTypeGauge:
		dps := m.Gauge().DataPoints()
		dps.RemoveIf(func(dp pmetric.NumberDataPoint) bool { return w.point(dp.Attributes(), dp.Exemplars(), true) })
		return dps.Len() == 0
	case pmetric.MetricTypeSum:
		dps := m.Sum().DataPoints()
		dps.RemoveIf(func(dp pmetric.NumberDataPoint) bool { return w.point(dp.Attributes(), dp.Exemplars(), true) })
		return dps.Len() == 0
	case pmetric.MetricTypeHistogram:
		dps := m.Histogram().DataPoints()
		dps.RemoveIf(func(dp pmetric.HistogramDataPoint) bool { return w.point(dp.Attributes(), dp.Exemplars(), true) })
		return dps.Len() == 0
	case pmetric.MetricTypeExponentialHistogram:
		dps := m.ExponentialHistogram().DataPoints()
		dps.RemoveIf(func(dp pmetric.ExponentialHistogramDataPoint) bool {
			return w.point(dp.Attributes(), dp.Exemplars(), true)
		})
		return dps.Len() == 0
	case pmetric.MetricTypeSummary:
		dps := m.Summary().DataPoints()
		dps.RemoveIf(func(dp pmetric.SummaryDataPoint) bool {
			return w.point(dp.Attributes(), pmetric.ExemplarSlice{}, false)
		})
		return dps.Len() == 0
	}
	return false
}

// point redacts one data point and its exemplars (summaries have none) and reports whether to
// drop it.
func (w *walker) point(attrs pcommon.Map, exemplars pmetric.ExemplarSlice, hasExemplars bool) bool {
	w.beginRecord()
	w.attrs(attrs)
	for i := 0; hasExemplars && i < exemplars.Len() && !w.drop; i++ {
		w.attrs(exemplars.At(i).FilteredAttributes())
	}
	if w.drop {
		return true
	}
	w.endRecord(attrs)
	return false
}
