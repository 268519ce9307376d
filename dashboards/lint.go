package dashboards

import (
	"fmt"
	"regexp"
	"strings"

	"github.com/grafana/grafana-foundation-sdk/go/dashboard"
	"github.com/grafana/grafana-foundation-sdk/go/prometheus"

	"github.com/fieldcol/fieldcol/alerts/contract"
)

// Lint checks what Grafana's types cannot see in a dashboard (the schema check of
// tools/dashboard-check sees the rest) and returns one line per problem:
//
//   - every stat and gauge has thresholds of at least two colors;
//   - every panel has a unit, and each query's unit (inferred from the metrics it reads
//     and how: a rate is per second, a ratio of like quantities is 1, a histogram quantile
//     has its histogram's unit) is the unit of the axis it is drawn on, so two units never
//     share an axis (a query of another unit needs an override of its own);
//   - a metric whose unit depends on its loop (controlloop_process_value, _setpoint) is read
//     for one loop, whose unit loopUnits gives (UCUM, from the edge config);
//   - every variable has a current value, only interval variables have auto fields, and
//     device_id lists the label's values, not one metric's;
//   - an age ("time since", an expression with time()) reads only recording rules, which
//     remember a silent device: a raw series goes stale and the age would vanish exactly
//     when it matters.
func Lint(d *dashboard.Dashboard, loopUnits map[string]string) []string { //nolint:staticcheck // the classic model, see builder
	var out []string
	report := func(format string, args ...any) { out = append(out, fmt.Sprintf(format, args...)) }

	for _, v := range d.Templating.List {
		if v.Current == nil || (v.Current.Value.String == nil && len(v.Current.Value.ArrayOfString) == 0) {
			report("variable %s has no current value", v.Name)
		}
		if v.Type != dashboard.VariableTypeInterval && (v.Auto != nil || v.AutoMin != nil || v.AutoCount != nil) {
			report("variable %s (%s) has the interval variable's auto fields", v.Name, v.Type)
		}
		if v.Name == "device_id" && (v.Query == nil || v.Query.String == nil || *v.Query.String != "label_values(device_id)") {
			report("variable device_id must list label_values(device_id), so that every device appears whichever metrics it sends")
		}
	}

	for _, p := range d.Panels {
		if p.Panel == nil {
			continue
		}
		title := deref(p.Panel.Title)
		unit := ""
		overrides := map[string]string{}
		var th *dashboard.ThresholdsConfig
		if fc := p.Panel.FieldConfig; fc != nil {
			unit = deref(fc.Defaults.Unit)
			th = fc.Defaults.Thresholds
			for _, o := range fc.Overrides {
				ref, _ := o.Matcher.Options.(string)
				if o.Matcher.Id != "byFrameRefID" || ref == "" {
					continue
				}
				for _, prop := range o.Properties {
					if u, ok := prop.Value.(string); ok && prop.Id == "unit" {
						overrides[ref] = u
					}
				}
			}
		}
		if unit == "" {
			report("%q has no unit", title)
		}
		if p.Panel.Type == "stat" || p.Panel.Type == "gauge" {
			colors := map[string]bool{}
			if th != nil {
				for _, s := range th.Steps {
					colors[s.Color] = true
				}
			}
			if len(colors) < 2 {
				report("%q (%s) has no thresholds of two colors or more: its color says nothing", title, p.Panel.Type)
			}
		}
		for _, t := range p.Panel.Targets {
			pq, ok := t.(*prometheus.Dataquery)
			if !ok {
				continue
			}
			ref := deref(pq.RefId)
			axis := unit
			if u, ok := overrides[ref]; ok {
				axis = u
			}
			want, known := grafanaUnits[axis]
			if axis != "" && !known {
				report("%q: unit %q is not one the lint knows", title, axis)
			}
			got, why := queryUnit(pq.Expr, loopUnits)
			switch {
			case why != "":
				report("%q query %s: %s", title, ref, why)
			case got != "" && known && got != want:
				report("%q query %s is in %s but drawn on an axis of %q: give it an override with its own unit", title, ref, got, axis)
			}
			if strings.Contains(pq.Expr, "time()") {
				for _, n := range contract.MetricNames(pq.Expr) {
					if !strings.Contains(n, ":") {
						report("%q query %s computes an age from %s, which goes stale when its device does: read a recording rule that remembers (device:*:timestamp)", title, ref, n)
					}
				}
			}
		}
	}
	return out
}

// grafanaUnits maps the Grafana units the dashboards use to the unit of the quantity (UCUM
// as in metadata.yaml; 1 for counts and ratios, 1/s for rates of them).
var grafanaUnits = map[string]string{
	"s": "s", "ms": "s", "µs": "s", "dtdurations": "s",
	"celsius": "Cel", "rotrpm": "rpm", "volt": "V", "bytes": "By", "decbytes": "By",
	"percentunit": "1", "percent": "1", "short": "1", "none": "1",
	"ops": "1/s", "reqps": "1/s", "rps": "1/s", "wps": "1/s", "cps": "1/s",
}

// perLoopUnit are gauges in the unit of their loop: one query must name one loop.
var perLoopUnit = map[string]bool{"controlloop_process_value": true, "controlloop_setpoint": true}

var loopMatcher = regexp.MustCompile(`loop="([^"]+)"`)

// queryUnit infers the unit of a query's result, or "" when the expression is beyond the
// simple forms it knows (a product, several divisions); why is set when the query is wrong
// whatever its axis.
func queryUnit(expr string, loopUnits map[string]string) (unit, why string) {
	e := unwrap(Expand(expr, map[string]string{"device_id": ".*", "loop": ".*", "datasource": "x"}, "5m"))
	if topLevel(e, '*') {
		return "", checkLoops(e, loopUnits)
	}
	parts := splitTop(e, '/')
	units := make([]string, len(parts))
	for i, part := range parts {
		u, why := termUnit(part, loopUnits)
		if why != "" {
			return "", why
		}
		units[i] = u
	}
	switch {
	case len(parts) == 1:
		return units[0], ""
	case len(parts) == 2 && units[0] != "" && units[0] == units[1]:
		return "1", ""
	}
	return "", ""
}

func checkLoops(e string, loopUnits map[string]string) string {
	for _, n := range contract.MetricNames(e) {
		if perLoopUnit[n] {
			if _, why := loopUnit(e, loopUnits); why != "" {
				return why
			}
		}
	}
	return ""
}

// termUnit is the unit of an expression without a top-level division.
func termUnit(t string, loopUnits map[string]string) (string, string) {
	if strings.HasPrefix(strings.TrimSpace(t), "count(") {
		return "1", "" // how many series: whatever they measure
	}
	if strings.Contains(t, "time()") {
		return "s", "" // an age: now minus a timestamp
	}
	unit := ""
	for _, n := range contract.MetricNames(t) {
		u := metricUnit(n)
		if perLoopUnit[n] {
			var why string
			if u, why = loopUnit(t, loopUnits); why != "" {
				return "", why
			}
		}
		switch {
		case unit == "":
			unit = u
		case unit != u:
			return "", "" // a mix: beyond what is inferred
		}
	}
	if unit == "" {
		return "", ""
	}
	switch {
	case strings.Contains(t, "histogram_quantile("):
		return unit, ""
	case strings.Contains(t, "rate("): // rate and irate
		return unit + "/s", ""
	}
	return unit, ""
}

func loopUnit(t string, loopUnits map[string]string) (string, string) {
	m := loopMatcher.FindAllStringSubmatch(t, -1)
	if len(m) == 0 {
		return "", "controlloop_process_value and _setpoint are in their loop's unit: read one loop (loop=\"name\")"
	}
	u, ok := loopUnits[m[0][1]]
	if !ok {
		return "", fmt.Sprintf("loop %q has no unit in the edge config", m[0][1])
	}
	for _, x := range m[1:] {
		if loopUnits[x[1]] != u {
			return "", "loops of different units in one query"
		}
	}
	return grafanaUnitOfUCUM(u), ""
}

// grafanaUnitOfUCUM maps a loop's UCUM unit to the one grafanaUnits uses.
func grafanaUnitOfUCUM(u string) string {
	switch u {
	case "Cel", "rpm", "V", "s", "By":
		return u
	case "{rpm}", "/min":
		return "rpm"
	}
	return "1"
}

// metricUnit is the unit of a Prometheus series: its metadata.yaml unit, or its suffix.
func metricUnit(name string) string {
	if strings.HasSuffix(name, "_count") && contract.Base(name) != name {
		return "1" // how many observations a histogram took
	}
	if d, ok := contract.Contract[contract.Base(name)]; ok {
		switch d.Unit {
		case "s", "Cel", "By", "V":
			return d.Unit
		}
		return "1"
	}
	if d, ok := contract.Apps[contract.Base(name)]; ok && d.Unit == "s" {
		return "s"
	}
	switch {
	case strings.HasSuffix(name, "_seconds"), strings.Contains(name, "_seconds_"):
		return "s"
	case strings.HasSuffix(name, "_bytes"):
		return "By"
	case strings.HasSuffix(name, ":timestamp"):
		return "s"
	}
	return "1"
}

// keepsUnit are the functions and aggregations whose result is in their argument's unit.
var keepsUnit = regexp.MustCompile(`^\s*(sum|min|max|avg|last_over_time|max_over_time|min_over_time|avg_over_time|clamp_min|clamp_max|abs)\s*((by|without)\s*\([^()]*\))?\s*\(`)

// unwrap strips the unit-keeping aggregations around a whole expression, so that
// min by (x) (a / b) is seen as the ratio it is.
func unwrap(e string) string {
	for {
		m := keepsUnit.FindStringIndex(e)
		if m == nil {
			return e
		}
		inner := e[m[1]-1:]
		end := closing(inner)
		if end < 0 || strings.TrimSpace(inner[end+1:]) != "" {
			return e
		}
		e = inner[1:end]
	}
}

// closing returns the index of the parenthesis that closes s[0], or -1.
func closing(s string) int {
	depth := 0
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '(':
			depth++
		case ')':
			depth--
			if depth == 0 {
				return i
			}
		}
	}
	return -1
}

// splitTop splits e at op outside parentheses, brackets and braces.
func splitTop(e string, op byte) []string {
	var out []string
	depth, start := 0, 0
	for i := 0; i < len(e); i++ {
		switch e[i] {
		case '(', '[', '{':
			depth++
		case ')', ']', '}':
			depth--
		case '"':
			for i++; i < len(e) && e[i] != '"'; i++ {
				if e[i] == '\\' {
					i++
				}
			}
		case op:
			if depth == 0 {
				out = append(out, e[start:i])
				start = i + 1
			}
		}
	}
	return append(out, e[start:])
}

func topLevel(e string, op byte) bool { return len(splitTop(e, op)) > 1 }
