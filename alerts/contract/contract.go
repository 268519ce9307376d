// Package contract lists the metric names that dashboards and alert rules may use, as
// Prometheus sees them, and finds the metric names a PromQL expression reads. Contract is
// generated from the components' metadata.yaml files (the one source of every name a
// component emits), so a dashboard or rule can read only a name some component declares;
// a new name goes into a metadata.yaml first, then make generate, then into dashboards and
// rules.
package contract

//go:generate go run ./internal/gen -root ../.. -out generated_contract.go

import (
	"regexp"
	"sort"
	"strings"
)

// Declared is a metric as its component's metadata.yaml declares it.
type Declared struct {
	// Name is the OTel name the component emits.
	Name string
	Unit string
	// Kind is counter, updowncounter, gauge or histogram.
	Kind string
	// Component is the type in the metadata.yaml (controlloop, hardware, sloburn ...).
	Component string
}

// Collector holds names outside the fieldcol contract that the collector itself emits
// with stable, documented names: core's pipeline self-telemetry (every receiver and
// exporter) and the host_metrics receiver's filesystem usage. The issue asks for pipeline
// health and disk space, which the contract does not cover; these are the collector's own
// conventions, not new names of ours.
var Collector = map[string]string{
	"otelcol_receiver_accepted_metric_points_total":    "otelcol.receiver.accepted.metric_points (core)",
	"otelcol_receiver_accepted_spans_total":            "otelcol.receiver.accepted.spans (core)",
	"otelcol_receiver_accepted_log_records_total":      "otelcol.receiver.accepted.log_records (core)",
	"otelcol_receiver_refused_metric_points_total":     "otelcol.receiver.refused.metric_points (core)",
	"otelcol_receiver_refused_spans_total":             "otelcol.receiver.refused.spans (core)",
	"otelcol_receiver_refused_log_records_total":       "otelcol.receiver.refused.log_records (core)",
	"otelcol_exporter_sent_metric_points_total":        "otelcol.exporter.sent.metric_points (core)",
	"otelcol_exporter_sent_spans_total":                "otelcol.exporter.sent.spans (core)",
	"otelcol_exporter_sent_log_records_total":          "otelcol.exporter.sent.log_records (core)",
	"otelcol_exporter_send_failed_metric_points_total": "otelcol.exporter.send_failed.metric_points (core)",
	"otelcol_exporter_send_failed_spans_total":         "otelcol.exporter.send_failed.spans (core)",
	"otelcol_exporter_send_failed_log_records_total":   "otelcol.exporter.send_failed.log_records (core)",
	"system_filesystem_usage_bytes":                    "system.filesystem.usage (host_metrics)",
	// The gateway tiers' own telemetry as Prometheus scrapes it from their pull exporter
	// (:8888), which adds neither unit nor _total suffix (checked on a running sampler).
	"otelcol_exporter_queue_size":                    "otelcol.exporter.queue.size (core, gateway scrape)",
	"otelcol_exporter_queue_capacity":                "otelcol.exporter.queue.capacity (core, gateway scrape)",
	"otelcol_exporter_enqueue_failed_spans":          "otelcol.exporter.enqueue_failed.spans (core, gateway scrape)",
	"otelcol_exporter_enqueue_failed_metric_points":  "otelcol.exporter.enqueue_failed.metric_points (core, gateway scrape)",
	"otelcol_exporter_enqueue_failed_log_records":    "otelcol.exporter.enqueue_failed.log_records (core, gateway scrape)",
	"otelcol_exporter_send_failed_spans":             "otelcol.exporter.send_failed.spans (core, gateway scrape)",
	"otelcol_exporter_send_failed_metric_points":     "otelcol.exporter.send_failed.metric_points (core, gateway scrape)",
	"otelcol_exporter_send_failed_log_records":       "otelcol.exporter.send_failed.log_records (core, gateway scrape)",
	"otelcol_exporter_prometheusremotewrite_wal_lag": "otelcol.exporter.prometheusremotewrite.wal_lag (contrib, gateway scrape)",
	// Prometheus's own: a scrape target's health, and the alerts it holds.
	"up":     "up (Prometheus, per scrape target)",
	"ALERTS": "ALERTS (Prometheus, firing and pending alerts)",
}

// Tools holds names that fieldcol's own tools emit, which are no collector component and
// have no metadata.yaml: the backup job (deploy/backup/fieldcol-backup pushes them over
// OTLP), documented in docs/disaster-recovery.md.
var Tools = map[string]string{
	"backup_runs_total":           "backup.runs (fieldcol-backup)",
	"backup_last_success_seconds": "backup.last_success (fieldcol-backup)",
	"backup_duration_seconds":     "backup.duration (fieldcol-backup)",
	"backup_size_bytes":           "backup.size (fieldcol-backup)",
	"backup_added_bytes":          "backup.added (fieldcol-backup)",
}

// Apps holds the names the fleet's own applications send over OTLP (the robots' software,
// which is no fieldcol component): docs/fleet-telemetry.md is their contract, with the
// OpenTelemetry semantic conventions where one exists (http.server.request.duration).
var Apps = map[string]Declared{
	"missions_total":                       {Name: "missions", Unit: "{mission}", Kind: "counter", Component: "fleet app"},
	"vehicle_battery_level_ratio":          {Name: "vehicle.battery.level", Unit: "1", Kind: "gauge", Component: "fleet app"},
	"vehicle_heartbeat_total":              {Name: "vehicle.heartbeat", Unit: "{heartbeat}", Kind: "counter", Component: "fleet app"},
	"http_server_request_duration_seconds": {Name: "http.server.request.duration", Unit: "s", Kind: "histogram", Component: "fleet app (semconv)"},
}

// Allowed reports whether a dashboard or rule may read name: a contract or collector
// name, a histogram series of one, or a recording rule's output (named level:metric:ops).
func Allowed(name string, recorded map[string]bool) bool {
	if strings.Contains(name, ":") {
		return recorded[name]
	}
	return Base(name) != ""
}

// Base returns the listed name that name is a series of (itself, or the histogram it is a
// _bucket, _sum or _count of), or "" when it is not listed.
func Base(name string) string {
	if known(name) {
		return name
	}
	for _, suffix := range []string{"_bucket", "_sum", "_count"} {
		if b, ok := strings.CutSuffix(name, suffix); ok && known(b) && isHistogram(b) {
			return b
		}
	}
	return ""
}

func known(name string) bool {
	_, c := Contract[name]
	_, o := Collector[name]
	_, f := Tools[name]
	_, a := Apps[name]
	return c || o || f || a
}

// isHistogram reports whether name is a declared histogram; Collector and Tools list none.
func isHistogram(name string) bool {
	return Contract[name].Kind == "histogram" || Apps[name].Kind == "histogram"
}

var (
	quoted = regexp.MustCompile(`"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|` + "`[^`]*`")
	// Label lists of matchers and of grouping and vector-matching clauses hold label names,
	// which look like metric names (hw_id).
	braces  = regexp.MustCompile(`\{[^{}]*\}`)
	clauses = regexp.MustCompile(`\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^()]*\)`)
	ranges  = regexp.MustCompile(`\[[^\[\]]*\]`)
	// Numbers, with an exponent or a duration unit (1e-9, 5m), are not identifiers.
	numbers  = regexp.MustCompile(`\b[0-9][0-9.]*(?:[eE][-+]?[0-9]+)?[a-z]*`)
	idents   = regexp.MustCompile(`[A-Za-z_:][A-Za-z0-9_:]*`)
	grafana  = regexp.MustCompile(`\$\{?[A-Za-z_][A-Za-z0-9_]*(?::[a-z]+)?\}?`)
	keywords = map[string]bool{
		"sum": true, "min": true, "max": true, "avg": true, "count": true, "group": true, "topk": true,
		"bottomk": true, "quantile": true, "stddev": true, "and": true, "or": true, "unless": true,
		"bool": true, "offset": true, "rate": true, "irate": true, "increase": true, "delta": true,
		"deriv": true, "histogram_quantile": true, "label_replace": true, "label_join": true,
		"max_over_time": true, "min_over_time": true, "avg_over_time": true, "last_over_time": true,
		"count_over_time": true, "sum_over_time": true, "changes": true, "resets": true,
		"time": true, "timestamp": true, "vector": true, "scalar": true, "abs": true, "round": true,
		"clamp_min": true, "clamp_max": true, "clamp": true, "absent": true, "present_over_time": true,
		"sort": true, "sort_desc": true, "ceil": true, "floor": true,
		"by": true, "without": true, "on": true, "ignoring": true, "group_left": true, "group_right": true,
		"inf": true, "nan": true, "Inf": true, "NaN": true,
	}
)

// MetricNames returns the metric names expr reads, sorted and without duplicates. It
// understands the PromQL that fieldcol's rules and dashboards use and Grafana's
// $variables; an identifier it cannot place comes back as a name, so a test that checks
// names against the contract fails on it instead of letting it through.
func MetricNames(expr string) []string {
	s := grafana.ReplaceAllString(expr, "1")
	s = quoted.ReplaceAllString(s, `""`)
	for prev := ""; prev != s; {
		prev = s
		s = braces.ReplaceAllString(s, " ")
	}
	s = clauses.ReplaceAllString(s, " ")
	s = ranges.ReplaceAllString(s, " ")
	s = numbers.ReplaceAllString(s, " ")
	seen := map[string]bool{}
	for _, id := range idents.FindAllString(s, -1) {
		if keywords[id] {
			continue
		}
		seen[id] = true
	}
	out := make([]string, 0, len(seen))
	for n := range seen {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}
