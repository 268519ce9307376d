// Package contract lists the metric names that dashboards and alert rules may use, as
// Prometheus sees them, and finds the metric names a PromQL expression reads. The
// telemetry contract of the shared ARCHITECTURE.md is the source; this copy lets tests
// check every dashboard query and rule against it without reaching outside the repository.
package contract

import (
	"regexp"
	"sort"
	"strings"
)

// Contract holds the Prometheus names of the telemetry contract (OTel names translated by
// the prometheus exporter: dots to underscores, unit suffix, _total on counters). A
// histogram is listed by its base name; _bucket, _sum and _count are accepted with it.
var Contract = map[string]string{
	"controlloop_cycles_total":                             "controlloop.cycles",
	"controlloop_cycle_duration_seconds":                   "controlloop.cycle.duration",
	"controlloop_cycle_lateness_seconds":                   "controlloop.cycle.lateness",
	"controlloop_process_value":                            "controlloop.process_value",
	"controlloop_setpoint":                                 "controlloop.setpoint",
	"controlloop_output_ratio":                             "controlloop.output",
	"controlloop_safe_state":                               "controlloop.safe_state",
	"controlloop_alarms_active":                            "controlloop.alarms.active",
	"controlloop_alarm_transitions_total":                  "controlloop.alarm.transitions",
	"controlloop_commands_total":                           "controlloop.commands",
	"controlloop_command_duration_seconds":                 "controlloop.command.duration",
	"controlloop_actuator_errors_total":                    "controlloop.actuator.errors",
	"hw_temperature_celsius":                               "hw.temperature",
	"hw_voltage_volts":                                     "hw.voltage",
	"hw_gpio_level_ratio":                                  "hw.gpio.level",
	"hw_gpio_edges_total":                                  "hw.gpio.edges",
	"hw_errors_total":                                      "hw.errors",
	"hw_status_ratio":                                      "hw.status",
	"otelcol_exporter_diskqueue_size_bytes":                "otelcol.exporter.diskqueue.size",
	"otelcol_exporter_diskqueue_records":                   "otelcol.exporter.diskqueue.records",
	"otelcol_exporter_diskqueue_oldest_age_seconds":        "otelcol.exporter.diskqueue.oldest.age",
	"otelcol_exporter_diskqueue_enqueued_total":            "otelcol.exporter.diskqueue.enqueued",
	"otelcol_exporter_diskqueue_sent_total":                "otelcol.exporter.diskqueue.sent",
	"otelcol_exporter_diskqueue_dropped_total":             "otelcol.exporter.diskqueue.dropped",
	"otelcol_exporter_diskqueue_write_errors_total":        "otelcol.exporter.diskqueue.write.errors",
	"otelcol_exporter_diskqueue_fsync_duration_seconds":    "otelcol.exporter.diskqueue.fsync.duration",
	"otelcol_exporter_diskqueue_send_last_success_seconds": "otelcol.exporter.diskqueue.send.last_success",
	"otelcol_processor_piiredaction_redactions_total":      "otelcol.processor.piiredaction.redactions",
	"slo_events_total":                                     "slo.events",
	"slo_burn_rate":                                        "slo.burn_rate",
	"slo_error_budget_remaining":                           "slo.error_budget.remaining",
	"slo_objective":                                        "slo.objective",
	"slo_alert":                                            "slo.alert",

	// Issue 18: a queue directory that cannot be used degrades the exporter (refusing,
	// counted, alerting) instead of stopping the edge; see the exporter's metadata.yaml.
	"otelcol_exporter_diskqueue_degraded":      "otelcol.exporter.diskqueue.degraded",
	"otelcol_exporter_diskqueue_refused_total": "otelcol.exporter.diskqueue.refused",
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
}

// Tools holds names that fieldcol's own tools and newer features emit beyond the contract
// table: the backup job (deploy/backup/fieldcol-backup pushes them over OTLP) and the
// control loop's dry run (issue 14). They are documented in docs/disaster-recovery.md and
// controlloop/README.md.
var Tools = map[string]string{
	"backup_runs_total":                "backup.runs (fieldcol-backup)",
	"backup_last_success_seconds":      "backup.last_success (fieldcol-backup)",
	"backup_duration_seconds":          "backup.duration (fieldcol-backup)",
	"backup_size_bytes":                "backup.size (fieldcol-backup)",
	"backup_added_bytes":               "backup.added (fieldcol-backup)",
	"controlloop_dry_run":              "controlloop.dry_run",
	"controlloop_dry_run_writes_total": "controlloop.dry_run.writes",
	"controlloop_restarts_total":       "controlloop.restarts",
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
	return c || o || f
}

func isHistogram(name string) bool {
	return strings.HasSuffix(name, "_seconds") && (strings.Contains(name, "duration") || strings.Contains(name, "lateness"))
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
