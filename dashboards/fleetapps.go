package dashboards

// The fleet document's dashboard hierarchy (section 9: executive, operations, engineering,
// per vehicle), on the names its robots' applications send (docs/fleet-telemetry.md) and
// the recording rules that remember vehicles (alerts/rules/vehicles.yaml, fleet.yaml).
// The document's map, active-missions table and error logs come from a database and the
// log store, which these Prometheus dashboards do not read.

// online counts the vehicles whose heartbeat advanced in the last 5 minutes (VehicleOffline's
// threshold); known, the vehicles the fleet remembers.
const (
	heartbeatAge = `time() - vehicle:heartbeat_last:timestamp{` + devSel + `}`
	online       = `count(` + heartbeatAge + ` < 300)`
	known        = `count(vehicle:heartbeat_last:timestamp{` + devSel + `})`
)

// A mission success rate is red under 90% and yellow under 95% (the document's gauge).
var missionSuccess = thresholds("red", step{0.90, "yellow"}, step{0.95, "green"})

func executive() *builder {
	return base("fieldcol-executive", "fieldcol / Fleet executive",
		"The fleet's key figures for leadership: mission success, fleet availability, missions per day.", false).
		Refresh("1m").
		Time("now-7d", "now").
		// Stats, not gauges: Grafana 13's gauge requires options (barShape, segmentCount ...)
		// that grafana-foundation-sdk v0.0.22 cannot write, and the schema check refuses it.
		WithPanel(st("Mission success rate", "Share of missions that ended in success over the last hour (missions_total by status: success, failure, aborted). Target 99%; yellow under 95%, red under 90%.", "percentunit", 8, 8, missionSuccess,
			q{`sum(increase(missions_total{` + devSel + `,status="success"}[1h])) / sum(increase(missions_total{` + devSel + `}[1h]))`, "success"}).
			Mappings(noData("no missions"))).
		WithPanel(st("Fleet availability", "Share of the vehicles the fleet knows whose heartbeat advanced in the last 5 minutes (vehicle:heartbeat_last:timestamp). Target 100%; yellow under 95%, red under 80%.", "percentunit", 8, 8,
			thresholds("red", step{0.80, "yellow"}, step{0.95, "green"}),
			q{online + ` / ` + known + ` or vector(0)`, "available"})).
		WithPanel(st("Missions in the last 24 hours", "Missions that ended in the last 24 hours by status; red when any failed.", "short", 8, 8,
			thresholds("green", step{1, "red"}),
			q{`sum(increase(missions_total{` + devSel + `,status="failure"}[1d])) or vector(0)`, "failed"})).
		WithPanel(ts("Missions per day", "Missions that ended in the 24 hours before each point, by status.", "short", 12, 8,
			q{`sum by (status) (increase(missions_total{` + devSel + `}[1d]))`, "{{status}}"})).
		WithPanel(ts("Vehicles online", "Vehicles whose heartbeat advanced in the last 5 minutes, against the vehicles the fleet knows.", "short", 12, 8,
			q{online, "online"},
			q{known, "known"}))
}

func operations() *builder {
	return base("fieldcol-operations", "fieldcol / Fleet operations",
		"The control room's view: firing alerts and the state of every vehicle, refreshed every 10 seconds.", false).
		Refresh("10s").
		Time("now-1h", "now").
		WithRow(row("Alerts")).
		WithPanel(st("Alerts firing", "Alerts Prometheus holds as firing now, by severity (ALERTS), whatever Alertmanager routes or inhibits.", "short", 8, 4, anyIsBad,
			q{`count by (severity) (ALERTS{alertstate="firing"}) or vector(0)`, "{{severity}}"})).
		WithPanel(ts("Firing alerts", "Each firing alert over time, by name and severity.", "short", 16, 8,
			q{`sum by (alertname, severity) (ALERTS{alertstate="firing"})`, "{{alertname}} {{severity}}"})).
		WithRow(row("Fleet state")).
		WithPanel(st("Vehicles offline", "Vehicles whose heartbeat has not advanced for more than 5 minutes (VehicleOffline).", "short", 6, 4, anyIsBad,
			q{`count(` + heartbeatAge + ` > 300) or vector(0)`, "offline"})).
		WithPanel(st("Vehicles online", "Vehicles whose heartbeat advanced in the last 5 minutes; red when none.", "short", 6, 4,
			thresholds("red", step{1, "green"}),
			q{online + ` or vector(0)`, "online"})).
		WithPanel(st("Low battery", "Vehicles under 20% battery (VehicleLowBattery).", "short", 6, 4, anyIsBad,
			q{`count(max by (device_id) (vehicle_battery_level_ratio{` + devSel + `}) < 0.2) or vector(0)`, "vehicles"})).
		WithPanel(st("Failed missions, last hour", "Missions that ended in failure in the last hour.", "short", 6, 4,
			thresholds("green", step{1, "yellow"}, step{5, "red"}),
			q{`sum(increase(missions_total{` + devSel + `,status="failure"}[1h])) or vector(0)`, "failed"})).
		WithPanel(ts("Battery per vehicle", "Each vehicle's state of charge; VehicleLowBattery warns under 20%.", "percentunit", 12, 8,
			q{`max by (device_id) (vehicle_battery_level_ratio{` + devSel + `})`, "{{device_id}}"})).
		WithPanel(ts("Time since last heartbeat", "Seconds since each vehicle's heartbeat last advanced, remembered while it is away; VehicleOffline fires after 5 minutes.", "s", 12, 8,
			q{heartbeatAge, "{{device_id}}"}))
}

func engineering() *builder {
	return base("fieldcol-engineering", "fieldcol / Fleet engineering",
		"RED of the robots' applications per endpoint (http.server.request.duration): rate, errors, latency percentiles, refused credentials.", false).
		Refresh("15s").
		Time("now-3h", "now").
		WithPanel(ts("Request rate per endpoint", "HTTP requests per second each application serves, by route.", "reqps", 12, 8,
			q{`sum by (service_name, http_route) (rate(http_server_request_duration_seconds_count{` + devSel + `}` + rate + `))`, "{{service_name}} {{http_route}}"})).
		WithPanel(ts("Error rate per endpoint", "Share of requests answered 5xx, by route; HighErrorRate pages over 5% of a service's requests for 5 minutes.", "percentunit", 12, 8,
			q{`sum by (service_name, http_route) (rate(http_server_request_duration_seconds_count{` + devSel + `,http_response_status_code=~"5.."}` + rate + `)) / sum by (service_name, http_route) (rate(http_server_request_duration_seconds_count{` + devSel + `}` + rate + `))`, "{{service_name}} {{http_route}}"})).
		WithPanel(ts("Latency percentiles", "p50, p95 and p99 of the time to answer, by route.", "s", 12, 8,
			q{`histogram_quantile(0.5, sum by (service_name, http_route, le) (rate(http_server_request_duration_seconds_bucket{` + devSel + `}` + rate + `)))`, "p50 {{service_name}} {{http_route}}"},
			q{`histogram_quantile(0.95, sum by (service_name, http_route, le) (rate(http_server_request_duration_seconds_bucket{` + devSel + `}` + rate + `)))`, "p95 {{service_name}} {{http_route}}"},
			q{`histogram_quantile(0.99, sum by (service_name, http_route, le) (rate(http_server_request_duration_seconds_bucket{` + devSel + `}` + rate + `)))`, "p99 {{service_name}} {{http_route}}"})).
		WithPanel(ts("Responses by status code", "Requests per second by HTTP status code, over every application.", "reqps", 12, 8,
			q{`sum by (http_response_status_code) (rate(http_server_request_duration_seconds_count{` + devSel + `}` + rate + `))`, "{{http_response_status_code}}"})).
		WithPanel(ts("Refused credentials", "Requests per second refused for missing or wrong credentials: the applications' 401s and the command API's unauthorized commands; BruteForceAttempt warns over 20 in 5 minutes on one vehicle.", "reqps", 24, 8,
			q{`sum by (device_id, service_name) (rate(http_server_request_duration_seconds_count{` + devSel + `,http_response_status_code="401"}` + rate + `))`, "{{device_id}} {{service_name}}"},
			q{`sum by (device_id) (rate(controlloop_commands_total{` + devSel + `,result="unauthorized"}` + rate + `))`, "{{device_id}} command API"}))
}

func vehicle() *builder {
	return base("fieldcol-vehicle", "fieldcol / Vehicle",
		"One vehicle for the maintenance team: battery, heartbeat and data freshness, sensor status, errors and missions.", false).
		Refresh("10s").
		Time("now-1h", "now").
		WithPanel(st("Battery", "State of charge; VehicleLowBattery warns under 20%.", "percentunit", 6, 6,
			thresholds("red", step{0.2, "yellow"}, step{0.4, "green"}),
			q{`max by (device_id) (vehicle_battery_level_ratio{` + devSel + `})`, "{{device_id}}"})).
		WithPanel(st("Since last heartbeat", "Seconds since the heartbeat last advanced; yellow after a minute, red after 5 (VehicleOffline).", "s", 6, 6,
			thresholds("green", step{60, "yellow"}, step{300, "red"}),
			q{heartbeatAge, "{{device_id}}"})).
		WithPanel(st("Since last data", "Seconds since any data of the vehicle's edge reached Prometheus; red after 5 minutes (DeviceSilent).", "s", 6, 6,
			thresholds("green", step{60, "yellow"}, step{300, "red"}),
			q{`time() - device:last_seen:timestamp{` + devSel + `}`, "{{device_id}}"})).
		WithPanel(st("Missions failed, last hour", "Missions of this vehicle that ended in failure in the last hour.", "short", 6, 6,
			thresholds("green", step{1, "red"}),
			q{`sum by (device_id) (increase(missions_total{` + devSel + `,status="failure"}[1h])) or vector(0)`, "{{device_id}}"})).
		WithPanel(ts("Sensor status", "The vehicle's sensors and buses by state (ok, degraded, failed), as its hardware receiver reads them.", "short", 12, 8,
			q{`sum by (device_id, hw_state) (hw_status_ratio{` + devSel + `})`, "{{device_id}} {{hw_state}}"})).
		WithPanel(ts("Errors", "Errors per second: the applications' 5xx answers by route, and failed sensor reads by sensor and error type.", "reqps", 12, 8,
			q{`sum by (device_id, service_name, http_route) (rate(http_server_request_duration_seconds_count{` + devSel + `,http_response_status_code=~"5.."}` + rate + `))`, "{{device_id}} {{service_name}} {{http_route}}"},
			q{`sum by (device_id, hw_id, error_type) (rate(hw_errors_total{` + devSel + `}` + rate + `))`, "{{device_id}} {{hw_id}} {{error_type}}"})).
		WithPanel(ts("Battery", "State of charge over time.", "percentunit", 12, 8,
			q{`max by (device_id) (vehicle_battery_level_ratio{` + devSel + `})`, "{{device_id}}"})).
		WithPanel(ts("Missions", "Missions that ended in the hour before each point, by status.", "short", 12, 8,
			q{`sum by (device_id, status) (increase(missions_total{` + devSel + `}[1h]))`, "{{device_id}} {{status}}"}))
}
