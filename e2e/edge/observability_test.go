package edge

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"
	"google.golang.org/grpc/codes"

	"github.com/fieldcol/fieldcol/alerts/contract"
	"github.com/fieldcol/fieldcol/dashboards"
	"github.com/fieldcol/fieldcol/e2e/internal/harness"
	"github.com/fieldcol/fieldcol/internal/faultfs"
	"github.com/fieldcol/fieldcol/internal/otlpsink"
	"github.com/fieldcol/fieldcol/internal/promtest"
)

// runbookBase is the runbook_url prefix of every shipped alert (alerts/README.md).
const runbookBase = "https://github.com/fieldcol/fieldcol/blob/main/alerts/runbooks/"

// failureOnlyMetrics are counters the collector creates at their first increment and that
// the sim edge cannot provoke: no exporter of the edge fails a send (the disk queue accepts
// even on a full disk, by its when_full policy; the prometheus exporter does not fail).
// Dashboards and rules read them for the gateway, where stores go down; the promtool cases
// cover the rule. Everything else a dashboard or rule reads must be present.
var failureOnlyMetrics = map[string]bool{
	"otelcol_exporter_send_failed_metric_points_total": true,
	"otelcol_exporter_send_failed_spans_total":         true,
	"otelcol_exporter_send_failed_log_records_total":   true,
	// Pushed by the backup job (deploy/backup), which this test does not run; the backup
	// e2e (e2e/drills/backup_test.go) shows them reaching the pipeline.
	"backup_last_success_seconds": true,
	"backup_runs_total":           true,
	// Reported only with the disk queue's device_endurance set (the shipped edge config
	// leaves it to the operator, who knows the card); TestWearView in the exporter covers it.
	"otelcol_exporter_diskqueue_device_life_projected_seconds": true,
}

// quietPanels show only failureOnlyMetrics, so they are empty on a healthy edge that runs
// no backup job.
var quietPanels = map[string]bool{
	"fieldcol / Pipeline and disk queue / Failed per exporter":      true,
	"fieldcol / Fleet overview / Time since last successful backup": true,
	"fieldcol / Fleet overview / Backup runs":                       true,
	"fieldcol / Pipeline and disk queue / Projected card life":      true,
}

// The edge on the sim plant feeds a real Prometheus loaded with the shipped rules and a
// real Alertmanager with the shipped routing. Commands and faults through the command API,
// a gateway that rejects for a moment and a disk that fills up give every panel something
// to show; then every
// panel's query must return data, every metric a dashboard or rule reads must be in
// Prometheus, and the alerts the faults raise must reach the pager and chat webhooks with
// their runbook_url.
func TestObservabilityDashboardsAndAlertsOnTheSimEdge(t *testing.T) {
	hook, hookURL := harness.StartWebhook(t)
	am := harness.StartShippedAlertmanager(t, hookURL)

	sink := otlpsink.Start(t)
	gateway := sink.ServeHTTP(t)
	// The disk queue lives on a FUSE file system that can report a full disk on demand, so
	// its write errors and the pipeline's failed exports are real, not assumed.
	disk := faultfs.MountT(t, "", faultfs.Options{})
	// The test sends its unauthorized burst and then goes on using the API from the same
	// address: the shipped auth_throttle would block it for a minute after five failures
	// (the throttle has its own tests), so it allows ten here.
	throttle := harness.Overlay(t, "extensions:\n  controlloop:\n    api:\n      auth_throttle:\n        max_failures: 10\n")
	edge := harness.StartCollector(t, harness.Binary(t, "fieldcol-edge"), []string{harness.Shipped("distributions/edge/config.yaml"), throttle},
		"FIELDCOL_HW_INTERVAL=1s", "FIELDCOL_SLO_EMIT_INTERVAL=2s", harness.GatewayAt(gateway), "FIELDCOL_DEVICE_ID=e2e-pi-1",
		"FIELDCOL_DISKQUEUE_DIR="+filepath.Join(disk.Dir(), "diskqueue"))
	prom := promtest.Start(t, promtest.Options{
		ScrapeTargets:    []string{edge.Metrics},
		RuleFiles:        harness.ShippedRuleFiles(t),
		AlertmanagerURLs: []string{am},
	})
	prom.WaitFor(t, `controlloop_safe_state{device_id="e2e-pi-1",loop="oven"} == 0`, 60*time.Second)

	// Commands: accepted, invalid (setpoint beyond the loop's max of 80), and more than
	// CommandsUnauthorizedRepeated's threshold of five without the token.
	status, answer := edge.Call(t, http.MethodPost, "/api/v1/commands", harness.APIToken, `{"command":"SET_TEMP_SETTINGS","loop":"oven","setpoint":62}`)
	require.Equal(t, http.StatusOK, status, "%v", answer)
	status, _ = edge.Call(t, http.MethodPost, "/api/v1/commands", harness.APIToken, `{"command":"SET_TEMP_SETTINGS","loop":"oven","setpoint":500}`)
	require.Equal(t, http.StatusBadRequest, status)
	unauthorized := func(n int) {
		t.Helper()
		for range n {
			status, _ := edge.Call(t, http.MethodPost, "/api/v1/commands", "", `{"command":"SET_MOTOR","loop":"conveyor","on":true}`)
			require.Equal(t, http.StatusUnauthorized, status)
		}
	}
	// increase() counts from a series' first sample, not from zero: let Prometheus see the
	// counter before the burst that must cross the threshold.
	unauthorized(1)
	prom.WaitFor(t, `controlloop_commands_total{device_id="e2e-pi-1",result="unauthorized"}`, 30*time.Second)
	unauthorized(6)

	// A motor driver that stops answering: actuator write errors; the conveyor latches
	// actuator_fault. A NaN oven sensor: sensor_fault latches and the oven goes safe.
	fault := func(body string) {
		t.Helper()
		status, answer := edge.Call(t, http.MethodPost, "/api/v1/sim/faults", harness.APIToken, body)
		require.Equal(t, http.StatusOK, status, "%s: %v", body, answer)
	}
	fault(`{"device":"motor_speed","kind":"disconnected"}`)
	fault(`{"device":"oven_temp","kind":"nan"}`)
	prom.WaitFor(t, `controlloop_actuator_errors_total{device_id="e2e-pi-1"} > 0`, 30*time.Second)
	prom.WaitFor(t, `controlloop_alarms_active{device_id="e2e-pi-1",loop="oven",alarm="sensor_fault",latched="true"} == 1`, 30*time.Second)
	fault(`{"device":"motor_speed","clear":true}`)
	fault(`{"device":"oven_temp","clear":true}`)

	// The gateway rejects what it is sent as invalid for a moment: the disk queue drops
	// those records (reason rejected), which pages as DiskQueueDropping; then it accepts.
	sink.Refuse(codes.InvalidArgument)
	// The counter is born at the first drop; the alert needs it to grow between two samples
	// (self-telemetry is pushed every 15s).
	prom.WaitFor(t, `increase(otelcol_exporter_diskqueue_dropped_total{device_id="e2e-pi-1",reason="rejected"}[1m]) > 0`, 90*time.Second)
	sink.Refuse(codes.OK)
	prom.WaitFor(t, `otelcol_exporter_diskqueue_send_last_success_seconds{device_id="e2e-pi-1"} > 0`, 60*time.Second)

	// The SD card fills up: the disk queue's writes fail with ENOSPC (it keeps accepting, by
	// its when_full policy, so no export fails); then space comes back.
	disk.SetFull(true)
	prom.WaitFor(t, `increase(otelcol_exporter_diskqueue_write_errors_total{device_id="e2e-pi-1",error_type="enospc"}[1m]) > 0`, 90*time.Second)
	disk.SetFull(false)

	t.Run("alerts reach Alertmanager's receivers with their runbook", func(t *testing.T) {
		for _, c := range []struct{ receiver, alert string }{
			{"pager", "ControlLoopAlarmLatched"},
			{"pager", "DiskQueueDropping"},
			{"pager", "DiskQueueWriteErrors"},
			{"chat", "CommandsUnauthorizedRepeated"},
		} {
			var got []map[string]string
			require.Eventually(t, func() bool {
				got = hook.Firing(c.receiver, c.alert)
				return len(got) > 0
			}, 90*time.Second, 500*time.Millisecond, "%s did not reach the %s receiver", c.alert, c.receiver)
			for _, a := range got {
				assert.Equal(t, runbookBase+c.alert+".md", a["annotation:runbook_url"], "%s", c.alert)
				assert.Equal(t, "e2e-pi-1", a["device_id"], "%s", c.alert)
				assert.NotEmpty(t, a["annotation:summary"], "%s", c.alert)
			}
			t.Logf("%s reached %s: %s", c.alert, c.receiver, got[0]["annotation:summary"])
		}
		// Both latches are in the same group (alertname, device_id); the first notification
		// may hold one of them, so the oven's is checked in Alertmanager, routed to the pager.
		assert.Eventually(t, func() bool {
			alerts, err := harness.AlertmanagerAlerts(am)
			if err != nil {
				return false
			}
			for _, a := range alerts {
				if a.Labels["alertname"] == "ControlLoopAlarmLatched" && a.Labels["loop"] == "oven" && a.Labels["alarm"] == "sensor_fault" {
					return len(a.Receiver) == 1 && a.Receiver[0].Name == "pager"
				}
			}
			return false
		}, 30*time.Second, 250*time.Millisecond, "the oven's latched sensor_fault is not in Alertmanager on its way to the pager")
		assert.Empty(t, hook.Firing("chat", "ControlLoopAlarmLatched"), "a critical alert must not go to chat")
	})

	t.Run("every metric of the dashboards and rules is in Prometheus", func(t *testing.T) {
		names := map[string]bool{}
		qs := edgeQueries(t)
		for _, q := range qs {
			for _, n := range contract.MetricNames(q.Expr) {
				names[n] = true
			}
		}
		for _, n := range ruleMetricNames(t) {
			names[n] = true
		}
		var missing []string
		present := 0
		for n := range names {
			if strings.Contains(n, ":") {
				continue // recorded by the rules under test, checked through the panels
			}
			if failureOnlyMetrics[n] {
				continue
			}
			if len(harness.QueryNow(t, prom, fmt.Sprintf(`count({__name__=%q})`, n))) == 0 {
				missing = append(missing, n)
				continue
			}
			present++
		}
		sort.Strings(missing)
		assert.Empty(t, missing, "read by a dashboard or rule but absent from Prometheus during the sim run")
		t.Logf("%d metrics read by dashboards and rules present; absent as expected on the edge: %v", present, failureOnlyMetrics)
	})

	t.Run("release markers: version and config hash", func(t *testing.T) {
		// One info series with the build's version and the effective config's hash, and
		// the first start counted as a change; the dashboards' annotation query runs (it
		// returns a marker only when a later start changes either: the unit tests in
		// controlloop/release_test.go cover that across restarts).
		info := harness.QueryNow(t, prom, `controlloop_release_info{device_id="e2e-pi-1"} == 1`)
		require.Len(t, info, 1, "one controlloop_release_info series")
		assert.NotEmpty(t, info[0].Labels["version"])
		assert.Regexp(t, `^[0-9a-f]{12}$`, info[0].Labels["config_hash"])
		changes := harness.QueryNow(t, prom, `controlloop_release_changes_total{device_id="e2e-pi-1"}`)
		require.Len(t, changes, 1)
		assert.GreaterOrEqual(t, changes[0].Value, 1.0)
		harness.QueryNow(t, prom, strings.ReplaceAll(dashboards.ReleaseMarkerExpr, "$device_id", ".*"))
		t.Logf("release: version %s, config %s, %v changes", info[0].Labels["version"], info[0].Labels["config_hash"], changes[0].Value)
	})

	t.Run("every panel returns data", func(t *testing.T) {
		qs := edgeQueries(t)
		vars := map[string]string{"device_id": ".*", "loop": ".*", "datasource": "prometheus"}
		// 5m covers the whole run, so counters that moved once (a command) still rate.
		withData, panels, emptyTargets := harness.PanelsWithData(t, prom, qs, vars, "5m")
		for p := range panels {
			if !withData[p] && !quietPanels[p] {
				assert.Fail(t, "panel returns no data", p)
			}
		}
		t.Logf("%d of %d panels return data (%d of %d queries); empty queries: %v", len(withData), len(panels), len(qs)-len(emptyTargets), len(qs), emptyTargets)
	})

	edge.Stop(t)
}

// fleetAppDashboards read what the robots' applications send, which the sim edge does
// not run: e2e/gateway's TestFleetTelemetryThroughEdgeAndGateway checks their panels.
var fleetAppDashboards = map[string]bool{
	"fieldcol / Fleet executive":   true,
	"fieldcol / Fleet operations":  true,
	"fieldcol / Fleet engineering": true,
	"fieldcol / Vehicle":           true,
}

// edgeQueries are the panel queries of the dashboards the sim edge feeds.
func edgeQueries(t *testing.T) []dashboards.PanelQuery {
	t.Helper()
	all, err := dashboards.Queries(harness.Shipped("dashboards/json"))
	require.NoError(t, err)
	var out []dashboards.PanelQuery
	for _, q := range all {
		if !fleetAppDashboards[q.Dashboard] {
			out = append(out, q)
		}
	}
	require.NotEmpty(t, out)
	return out
}

// ruleMetricNames returns the raw metric names the shipped rules read (alerts/rules and
// alerts/slo; alerts/rules/backup.yaml reads the backup tool's own series, which the edge alone does
// not produce, gateway.yaml the gateway tiers' own and vehicles.yaml the fleet apps':
// e2e/gateway's fleet test checks those).
func ruleMetricNames(t *testing.T) []string {
	t.Helper()
	all, err := filepath.Glob(harness.Shipped("alerts/rules/*.yaml"))
	require.NoError(t, err)
	var files []string
	for _, f := range all {
		if b := filepath.Base(f); b != "backup.yaml" && b != "gateway.yaml" && b != "vehicles.yaml" {
			files = append(files, f)
		}
	}
	files = append(files, harness.Shipped("alerts/slo/slo-rules.yaml"))
	var out []string
	for _, f := range files {
		raw, err := os.ReadFile(f)
		require.NoError(t, err)
		var rf struct {
			Groups []struct {
				Rules []struct {
					Expr string `yaml:"expr"`
				} `yaml:"rules"`
			} `yaml:"groups"`
		}
		require.NoError(t, yaml.Unmarshal(raw, &rf))
		for _, g := range rf.Groups {
			for _, r := range g.Rules {
				out = append(out, contract.MetricNames(r.Expr)...)
			}
		}
	}
	return out
}

// Alertmanager with the shipped routing and inhibit rules, fed alerts directly through its
// API: a critical tier mutes the warning of the same alert and device, an SLO page mutes
// its ticket (fleet-wide and per device and loop), critical and page go to the pager,
// warning to chat, info to nobody.
func TestAlertmanagerShippedRoutingAndInhibition(t *testing.T) {
	hook, hookURL := harness.StartWebhook(t)
	am := harness.StartShippedAlertmanager(t, hookURL)

	alert := func(labels map[string]string) map[string]any {
		return map[string]any{
			"labels":      labels,
			"annotations": map[string]string{"summary": "test", "runbook_url": runbookBase + labels["alertname"] + ".md"},
			"startsAt":    time.Now().Add(-time.Minute).UTC().Format(time.RFC3339),
		}
	}
	body, err := json.Marshal([]any{
		alert(map[string]string{"alertname": "SoCTemperatureHigh", "device_id": "pi-9", "hw_id": "thermal_zone0", "severity": "critical"}),
		alert(map[string]string{"alertname": "SoCTemperatureHigh", "device_id": "pi-9", "hw_id": "thermal_zone0", "severity": "warning"}),
		alert(map[string]string{"alertname": "SoCTemperatureHigh", "device_id": "pi-8", "hw_id": "thermal_zone0", "severity": "warning"}),
		alert(map[string]string{"alertname": "SLOErrorBudgetBurnPage", "slo": "controlloop-deadline", "severity": "page"}),
		alert(map[string]string{"alertname": "SLOErrorBudgetBurnTicket", "slo": "controlloop-deadline", "severity": "ticket"}),
		alert(map[string]string{"alertname": "DiskQueueFsyncSlow", "device_id": "pi-9", "severity": "info"}),
		alert(map[string]string{"alertname": "ControlLoopDeadlineBurnFast", "slo": "controlloop-deadline", "device_id": "pi-7", "loop": "oven", "severity": "critical"}),
		alert(map[string]string{"alertname": "ControlLoopDeadlineBurnSlow", "slo": "controlloop-deadline", "device_id": "pi-7", "loop": "oven", "severity": "warning"}),
		alert(map[string]string{"alertname": "ControlLoopDeadlineBurnSlow", "slo": "controlloop-deadline", "device_id": "pi-7", "loop": "conveyor", "severity": "warning"}),
	})
	require.NoError(t, err)
	resp, err := http.Post(am+"/api/v2/alerts", "application/json", bytes.NewReader(body))
	require.NoError(t, err)
	_ = resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)

	key := func(a harness.AMAlert) string {
		return a.Labels["alertname"] + "/" + a.Labels["device_id"] + "/" + a.Labels["loop"] + "/" + a.Labels["severity"]
	}
	got := harness.SettledAlerts(t, am, 9, 3)

	for _, a := range got {
		receivers := make([]string, 0, len(a.Receiver))
		for _, r := range a.Receiver {
			receivers = append(receivers, r.Name)
		}
		inhibited := len(a.Status.InhibitedBy) > 0
		switch key(a) {
		case "SoCTemperatureHigh/pi-9//warning", "SLOErrorBudgetBurnTicket///ticket", "ControlLoopDeadlineBurnSlow/pi-7/oven/warning":
			assert.True(t, inhibited, "%s must be inhibited", key(a))
		case "SoCTemperatureHigh/pi-8//warning", "ControlLoopDeadlineBurnSlow/pi-7/conveyor/warning":
			assert.False(t, inhibited, "a critical of another device or loop must not mute %s", key(a))
			assert.Equal(t, []string{"chat"}, receivers)
		case "SoCTemperatureHigh/pi-9//critical", "SLOErrorBudgetBurnPage///page", "ControlLoopDeadlineBurnFast/pi-7/oven/critical":
			assert.False(t, inhibited, "%s", key(a))
			assert.Equal(t, []string{"pager"}, receivers, "%s", key(a))
		case "DiskQueueFsyncSlow/pi-9//info":
			assert.Equal(t, []string{"null"}, receivers)
		default:
			assert.Fail(t, "unexpected alert", key(a))
		}
	}

	// The pager's webhook gets the critical and the page, each with its runbook.
	for _, name := range []string{"SoCTemperatureHigh", "SLOErrorBudgetBurnPage"} {
		require.Eventually(t, func() bool { return len(hook.Firing("pager", name)) > 0 }, 30*time.Second, 250*time.Millisecond, "%s did not page", name)
		for _, a := range hook.Firing("pager", name) {
			assert.Equal(t, runbookBase+name+".md", a["annotation:runbook_url"])
			assert.NotEqual(t, "warning", a["severity"], "an inhibited warning reached the pager")
		}
	}
}
