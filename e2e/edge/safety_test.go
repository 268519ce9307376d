package edge

import (
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/fieldcol/fieldcol/e2e/internal/harness"
)

// The findings of the safety-envelope issue (18), replayed on the built edge with the
// shipped config through the command API, as the operator who found them did. Each is now
// refused, detected or persisted; the time to the safe state is measured and logged.

// waitSafe polls the API until the loop reports its outputs safe and returns how long it took.
func waitSafe(t *testing.T, edge *harness.Collector, loop string, within time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	require.Eventually(t, func() bool {
		_, st := edge.Call(t, http.MethodGet, "/api/v1/loops/"+loop, harness.APIToken, "")
		return st["safe_state"] == true
	}, within, 10*time.Millisecond, "loop %s never went safe", loop)
	return time.Since(start)
}

func TestEdgeSafetyEnvelopeFindings(t *testing.T) {
	// output_max 0.5 in the config, as in the report.
	limited := harness.Overlay(t, `
extensions:
  controlloop:
    loops:
      - name: oven
        period: 100ms
        unit: Cel
        input: {sensor: oven_temp, valid_range: {min: -20, max: 150}, stale_after: 300ms}
        output: {actuator: heater_ssr, safe_state: 0}
        controller: {pid: {kp: 0.1, ki: 0.0125, kd: 0, output_min: 0, output_max: 0.5}}
        setpoint: {value: 60, min: 0, max: 75, max_rate: 0.5, limit_margin: 3}
        alarms: [{name: high_limit, type: high, limit: 78}]
      - name: conveyor
        period: 50ms
        unit: rpm
        input: {sensor: motor_tach, valid_range: {min: -100, max: 3500}}
        output: {actuator: motor_speed, enable: motor_enable, speed: 0.8, safe_state: 0}
        controller: {onoff: {hysteresis: 200}}
        setpoint: {value: 1500, min: 0, max: 3000}
        interlocks:
          - {name: door_closed, sensor: door_closed, level: true}
          - {name: oven_not_overheated, loop: oven, below: 85}
`)
	latch := filepath.Join(t.TempDir(), "latches.json")
	edge := harness.StartCollector(t, harness.Binary(t, "fieldcol-edge"), []string{harness.Shipped("distributions/edge/config.yaml"), limited},
		"FIELDCOL_LATCH_FILE="+latch)
	post := func(body string) (int, map[string]any) {
		return edge.Call(t, http.MethodPost, "/api/v1/commands", harness.APIToken, body)
	}

	// Manual mode keeps the configured output_max; the API reports it.
	code, ans := post(`{"command":"SET_MODE","loop":"oven","mode":"manual","output":1}`)
	assert.Equal(t, http.StatusBadRequest, code, "%v", ans)
	assert.Equal(t, "output", ans["field"])
	code, ans = post(`{"command":"SET_TEMP_SETTINGS","loop":"oven","output_max":1}`)
	assert.Equal(t, http.StatusBadRequest, code, "%v", ans)
	_, st := edge.Call(t, http.MethodGet, "/api/v1/loops/oven", harness.APIToken, "")
	assert.InDelta(t, 0.5, st["output_max"], 1e-12)

	// The ramp cannot be made faster than the configured 0.5/s.
	code, ans = post(`{"command":"SET_TEMP_SETTINGS","loop":"oven","max_rate":1e308}`)
	assert.Equal(t, http.StatusBadRequest, code, "%v", ans)
	assert.Equal(t, "max_rate", ans["field"])

	// A stuck oven sensor trips the loop with the shipped defaults. The oven is heating first.
	require.Eventually(t, func() bool {
		_, st := edge.Call(t, http.MethodGet, "/api/v1/loops/oven", harness.APIToken, "")
		return st["safe_state"] == false && st["state"] == "running"
	}, 30*time.Second, 50*time.Millisecond, "the oven never started heating")
	code, ans = edge.Call(t, http.MethodPost, "/api/v1/sim/faults", harness.APIToken, `{"device":"oven_temp","kind":"stuck"}`)
	require.Equal(t, http.StatusOK, code, "%v", ans)
	stuck := waitSafe(t, edge, "oven", 30*time.Second)
	t.Logf("stuck oven sensor: outputs safe %s after the fault (input.stuck.after defaults to 10s at a 100ms period)", stuck.Round(time.Millisecond))

	// While tripped, a command that would energize the heater is refused with 409 naming the latch.
	require.Eventually(t, func() bool {
		_, st := edge.Call(t, http.MethodGet, "/api/v1/loops/oven", harness.APIToken, "")
		return st["state"] == "tripped"
	}, 5*time.Second, 10*time.Millisecond)
	code, ans = post(`{"command":"SET_MODE","loop":"oven","mode":"manual","output":0.5}`)
	assert.Equal(t, http.StatusConflict, code, "%v", ans)
	assert.Contains(t, ans["error"], "sensor_fault")
	code, _ = edge.Call(t, http.MethodPost, "/api/v1/sim/faults", harness.APIToken, `{"device":"oven_temp","clear":true}`)
	require.Equal(t, http.StatusOK, code)
	require.Eventually(t, func() bool {
		code, _ := post(`{"command":"ACK_ALARM","loop":"oven"}`)
		return code == http.StatusOK
	}, 30*time.Second, 200*time.Millisecond)
	_, st = edge.Call(t, http.MethodGet, "/api/v1/loops/oven", harness.APIToken, "")
	assert.Equal(t, "auto", st["mode"], "the refused manual command was not kept for the re-arming")

	// A NaN reading: time to safe.
	code, _ = edge.Call(t, http.MethodPost, "/api/v1/sim/faults", harness.APIToken, `{"device":"oven_temp","kind":"nan","duration":"1s"}`)
	require.Equal(t, http.StatusOK, code)
	nan := waitSafe(t, edge, "oven", 5*time.Second)
	t.Logf("NaN oven reading: outputs safe %s after the fault (period 100ms)", nan.Round(time.Millisecond))

	// The operator switches the oven off; a kill -9 and a restart keep it off (warm restart).
	code, ans = post(`{"command":"SET_MODE","loop":"oven","mode":"off"}`)
	require.Equal(t, http.StatusOK, code, "%v", ans)
	edge.Proc.Kill()

	again := harness.StartCollector(t, harness.Binary(t, "fieldcol-edge"), []string{harness.Shipped("distributions/edge/config.yaml"), limited},
		"FIELDCOL_LATCH_FILE="+latch)
	_, st = again.Call(t, http.MethodGet, "/api/v1/loops/oven", harness.APIToken, "")
	assert.Equal(t, "off", st["mode"], "a loop the operator stopped stays stopped after a kill -9")
	unclean := regexp.MustCompile(`controlloop_restarts_total\{[^}]*clean="false"[^}]*\} 1\b`)
	var metrics string
	if !assert.Eventually(t, func() bool {
		metrics = harness.HTTPGet(t, "http://"+again.Metrics+"/metrics")
		return unclean.MatchString(metrics)
	}, 30*time.Second, 250*time.Millisecond, "the kill -9 is counted as an unclean stop") {
		t.Log(grepLines(metrics, "controlloop_restarts"))
	}
	again.Stop(t)
}

// The shipped setpoint range of the last release (max 80 over a 78 high limit) is refused
// by validate, naming the key.
func TestEdgeValidateRefusesSetpointPastTheHighLimit(t *testing.T) {
	bad := harness.Overlay(t, `
extensions:
  controlloop:
    loops:
      - name: oven
        period: 100ms
        input: {sensor: oven_temp, valid_range: {min: -20, max: 150}}
        output: {actuator: heater_ssr}
        controller: {pid: {kp: 0.1, ki: 0.0125}}
        setpoint: {value: 60, min: 0, max: 80}
        alarms: [{name: high_limit, type: high, limit: 78}]
`)
	cmd := exec.Command(harness.Binary(t, "fieldcol-edge"), "validate", "--config", harness.Shipped("distributions/edge/config.yaml"), "--config", bad)
	cmd.Env = append(cmd.Environ(), "FIELDCOL_API_TOKEN="+harness.APIToken)
	out, err := cmd.CombinedOutput()
	require.Error(t, err, "%s", out)
	assert.True(t, strings.Contains(string(out), "setpoint.max: 80"), "%s", out)
}

// grepLines returns the lines of text that contain s, for failure messages.
func grepLines(text, s string) string {
	var out []string
	for _, line := range strings.Split(text, "\n") {
		if strings.Contains(line, s) {
			out = append(out, line)
		}
	}
	return strings.Join(out, "\n")
}

// The validate subcommand reports a queue directory that cannot be used now (here on a
// read-only file system), naming it; a start does not check it and runs degraded instead.
func TestEdgeValidateReportsAnUnusableQueueDirectory(t *testing.T) {
	ro := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "ro,size=1m", "tmpfs", ro).CombinedOutput(); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("mount a read-only tmpfs: %v: %s", err, out)
		}
		t.Skipf("needs root to mount a read-only tmpfs: %v: %s", err, out)
	}
	t.Cleanup(func() { _ = exec.Command("umount", ro).Run() })

	validate := func(dir string) (string, error) {
		cmd := exec.Command(harness.Binary(t, "fieldcol-edge"), "validate", "--config", harness.Shipped("distributions/edge/config.yaml"))
		cmd.Env = append(cmd.Environ(), "FIELDCOL_API_TOKEN="+harness.APIToken, "FIELDCOL_DISKQUEUE_DIR="+dir)
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	out, err := validate(filepath.Join(t.TempDir(), "queue"))
	require.NoError(t, err, "a writable queue directory: %s", out)
	out, err = validate(filepath.Join(ro, "queue"))
	require.Error(t, err, "%s", out)
	assert.Contains(t, out, "read-only file system")
	assert.Contains(t, out, filepath.Join(ro, "queue"))
}
