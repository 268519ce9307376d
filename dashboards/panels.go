package dashboards

// rate is the rate window of every panel: Grafana's $__rate_interval adapts to the scrape
// interval and the zoom, and never falls under four scrapes.
const rate = "[$__rate_interval]"

func fleet() *builder {
	return base("fieldcol-fleet", "fieldcol / Fleet overview",
		"Every edge device at a glance: which report, how fresh their data is, heat, disk and uplink backlog.", false).
		WithRow(row("Commands")).
		WithPanel(st("Command success rate", "Share of command API requests accepted across the selected devices; the rest were invalid, unauthorized, failed or rate limited.", "percentunit", 6, 4, successRatio,
			q{`sum(rate(controlloop_commands_total{` + devSel + `,result="accepted"}` + rate + `)) / sum(rate(controlloop_commands_total{` + devSel + `}` + rate + `))`, "accepted"}).
			Mappings(noData("no commands"))).
		WithPanel(st("Devices silent", "Devices the fleet knows (device:last_seen:timestamp, alerts/rules/fleet.yaml) that sent nothing for more than 5 minutes: each one pages as DeviceSilent until it reports again or is retired.", "short", 6, 4, anyIsBad,
			q{`count(time() - device:last_seen:timestamp{` + devSel + `} > 300) or vector(0)`, "devices"})).
		WithPanel(st("Loops forced safe", "Control loops whose outputs are forced to their safe state now (a latched alarm, a sensor fault or start-up).", "short", 6, 4, anyIsBad,
			q{`sum(controlloop_safe_state{` + devSel + `})`, "loops"})).
		WithPanel(st("Latched alarms", "Alarms that hold a loop safe until ACK_ALARM.", "short", 6, 4, anyIsBad,
			q{`sum(controlloop_alarms_active{` + devSel + `,latched="true"})`, "alarms"})).
		WithRow(row("Devices")).
		WithPanel(ts("Time since last data", "Seconds since each device's last sample reached Prometheus, from the fleet's memory of its devices (device:last_seen:timestamp), so a silent device keeps its line rising; DeviceSilent fires after 5 minutes.", "s", 12, 8,
			q{`time() - device:last_seen:timestamp{` + devSel + `}`, "{{device_id}}"})).
		WithPanel(ts("SoC temperature", "The Pi's SoC temperature; the firmware throttles from 80 °C (SoCTemperatureHigh warns at 75 °C).", "celsius", 12, 8,
			q{`max by (device_id) (hw_temperature_celsius{` + devSel + `,hw_id=~"thermal_zone[0-9]+"})`, "{{device_id}}"})).
		WithPanel(ts("Free disk space", "Lowest share of free space over each device's filesystems (host_metrics); FilesystemSpaceLow warns under 15%.", "percentunit", 12, 8,
			q{`min by (device_id) (sum by (device_id, mountpoint) (system_filesystem_usage_bytes{` + devSel + `,state="free"}) / sum by (device_id, mountpoint) (system_filesystem_usage_bytes{` + devSel + `}))`, "{{device_id}}"})).
		WithPanel(ts("Uplink backlog", "Age of the oldest record each device still holds in its disk queue: how far behind the central view is.", "s", 12, 8,
			q{`max by (device_id) (otelcol_exporter_diskqueue_oldest_age_seconds{` + devSel + `})`, "{{device_id}}"})).
		WithRow(row("Backups")).
		WithPanel(ts("Time since last successful backup", "Seconds since each device's last successful backup (every 15 min, deploy/backup); BackupStale warns after 30 minutes.", "s", 12, 8,
			q{`time() - device:backup_last_success:timestamp{` + devSel + `}`, "{{device_id}}"})).
		WithPanel(ts("Backup runs", "Backup and prune runs in the last hour by result.", "short", 12, 8,
			q{`sum by (device_id, kind, result) (increase(backup_runs_total{` + devSel + `}[1h]))`, "{{device_id}} {{kind}} {{result}}"}))
}

func controlLoop() *builder {
	return base("fieldcol-controlloop", "fieldcol / Control loop health",
		"Deadlines, jitter, alarms, outputs and regulation of the control loops.", true).
		WithRow(row("Deadlines")).
		WithPanel(ts("Cycles on time", "Share of cycles that finished before their deadline, against the 99.5% objective of the controlloop-deadline SLO.", "percentunit", 12, 8,
			q{`sum by (device_id, loop) (rate(controlloop_cycles_total{` + loopSel + `,outcome="ok"}` + rate + `)) / sum by (device_id, loop) (rate(controlloop_cycles_total{` + loopSel + `}` + rate + `))`, "{{device_id}} {{loop}}"},
			q{`max(slo_objective{` + devSel + `,slo="controlloop-deadline"})`, "objective"})).
		WithPanel(ts("Cycles by outcome", "Cycles per second by outcome: ok, overrun (finished late) or skipped (a whole period missed).", "ops", 12, 8,
			q{`sum by (device_id, loop, outcome) (rate(controlloop_cycles_total{` + loopSel + `}` + rate + `))`, "{{device_id}} {{loop}} {{outcome}}"})).
		WithPanel(ts("Cycle duration", "Time from wake-up to the end of the actuator write, p50 and p99; it must stay well under the loop's period.", "s", 8, 8,
			q{`histogram_quantile(0.5, sum by (device_id, loop, le) (rate(controlloop_cycle_duration_seconds_bucket{` + loopSel + `}` + rate + `)))`, "p50 {{device_id}} {{loop}}"},
			q{`histogram_quantile(0.99, sum by (device_id, loop, le) (rate(controlloop_cycle_duration_seconds_bucket{` + loopSel + `}` + rate + `)))`, "p99 {{device_id}} {{loop}}"})).
		// The max is histogram_quantile at 1: the bound of the largest non-empty bucket, the
		// histogram's own upper limit on the worst wake-up of the interval.
		WithPanel(ts("Lateness (jitter)", "Wake-up minus deadline, p50, p99 and max (the bound of the largest non-empty bucket: the worst wake-up was at most this late). Buckets are 10 µs apart up to 100 µs and 25 µs up to 200 µs, so a SCHED_FIFO loop can be compared with cyclictest (bench/looptiming). High lateness with short cycles means CPU contention. Runtime p99 is the p99 of the part the Go runtime added after the kernel woke the loop thread: when it makes up the lateness, the process (the collector's work, its collections) delays the loop, otherwise the machine does.", "s", 8, 8,
			q{`histogram_quantile(0.5, sum by (device_id, loop, le) (rate(controlloop_cycle_lateness_seconds_bucket{` + loopSel + `}` + rate + `)))`, "p50 {{device_id}} {{loop}}"},
			q{`histogram_quantile(0.99, sum by (device_id, loop, le) (rate(controlloop_cycle_lateness_seconds_bucket{` + loopSel + `}` + rate + `)))`, "p99 {{device_id}} {{loop}}"},
			q{`histogram_quantile(1, sum by (device_id, loop, le) (rate(controlloop_cycle_lateness_seconds_bucket{` + loopSel + `}` + rate + `)))`, "max {{device_id}} {{loop}}"},
			q{`histogram_quantile(0.99, sum by (device_id, loop, le) (rate(controlloop_cycle_lateness_runtime_seconds_bucket{` + loopSel + `}` + rate + `)))`, "runtime p99 {{device_id}} {{loop}}"})).
		// The period is not exported: all cycles (ok, overrun, skipped) count one per period,
		// so lateness times their rate is lateness as a share of the period.
		WithPanel(ts("Lateness, share of the period", "Lateness p99 and max divided by the loop's period: what the wake-up leaves of each period for the cycle's work. ControlLoopLatenessHigh warns when p99 stays above 20% for 15 minutes; at 100% a cycle is skipped.", "percentunit", 8, 8,
			q{`histogram_quantile(0.99, sum by (device_id, loop, le) (rate(controlloop_cycle_lateness_seconds_bucket{` + loopSel + `}` + rate + `))) * on (device_id, loop) sum by (device_id, loop) (rate(controlloop_cycles_total{` + loopSel + `}` + rate + `))`, "p99 {{device_id}} {{loop}}"},
			q{`histogram_quantile(1, sum by (device_id, loop, le) (rate(controlloop_cycle_lateness_seconds_bucket{` + loopSel + `}` + rate + `))) * on (device_id, loop) sum by (device_id, loop) (rate(controlloop_cycles_total{` + loopSel + `}` + rate + `))`, "max {{device_id}} {{loop}}"})).
		WithRow(row("Alarms and outputs")).
		WithPanel(ts("Active alarms", "Alarms active now by loop, alarm and whether latched; a latched alarm holds the loop safe until ACK_ALARM.", "short", 12, 8,
			q{`sum by (device_id, loop, alarm, latched) (controlloop_alarms_active{` + loopSel + `})`, "{{device_id}} {{loop}} {{alarm}} latched={{latched}}"})).
		WithPanel(ts("Alarm transitions", "Alarms raised, cleared and acknowledged per second.", "ops", 12, 8,
			q{`sum by (device_id, loop, alarm, transition) (rate(controlloop_alarm_transitions_total{` + loopSel + `}` + rate + `))`, "{{device_id}} {{loop}} {{alarm}} {{transition}}"})).
		WithPanel(ts("Heater and motor duty", "Output of each loop's actuators, 0..1: heater SSR duty, motor speed and enable.", "percentunit", 12, 8,
			q{`controlloop_output_ratio{` + loopSel + `}`, "{{device_id}} {{loop}} {{actuator}}"})).
		WithPanel(ts("Safe state", "1 while a loop's outputs are forced to their safe state.", "short", 12, 8,
			q{`controlloop_safe_state{` + loopSel + `}`, "{{device_id}} {{loop}}"})).
		WithRow(row("Regulation")).
		// One panel per loop: each loop has its own unit (distributions/edge/config.yaml).
		WithPanel(ts("Oven temperature and setpoint", "The oven loop's measured temperature and its working setpoint.", "celsius", 12, 8,
			q{`controlloop_process_value{device_id=~"$device_id",loop="oven"}`, "pv {{device_id}}"},
			q{`controlloop_setpoint{device_id=~"$device_id",loop="oven"}`, "sp {{device_id}}"})).
		WithPanel(ts("Conveyor speed and setpoint", "The conveyor loop's measured motor speed and its working setpoint.", "rotrpm", 12, 8,
			q{`controlloop_process_value{device_id=~"$device_id",loop="conveyor"}`, "pv {{device_id}}"},
			q{`controlloop_setpoint{device_id=~"$device_id",loop="conveyor"}`, "sp {{device_id}}"})).
		WithPanel(ts("Temperature against its stability band", "Oven temperature minus setpoint; a regulated oven stays inside the ±2 °C band drawn by the two limits.", "celsius", 12, 8,
			q{`controlloop_process_value{device_id=~"$device_id",loop="oven"} - controlloop_setpoint{device_id=~"$device_id",loop="oven"}`, "deviation {{device_id}}"},
			q{`2 + 0 * controlloop_setpoint{device_id=~"$device_id",loop="oven"}`, "+2 °C {{device_id}}"},
			q{`-2 + 0 * controlloop_setpoint{device_id=~"$device_id",loop="oven"}`, "-2 °C {{device_id}}"})).
		WithPanel(ts("Actuator write errors", "Failed actuator writes per second; each one latches actuator_fault.", "ops", 24, 6,
			q{`sum by (device_id, actuator, error_type) (rate(controlloop_actuator_errors_total{` + devSel + `}` + rate + `))`, "{{device_id}} {{actuator}} {{error_type}}"}))
}

func hardware() *builder {
	return base("fieldcol-hardware", "fieldcol / Hardware",
		"Sensors, GPIO, ADC channels and their buses, and the SoC, as the hardware receiver reads them.", false).
		WithPanel(ts("Temperatures", "Every temperature sensor (DS18B20, MCP9808, the SoC) by name.", "celsius", 12, 8,
			q{`hw_temperature_celsius{` + devSel + `}`, "{{device_id}} {{hw_name}}"})).
		WithPanel(ts("SoC temperature", "The SoC's thermal zone; from 80 °C the CPU is throttled.", "celsius", 12, 8,
			q{`hw_temperature_celsius{` + devSel + `,hw_id=~"thermal_zone[0-9]+"}`, "{{device_id}} {{hw_id}}"})).
		WithPanel(ts("ADC channels", "Voltages of the ADC channels after scale and offset.", "volt", 12, 8,
			q{`hw_voltage_volts{` + devSel + `}`, "{{device_id}} {{hw_name}}"})).
		WithPanel(ts("GPIO levels", "Logical level of each GPIO input (0 or 1).", "short", 12, 8,
			q{`hw_gpio_level_ratio{` + devSel + `}`, "{{device_id}} {{hw_name}}"})).
		WithPanel(ts("GPIO edges", "Counted edges per second of each GPIO input (flow meters, encoders).", "ops", 12, 8,
			q{`sum by (device_id, hw_name) (rate(hw_gpio_edges_total{` + devSel + `}` + rate + `))`, "{{device_id}} {{hw_name}}"})).
		WithPanel(ts("Bus errors", "Failed reads per second by device and error type (timeout, nack, io, out_of_range, invalid, stale).", "ops", 12, 8,
			q{`sum by (device_id, hw_id, hw_type, error_type) (rate(hw_errors_total{` + devSel + `}` + rate + `))`, "{{device_id}} {{hw_id}} {{error_type}}"})).
		WithPanel(ts("ADC errors", "Failed conversions per second of the ADC channels (hw_id <bus>/<address>/ch<N>).", "ops", 12, 8,
			q{`sum by (device_id, hw_id, error_type) (rate(hw_errors_total{` + devSel + `,hw_id=~".+/ch[0-9]+"}` + rate + `))`, "{{device_id}} {{hw_id}} {{error_type}}"})).
		WithPanel(ts("Device states", "Number of devices ok, degraded (recent failed reads) and failed.", "short", 12, 8,
			q{`sum by (hw_state) (hw_status_ratio{` + devSel + `})`, "{{hw_state}}"}))
}

func pipeline() *builder {
	return base("fieldcol-pipeline", "fieldcol / Pipeline and disk queue",
		"What each collector component accepts, refuses, sends and fails, and the crash-safe disk queue that carries the edge's data to the gateway.", false).
		WithRow(row("Components")).
		WithPanel(ts("Accepted per receiver", "Items per second each receiver accepted into its pipelines, by signal.", "ops", 12, 8,
			q{`sum by (device_id, receiver) (rate(otelcol_receiver_accepted_metric_points_total{` + devSel + `}` + rate + `))`, "metrics {{device_id}} {{receiver}}"},
			q{`sum by (device_id, receiver) (rate(otelcol_receiver_accepted_spans_total{` + devSel + `}` + rate + `))`, "spans {{device_id}} {{receiver}}"},
			q{`sum by (device_id, receiver) (rate(otelcol_receiver_accepted_log_records_total{` + devSel + `}` + rate + `))`, "logs {{device_id}} {{receiver}}"})).
		WithPanel(ts("Refused per receiver", "Items per second a receiver refused because the pipeline pushed back (memory_limiter, a full queue).", "ops", 12, 8,
			q{`sum by (device_id, receiver) (rate(otelcol_receiver_refused_metric_points_total{` + devSel + `}` + rate + `))`, "metrics {{device_id}} {{receiver}}"},
			q{`sum by (device_id, receiver) (rate(otelcol_receiver_refused_spans_total{` + devSel + `}` + rate + `))`, "spans {{device_id}} {{receiver}}"},
			q{`sum by (device_id, receiver) (rate(otelcol_receiver_refused_log_records_total{` + devSel + `}` + rate + `))`, "logs {{device_id}} {{receiver}}"})).
		WithPanel(ts("Sent per exporter", "Items per second each exporter delivered (for diskqueue: accepted onto disk).", "ops", 12, 8,
			q{`sum by (device_id, exporter) (rate(otelcol_exporter_sent_metric_points_total{` + devSel + `}` + rate + `))`, "metrics {{device_id}} {{exporter}}"},
			q{`sum by (device_id, exporter) (rate(otelcol_exporter_sent_spans_total{` + devSel + `}` + rate + `))`, "spans {{device_id}} {{exporter}}"},
			q{`sum by (device_id, exporter) (rate(otelcol_exporter_sent_log_records_total{` + devSel + `}` + rate + `))`, "logs {{device_id}} {{exporter}}"})).
		WithPanel(ts("Failed per exporter", "Items per second an exporter failed to send; the series exist only once an exporter has failed.", "ops", 12, 8,
			q{`sum by (device_id, exporter) (rate(otelcol_exporter_send_failed_metric_points_total{` + devSel + `}` + rate + `))`, "metrics {{device_id}} {{exporter}}"},
			q{`sum by (device_id, exporter) (rate(otelcol_exporter_send_failed_spans_total{` + devSel + `}` + rate + `))`, "spans {{device_id}} {{exporter}}"},
			q{`sum by (device_id, exporter) (rate(otelcol_exporter_send_failed_log_records_total{` + devSel + `}` + rate + `))`, "logs {{device_id}} {{exporter}}"})).
		WithRow(row("PII redaction (access audit)")).
		WithPanel(ts("Values redacted, by rule and key", "The PII-access audit (GDPR Art. 30): values per second piiredaction masked, hashed or dropped, by signal, rule, action and the key the value was under. It never shows a value; a key that holds personal data itself reads redacted_key.", "ops", 24, 8,
			q{`sum by (device_id, signal, rule, action, key) (rate(otelcol_processor_piiredaction_redactions_total{` + devSel + `}` + rate + `))`, "{{device_id}} {{signal}} {{rule}} {{action}} {{key}}"})).
		WithRow(row("Disk queue")).
		WithPanel(ts("Queue depth", "Bytes on disk per signal (max_size is 256 MiB a signal in the edge config).", "bytes", 8, 8,
			q{`otelcol_exporter_diskqueue_size_bytes{` + devSel + `}`, "{{device_id}} {{signal}}"})).
		WithPanel(ts("Records waiting", "Records written and not yet accepted by the gateway.", "short", 8, 8,
			q{`otelcol_exporter_diskqueue_records{` + devSel + `}`, "{{device_id}} {{signal}}"})).
		WithPanel(ts("Oldest record age", "Age of the oldest record waiting: the uplink outage as the device sees it.", "s", 8, 8,
			q{`otelcol_exporter_diskqueue_oldest_age_seconds{` + devSel + `}`, "{{device_id}} {{signal}}"})).
		WithPanel(ts("Enqueued and sent", "Records per second onto disk and out to the gateway.", "ops", 12, 8,
			q{`sum by (device_id, signal) (rate(otelcol_exporter_diskqueue_enqueued_total{` + devSel + `}` + rate + `))`, "in {{device_id}} {{signal}}"},
			q{`sum by (device_id, signal) (rate(otelcol_exporter_diskqueue_sent_total{` + devSel + `}` + rate + `))`, "out {{device_id}} {{signal}}"})).
		WithPanel(ts("Drops", "Records per second dropped, by reason (full, corrupt, expired, rejected): telemetry lost.", "ops", 12, 8,
			q{`sum by (device_id, signal, reason) (rate(otelcol_exporter_diskqueue_dropped_total{` + devSel + `}` + rate + `))`, "{{device_id}} {{signal}} {{reason}}"})).
		WithPanel(ts("fsync latency and write errors", "p99 and p50 of the group commit's fsync, and failed writes or fsyncs per second (enospc, io).", "s", 12, 8,
			q{`histogram_quantile(0.99, sum by (device_id, le) (rate(otelcol_exporter_diskqueue_fsync_duration_seconds_bucket{` + devSel + `}` + rate + `)))`, "p99 {{device_id}}"},
			q{`histogram_quantile(0.5, sum by (device_id, le) (rate(otelcol_exporter_diskqueue_fsync_duration_seconds_bucket{` + devSel + `}` + rate + `)))`, "p50 {{device_id}}"},
			q{`sum by (device_id, error_type) (rate(otelcol_exporter_diskqueue_write_errors_total{` + devSel + `}` + rate + `))`, "errors/s {{device_id}} {{error_type}}"}).
			OverrideByQuery("C", unitOf("ops"))).
		WithPanel(ts("Time since last successful send", "Seconds since the gateway last accepted a batch from each device (none before the first success), remembered while the device is silent (device:diskqueue_send_last_success:timestamp).", "s", 12, 8,
			q{`time() - device:diskqueue_send_last_success:timestamp{` + devSel + `}`, "{{device_id}}"})).
		WithRow(row("Storage wear")).
		WithPanel(ts("Queue fill", "Each queue's size against its own limit (max_size, or less under max_size_free_share); DiskQueueNearlyFull fires over 80%.", "percentunit", 6, 8,
			q{`max by (device_id, signal) (otelcol_exporter_diskqueue_size_bytes{` + devSel + `}) / max by (device_id, signal) (otelcol_exporter_diskqueue_limit_bytes{` + devSel + `} > 0)`, "{{device_id}} {{signal}}"})).
		WithPanel(ts("Write amplification", "Bytes written per byte the queues acknowledged: by the queues' own files, and by the whole process (/proc/self/io write_bytes).", "short", 6, 8,
			q{`sum by (device_id) (rate(otelcol_exporter_diskqueue_bytes_written_total{` + devSel + `,source="queue"}` + rate + `)) / sum by (device_id) (rate(otelcol_exporter_diskqueue_bytes_accepted_total{` + devSel + `}` + rate + `))`, "queue {{device_id}}"},
			q{`max by (device_id) (rate(otelcol_exporter_diskqueue_bytes_written_total{` + devSel + `,source="process"}` + rate + `)) / sum by (device_id) (rate(otelcol_exporter_diskqueue_bytes_accepted_total{` + devSel + `}` + rate + `))`, "process {{device_id}}"})).
		WithPanel(ts("fsyncs", "fsyncs per second of the queues' files and directories: each one rewrites a flash page of the card.", "ops", 6, 8,
			q{`sum by (device_id) (rate(otelcol_exporter_diskqueue_fsyncs_total{` + devSel + `}` + rate + `))`, "{{device_id}}"})).
		WithPanel(ts("Projected card life", "Time until the storage reaches its configured endurance (device_endurance) at the process's write rate; empty where device_endurance is not set. DiskQueueCardWearing fires under two years.", "s", 6, 8,
			q{`min by (device_id) (otelcol_exporter_diskqueue_device_life_projected_seconds{` + devSel + `})`, "{{device_id}}"}))
}

func slo() *builder {
	return base("fieldcol-slo", "fieldcol / SLOs and error budgets",
		"Burn rates and error budgets, as each device's sloburn processor computes them and as the central rules (alerts/slo) recompute them over the fleet.", false).
		WithPanel(st("SLO alerts firing on devices", "Devices' own multiwindow alert conditions that hold now, by severity (page, ticket).", "short", 12, 4, anyIsBad,
			q{`sum by (severity) (slo_alert{` + devSel + `})`, "{{severity}}"})).
		WithPanel(st("Fleet budget remaining", "Share of each SLO's 30-day error budget left, over the whole fleet (central rules).", "percentunit", 12, 4, thresholds("red", step{0, "yellow"}, step{0.25, "green"}),
			q{`fieldcol_slo:period_error_budget_remaining:ratio`, "{{slo}}"})).
		WithPanel(st("Error-budget policy", "The fleet document's policy per SLO, from the worst series' budget left over the SLO's own period (fieldcol_slo:error_budget_policy:state): ship above 50%, slow down at 20-50%, freeze below 20%.", "none", 24, 4, thresholds("red", step{1, "yellow"}, step{2, "green"}),
			q{`fieldcol_slo:error_budget_policy:state`, "{{slo}}"}).
			Mappings(policyStates())).
		WithPanel(ts("Burn rate per window", "Each device's burn rate by window: 1 spends the budget exactly over the period; the page threshold is 14.4 over 1h and 5m.", "short", 12, 8,
			q{`slo_burn_rate{` + devSel + `}`, "{{device_id}} {{slo}} {{loop}} {{window}}"})).
		WithPanel(ts("Budget remaining per device", "Share of the error budget each device has left over the period (negative when overspent).", "percentunit", 12, 8,
			q{`slo_error_budget_remaining{` + devSel + `}`, "{{device_id}} {{slo}} {{loop}}"})).
		WithPanel(ts("Fleet burn rates", "Burn rates over the fleet from the central rules, short and long windows of the page condition.", "short", 12, 8,
			q{`fieldcol_slo:burn_rate:ratio_rate5m`, "5m {{slo}}"},
			q{`fieldcol_slo:burn_rate:ratio_rate1h`, "1h {{slo}}"})).
		WithPanel(ts("Good and bad events", "SLI events per second by outcome.", "ops", 12, 8,
			q{`sum by (slo, outcome) (rate(slo_events_total{` + devSel + `}` + rate + `))`, "{{slo}} {{outcome}}"}))
}

func commands() *builder {
	return base("fieldcol-commands", "fieldcol / Command API",
		"Rate, errors and duration of the control loop's command API (RED), per command.", false).
		WithPanel(st("Success rate", "Share of requests accepted.", "percentunit", 24, 4, successRatio,
			q{`sum(rate(controlloop_commands_total{` + devSel + `,result="accepted"}` + rate + `)) / sum(rate(controlloop_commands_total{` + devSel + `}` + rate + `))`, "accepted"}).
			Mappings(noData("no commands"))).
		WithPanel(ts("Rate per command", "Requests per second by command, whatever their result.", "reqps", 12, 8,
			q{`sum by (command) (rate(controlloop_commands_total{` + devSel + `}` + rate + `))`, "{{command}}"})).
		WithPanel(ts("Errors per command", "Requests per second that were not accepted, by command and result (invalid, unauthorized, failed, rate_limited).", "reqps", 12, 8,
			q{`sum by (command, result) (rate(controlloop_commands_total{` + devSel + `,result!="accepted"}` + rate + `))`, "{{command}} {{result}}"})).
		WithPanel(ts("Duration per command", "p50, p95 and p99 of the time from request to the loop's answer.", "s", 12, 8,
			q{`histogram_quantile(0.5, sum by (command, le) (rate(controlloop_command_duration_seconds_bucket{` + devSel + `}` + rate + `)))`, "p50 {{command}}"},
			q{`histogram_quantile(0.95, sum by (command, le) (rate(controlloop_command_duration_seconds_bucket{` + devSel + `}` + rate + `)))`, "p95 {{command}}"},
			q{`histogram_quantile(0.99, sum by (command, le) (rate(controlloop_command_duration_seconds_bucket{` + devSel + `}` + rate + `)))`, "p99 {{command}}"})).
		WithPanel(ts("Validation failures", "Requests per second refused as invalid (400), by command; CommandValidationFailures fires over 0.1%.", "reqps", 12, 8,
			q{`sum by (device_id, command) (rate(controlloop_commands_total{` + devSel + `,result="invalid"}` + rate + `))`, "{{device_id}} {{command}}"})).
		WithPanel(ts("Unauthorized requests", "Requests per second refused for missing or wrong credentials (401).", "reqps", 24, 6,
			q{`sum by (device_id, command) (rate(controlloop_commands_total{` + devSel + `,result="unauthorized"}` + rate + `))`, "{{device_id}} {{command}}"}))
}
