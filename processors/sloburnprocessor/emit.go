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

	overflowAttr = "otel.metric.overflow"
)

// out collects the metrics of one resource (one value of the group_by attributes that were
// found on resources) while collect walks the series.
type out struct {
	events, burnRate, remaining, objective, alert pmetric.Metric
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
	// so the derived outcome never steps back.
	if s.goodForm {
		g.good = g.cum.Part
		g.bad = max(g.bad, g.cum.Total-g.cum.Part)
	} else {
		g.bad = g.cum.Part
		g.good = max(g.good, g.cum.Total-g.cum.Part)
	}
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

	rates := p.rates[:0]
	for _, w := range s.windows {
		bad, total := s.badTotal(g.series.Sum(w, nowMs))
		r := burn.Rate(bad, total, s.objective)
		rates = append(rates, r)
		dp := o.burnRate.Gauge().DataPoints().AppendEmpty()
		attrs(dp.Attributes())
		dp.Attributes().PutStr("window", windowLabel(w))
		dp.SetTimestamp(ts)
		dp.SetDoubleValue(r)
	}
	p.rates = rates

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
			if s.condSeverity[j] == i && c.Holds(rates[s.condLong[j]], rates[s.condShort[j]]) {
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
