package edge

import (
	"bytes"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/fieldcol/fieldcol/e2e/internal/harness"
)

// safeOutputs runs `<bin> safe-outputs --config=<config>` as the unit's ExecStopPost does,
// with env as the only FIELDCOL_* variables, and returns its output and exit error.
func safeOutputs(t *testing.T, bin, config string, env ...string) (stdout, stderr string, err error) {
	t.Helper()
	cmd := exec.Command(bin, "safe-outputs", "--config="+config)
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "FIELDCOL_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, env...)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err = cmd.Run()
	return out.String(), errOut.String(), err
}

// edgeActuators are the lines safe-outputs prints for the shipped edge config: the loops'
// actuators and enable pin, and no sensor.
var edgeActuators = []string{
	`controlloop: loop "oven": heater_ssr (duty_output, output.actuator) driven safe: duty 0`,
	`controlloop: loop "conveyor": motor_speed (duty_output, output.actuator) driven safe: duty 0`,
	`controlloop: loop "conveyor": motor_enable (gpio_output, output.enable) driven safe: off`,
}

func assertEdgeDriven(t *testing.T, stdout string) {
	t.Helper()
	lines := strings.Split(stdout, "\n")
	for _, l := range edgeActuators {
		assert.Contains(t, lines, l)
	}
	assert.Contains(t, lines, "3 of 3 actuators driven safe")
	// On sim the plant is the collector's own: the command says it changes nothing there.
	assert.Contains(t, stdout, "backend sim: the simulated plant lives inside the collector's process")
	for _, sensor := range []string{"oven_temp", "motor_tach", "door_closed", "room_temp", "flow"} {
		assert.NotContains(t, stdout, sensor)
	}
}

func TestSafeOutputsShippedConfigs(t *testing.T) {
	stdout, stderr, err := safeOutputs(t, harness.Binary(t, "fieldcol-edge"), harness.Shipped("distributions/edge/config.yaml"), harness.CommonEnv(t)...)
	require.NoError(t, err, "stdout:\n%s\nstderr:\n%s", stdout, stderr)
	assertEdgeDriven(t, stdout)
	assert.Empty(t, stderr)

	// Without the optional environment file the token is unset: a warning, not a failure.
	stdout, stderr, err = safeOutputs(t, harness.Binary(t, "fieldcol-edge"), harness.Shipped("distributions/edge/config.yaml"))
	require.NoError(t, err, "stdout:\n%s\nstderr:\n%s", stdout, stderr)
	assertEdgeDriven(t, stdout)
	assert.Contains(t, stderr, "FIELDCOL_API_TOKEN")

	stdout, stderr, err = safeOutputs(t, harness.Binary(t, "fieldcol-gateway"), harness.Shipped("distributions/gateway/config.yaml"))
	require.NoError(t, err, "stdout:\n%s\nstderr:\n%s", stdout, stderr)
	assert.Equal(t, "nothing to drive: the configuration has no controlloop extension with a loop\n", stdout)
}

// The sequence systemd runs after a crash: the collector dies of SIGKILL, then ExecStopPost
// runs safe-outputs with the unit's environment. The time from the kill to safe-outputs
// having written and closed every actuator is what the README quotes.
func TestSafeOutputsAfterKill(t *testing.T) {
	bin := harness.Binary(t, "fieldcol-edge")
	env := harness.CommonEnv(t)
	c := harness.StartCollector(t, bin, []string{harness.Shipped("distributions/edge/config.yaml")}, env...)
	killed := time.Now()
	c.Proc.Kill()
	stdout, stderr, err := safeOutputs(t, bin, harness.Shipped("distributions/edge/config.yaml"),
		append(env, "SERVICE_RESULT=signal", "EXIT_CODE=killed", "EXIT_STATUS=KILL")...)
	took := time.Since(killed)
	require.NoError(t, err, "stdout:\n%s\nstderr:\n%s", stdout, stderr)
	assert.True(t, strings.HasPrefix(stdout, "after the service ended: SERVICE_RESULT=signal EXIT_CODE=killed EXIT_STATUS=KILL\n"), stdout)
	assertEdgeDriven(t, stdout)
	t.Logf("kill -9 to every actuator driven safe (reaping the collector, then safe-outputs): %s", took)
	assert.Less(t, took, 5*time.Second)
}
