package sloburnprocessor // import "github.com/fieldcol/fieldcol/processors/sloburnprocessor"

import (
	"context"
	"sort"
	"strconv"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"

	"github.com/fieldcol/fieldcol/processors/sloburnprocessor/internal/burn"
	"github.com/fieldcol/fieldcol/processors/sloburnprocessor/internal/metadata"
	"github.com/fieldcol/fieldcol/processors/sloburnprocessor/internal/window"
)

// Names of the telemetry contract, declared with their descriptions, units, types and
// attributes in pipeline_metrics.yaml (TestEmittedMetricsMatchMetadata holds this file to
// it). The gauges carry no unit on purpose: with unit "1" the Prometheus translation
// appends _ratio (slo_burn_rate_ratio), and the dashboards, rules and runbooks read
// slo_burn_rate, slo_error_budget_remaining, slo_objective and slo_alert.
const (
	metricEvents    = "slo.events"
	metricBurnRate  = "slo.burn_rate"
	metricRemaining = "slo.error_budget.remaining"
	metricObjective = "slo.objective"
	metricAlert     = "slo.alert"
	metricCoverage  = "slo.window.coverage"

	overflowAttr = "otel.metric.overflow"
)

// out collects the metrics of one resource (one value of the group_by attributes that were
// found on resources) while collect walks the series.
type out struct {
	events, burnRate, remaining, objective, alert, coverage pmetric.Metric
}

// collect computes every series at time now, and forgets series and streams that went idle.
func (p *sloburn) collect(now time.Time) pmetric.Metrics {
	p.mu.Lock()
	defer p.mu.Unlock()
	md := pmetric.NewMetrics()
	nowNs := now.UnixNano()
	nowMs := now.UnixMilli()
	ts := pcommon.NewTimestampFromTime(now)
	outs := map[string]*out{}

	for _, s := range p.slos {
		// A series whose every window is empty and whose streams have gone quiet holds
		// nothing but its counters; dropping it bounds the memory of departed devices.
		for key, g := range s.groups {
			if nowNs-g.lastSeen > int64(s.period) {
				delete(s.groups, key)
				p.nSeries--
			}
		}
		keys := make([]string, 0, len(s.groups))
		for k := range s.groups {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			p.collectGroup(md, outs, s, s.groups[k], nowMs, ts)
		}
		if s.overflow != nil {
			p.collectGroup(md, outs, s, s.overflow, nowMs, ts)
		}
	}
	p.tracker.Forget(nowNs - int64(p.streamIdle))
	p.tel.ProcessorSloburnSeries.Record(context.Background(), int64(p.nSeries))
	return md
}

func (p *sloburn) collectGroup(md pmetric.Metrics, outs map[string]*out, s *slo, g *group, nowMs int64, ts pcommon.Timestamp) {
	o := outs[g.resKey]
	if o == nil {
		o = newOut(md, g.res)
		outs[g.resKey] = o
	}
	attrs := func(dst pcommon.Map) {
		// slo, the group_by attributes, and window, outcome or severity: one allocation.
		dst.EnsureCapacity(2 + len(g.dp))
		dst.PutStr("slo", s.name)
		for _, x := range g.dp {
			dst.PutStr(x.k, x.v)
		}
		if g.overflow {
			dst.PutBool(overflowAttr, true)
		}
	}

	// slo.events must stay monotonic although bad and total may arrive in different batches,
	// so the derived outcome never steps back; and across a crash restart, where the
	// checkpoint's counts are older than the values last emitted (restored as the floor).
	good, bad := g.cum.Total-g.cum.Part, g.cum.Part
	if s.goodForm {
		good, bad = g.cum.Part, g.cum.Total-g.cum.Part
	}
	g.good = max(g.good, g.baseGood+good)
	g.bad = max(g.bad, g.baseBad+bad)
	for _, e := range [...]struct {
		outcome string
		v       float64
	}{{"good", g.good}, {"bad", g.bad}} {
		dp := o.events.Sum().DataPoints().AppendEmpty()
		attrs(dp.Attributes())
		dp.Attributes().PutStr("outcome", e.outcome)
		dp.SetStartTimestamp(pcommon.Timestamp(g.start))
		dp.SetTimestamp(ts)
		dp.SetDoubleValue(e.v)
	}

	// The alert conditions read each window's error ratio scaled by its coverage: the events
	// seen over the traffic a full window would hold, as if the unseen part had had no bad
	// events. Once the window is covered this is the plain ratio; before (after a restart
	// without stored state) an alert fires only if what was seen proves the condition alone.
	ratios := p.ratios[:0]
	for _, w := range s.windows {
		bad, total := s.badTotal(g.series.Sum(w, nowMs))
		cov := p.coverage(w, nowMs)
		ratios = append(ratios, burn.ErrorRatio(bad, total)*cov)
		dp := o.burnRate.Gauge().DataPoints().AppendEmpty()
		attrs(dp.Attributes())
		dp.Attributes().PutStr("window", windowLabel(w))
		dp.SetTimestamp(ts)
		dp.SetDoubleValue(burn.Rate(bad, total, s.objective))
		dp = o.coverage.Gauge().DataPoints().AppendEmpty()
		attrs(dp.Attributes())
		dp.Attributes().PutStr("window", windowLabel(w))
		dp.SetTimestamp(ts)
		dp.SetDoubleValue(cov)
	}
	p.ratios = ratios

	bad, total := s.badTotal(g.series.Sum(s.period, nowMs))
	dp := o.remaining.Gauge().DataPoints().AppendEmpty()
	attrs(dp.Attributes())
	dp.SetTimestamp(ts)
	dp.SetDoubleValue(burn.BudgetRemaining(bad, total, s.objective))

	dp = o.objective.Gauge().DataPoints().AppendEmpty()
	attrs(dp.Attributes())
	dp.SetTimestamp(ts)
	dp.SetDoubleValue(s.objective)

	for i, sev := range s.severities {
		firing := 0.0
		for j, c := range s.conds {
			if s.condSeverity[j] == i && c.Holds(ratios[s.condLong[j]], ratios[s.condShort[j]], s.objective) {
				firing = 1
				break
			}
		}
		dp := o.alert.Gauge().DataPoints().AppendEmpty()
		attrs(dp.Attributes())
		dp.Attributes().PutStr("severity", sev)
		dp.SetTimestamp(ts)
		dp.SetDoubleValue(firing)
	}
}

// coverage is the share of window w, ending at Unix millisecond now, that the state has
// seen: 1 once the window lies after the origin (the processor's start, or that of the
// checkpoint it restored), less before.
func (p *sloburn) coverage(w time.Duration, nowMs int64) float64 {
	seen := float64(nowMs-p.origin/int64(time.Millisecond)) / float64(w.Milliseconds())
	return min(max(seen, 0), 1)
}

// badTotal reads a window pair as (bad, total) whichever counter the SLO keeps.
func (s *slo) badTotal(p window.Pair) (bad, total float64) {
	if s.goodForm {
		return max(p.Total-p.Part, 0), p.Total
	}
	return p.Part, p.Total
}

func newOut(md pmetric.Metrics, res []kv) *out {
	rm := md.ResourceMetrics().AppendEmpty()
	for _, x := range res {
		rm.Resource().Attributes().PutStr(x.k, x.v)
	}
	sm := rm.ScopeMetrics().AppendEmpty()
	sm.Scope().SetName(metadata.ScopeName)
	o := &out{}
	o.events = sm.Metrics().AppendEmpty()
	o.events.SetName(metricEvents)
	o.events.SetDescription("Events of the SLO's indicator, by outcome (good or bad).")
	o.events.SetUnit("{event}")
	sum := o.events.SetEmptySum()
	sum.SetIsMonotonic(true)
	sum.SetAggregationTemporality(pmetric.AggregationTemporalityCumulative)
	gauge := func(name, desc string) pmetric.Metric {
		m := sm.Metrics().AppendEmpty()
		m.SetName(name)
		m.SetDescription(desc)
		m.SetEmptyGauge()
		return m
	}
	o.burnRate = gauge(metricBurnRate, "Error ratio over the window divided by the error budget (1 - objective); 1 spends the budget exactly over the period.")
	o.remaining = gauge(metricRemaining, "Share of the period's error budget not yet spent (negative when overspent).")
	o.objective = gauge(metricObjective, "Objective of the SLO, the share of good events.")
	o.alert = gauge(metricAlert, "1 while a multiwindow burn-rate condition of this severity holds.")
	o.coverage = gauge(metricCoverage, "Share of the window that the processor's state has seen (1 = the whole window; less after a restart without stored state).")
	return o
}

// windowLabel prints 5m, 1h, 1d, 3d like the contract, and Go durations otherwise.
func windowLabel(w time.Duration) string {
	switch {
	case w%(24*time.Hour) == 0:
		return strconv.FormatInt(int64(w/(24*time.Hour)), 10) + "d"
	case w%time.Hour == 0:
		return strconv.FormatInt(int64(w/time.Hour), 10) + "h"
	case w%time.Minute == 0:
		return strconv.FormatInt(int64(w/time.Minute), 10) + "m"
	}
	return w.String()
}
