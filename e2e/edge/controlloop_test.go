package edge

import (
	"net/http"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/fieldcol/fieldcol/e2e/internal/harness"
	"github.com/fieldcol/fieldcol/internal/promtest"
)

// The edge as `make run` starts it: both loops run on the sim plant and their telemetry and
// SLO reach Prometheus; a sensor fault injected through the API forces the oven safe and
// latches its alarm; ACK_ALARM after the fault returns it to auto; a command without the
// token is refused and counted.
func TestEdgeControlLoopFaultLatchAck(t *testing.T) {
	edge := harness.StartCollector(t, harness.Binary(t, "fieldcol-edge"), []string{harness.Shipped("distributions/edge/config.yaml")},
		"FIELDCOL_HW_INTERVAL=1s", "FIELDCOL_SLO_EMIT_INTERVAL=2s")
	prom := promtest.Start(t, promtest.Options{ScrapeTargets: []string{edge.Metrics}})

	for _, series := range []string{
		`controlloop_cycles_total{loop="oven",outcome="ok"}`,
		`controlloop_cycle_lateness_seconds_bucket{loop="conveyor"}`,
		`controlloop_process_value{loop="oven"}`,
		`controlloop_setpoint{loop="oven"}`,
		`controlloop_safe_state{loop="oven"}`,
		`slo_burn_rate{slo="controlloop-deadline",loop="oven",window="5m"}`,
		`slo_error_budget_remaining{slo="controlloop-deadline",loop="oven"}`,
	} {
		prom.WaitFor(t, series, 60*time.Second)
	}
	value := prom.Value
	ovenSafe := `controlloop_safe_state{loop="oven"}`
	require.Eventually(t, func() bool { return value(ovenSafe) == 0 }, 30*time.Second, 250*time.Millisecond,
		"the oven does not leave its start-up safe state")

	status, _ := edge.Call(t, http.MethodPost, "/api/v1/sim/faults", "", `{"device":"oven_temp","kind":"nan"}`)
	assert.Equal(t, http.StatusUnauthorized, status, "a command without the token is refused")
	status, _ = edge.Call(t, http.MethodPost, "/api/v1/sim/faults", "wrong-token", `{"device":"oven_temp","kind":"nan"}`)
	assert.Equal(t, http.StatusUnauthorized, status)

	status, answer := edge.Call(t, http.MethodPost, "/api/v1/sim/faults", harness.APIToken, `{"device":"oven_temp","kind":"nan"}`)
	require.Equal(t, http.StatusOK, status, "injecting a fault: %v", answer)

	// Within one period the API shows the oven tripped; Prometheus sees it at the next scrape.
	require.Eventually(t, func() bool {
		_, loop := edge.Call(t, http.MethodGet, "/api/v1/loops/oven", harness.APIToken, "")
		return loop["state"] == "sensor_fault" || loop["state"] == "tripped"
	}, 5*time.Second, 20*time.Millisecond, "the oven did not trip on a NaN reading")
	require.Eventually(t, func() bool { return value(ovenSafe) == 1 }, 20*time.Second, 250*time.Millisecond)
	assert.Eventually(t, func() bool {
		return value(`controlloop_alarms_active{loop="oven",alarm="sensor_fault",latched="true"}`) == 1
	}, 20*time.Second, 250*time.Millisecond, "sensor_fault not latched")

	// ACK while the fault is still there is refused, and the loop stays safe.
	status, _ = edge.Call(t, http.MethodPost, "/api/v1/commands", harness.APIToken, `{"command":"ACK_ALARM","loop":"oven"}`)
	assert.Equal(t, http.StatusConflict, status)

	status, _ = edge.Call(t, http.MethodPost, "/api/v1/sim/faults", harness.APIToken, `{"device":"oven_temp","clear":true}`)
	require.Equal(t, http.StatusOK, status)
	// The latch holds after the fault is gone, until ACK_ALARM.
	_, loop := edge.Call(t, http.MethodGet, "/api/v1/loops/oven", harness.APIToken, "")
	assert.NotEqual(t, "running", loop["state"], "a latched alarm must hold the loop safe until acknowledged")

	require.Eventually(t, func() bool {
		status, _ := edge.Call(t, http.MethodPost, "/api/v1/commands", harness.APIToken, `{"command":"ACK_ALARM","loop":"oven"}`)
		return status == http.StatusOK
	}, 10*time.Second, 500*time.Millisecond, "ACK_ALARM was not accepted after the fault cleared")
	require.Eventually(t, func() bool {
		_, loop := edge.Call(t, http.MethodGet, "/api/v1/loops/oven", harness.APIToken, "")
		return loop["state"] == "running" && loop["mode"] == "auto"
	}, 5*time.Second, 50*time.Millisecond, "the oven did not return to auto")
	require.Eventually(t, func() bool { return value(ovenSafe) == 0 }, 20*time.Second, 250*time.Millisecond)
	assert.Eventually(t, func() bool {
		return value(`controlloop_alarms_active{loop="oven",alarm="sensor_fault",latched="true"}`) == 0
	}, 20*time.Second, 250*time.Millisecond, "the acknowledged latch still reads 1, so its alert would keep firing")

	assert.Eventually(t, func() bool {
		return value(`sum(controlloop_commands_total{result="unauthorized"})`) >= 2
	}, 20*time.Second, 250*time.Millisecond, "unauthorized commands are counted")

	edge.Stop(t)
}

// A stalled edge (SIGSTOP, as a starved or frozen Pi) misses control-loop deadlines; the
// skipped cycles burn the deadline SLO's budget fast enough to page locally. The edge has just
// started without stored state, so its windows are only partly covered: a page must be earned
// by what was seen (error ratio x coverage > 14.4 x budget), not by a near-empty window. With
// minute-scale windows (2m long, 1m short) that takes more than 14.4 x 0.5% x 120 s = 8.6 s of
// missed cycles; the stall lasts 12 s. The workbook's 1h window would need 4.3 minutes.
func TestEdgeMissedDeadlinesPageTheDeadlineSLO(t *testing.T) {
	overlay := harness.Overlay(t, `
processors:
  sloburn:
    slos:
      - name: controlloop-deadline
        objective: 0.995
        total: 'controlloop.cycles'
        bad: 'controlloop.cycles{outcome=~"overrun|skipped"}'
        group_by: [loop, service.name, host.name, device.id]
        alerts:
          - {severity: page, long_window: 2m, short_window: 1m, factor: 14.4}
`)
	edge := harness.StartCollector(t, harness.Binary(t, "fieldcol-edge"), []string{harness.Shipped("distributions/edge/config.yaml"), overlay},
		"FIELDCOL_HW_INTERVAL=1s", "FIELDCOL_SLO_EMIT_INTERVAL=2s")
	prom := promtest.Start(t, promtest.Options{ScrapeTargets: []string{edge.Metrics}})
	page := `slo_alert{slo="controlloop-deadline",loop="oven",severity="page"}`
	prom.WaitFor(t, page, 60*time.Second)
	require.Equal(t, 0.0, prom.Value(page), "a healthy loop must not page")
	assert.Less(t, prom.Value(`slo_window_coverage{slo="controlloop-deadline",loop="oven",window="2m"}`), 1.0,
		"just started without stored state: the 2m window is not covered yet")

	require.NoError(t, edge.Proc.Signal(syscall.SIGSTOP))
	time.Sleep(12 * time.Second) // the stall itself, not a wait for a condition
	require.NoError(t, edge.Proc.Signal(syscall.SIGCONT))

	assert.Eventually(t, func() bool {
		return prom.Value(`sum(controlloop_cycles_total{loop="oven",outcome=~"overrun|skipped"})`) >= 20
	},
		30*time.Second, 250*time.Millisecond, "the stall was not counted as missed cycles")
	assert.Eventually(t, func() bool {
		return prom.Value(`slo_burn_rate{slo="controlloop-deadline",loop="oven",window="1m"}`) > 14.4 &&
			prom.Value(`slo_burn_rate{slo="controlloop-deadline",loop="oven",window="2m"}`) > 14.4 &&
			prom.Value(page) == 1
	}, 30*time.Second, 250*time.Millisecond, "burn 1m=%v 2m=%v page=%v",
		prom.Value(`slo_burn_rate{slo="controlloop-deadline",loop="oven",window="1m"}`),
		prom.Value(`slo_burn_rate{slo="controlloop-deadline",loop="oven",window="2m"}`), prom.Value(page))
	edge.Stop(t)
}
