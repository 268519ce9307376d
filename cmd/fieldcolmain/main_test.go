package fieldcolmain

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/confmap"
	"go.opentelemetry.io/collector/confmap/provider/envprovider"
	"go.opentelemetry.io/collector/confmap/provider/fileprovider"
	"go.opentelemetry.io/collector/confmap/provider/yamlprovider"
	"go.opentelemetry.io/collector/otelcol"

	"github.com/fieldcol/fieldcol/internal/hardware/backends"
	"github.com/fieldcol/fieldcol/providers/hostprovider"
)

// edgeSettings are the settings the generated main of fieldcol-edge passes: its config
// providers, no default scheme (the collector's command sets env).
func edgeSettings() otelcol.CollectorSettings {
	return otelcol.CollectorSettings{
		BuildInfo: component.BuildInfo{Command: "fieldcol-edge"},
		ConfigProviderSettings: otelcol.ConfigProviderSettings{ResolverSettings: confmap.ResolverSettings{
			ProviderFactories: []confmap.ProviderFactory{
				envprovider.NewFactory(), fileprovider.NewFactory(), yamlprovider.NewFactory(), hostprovider.NewFactory(),
			},
		}},
	}
}

type result struct {
	err            error
	stdout, stderr string
	ran            bool
}

func runMain(t *testing.T, args ...string) result {
	t.Helper()
	var out, errOut bytes.Buffer
	var r result
	run := func(otelcol.CollectorSettings) error {
		r.ran = true
		return errors.New("collector ran")
	}
	r.err = dispatch(args, edgeSettings(), run, backends.NewRegistry(nil), &out, &errOut)
	r.stdout, r.stderr = out.String(), errOut.String()
	return r
}

func writeFile(t *testing.T, name, text string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	require.NoError(t, os.WriteFile(p, []byte(text), 0o600))
	return p
}

func TestMainRunsTheCollectorOtherwise(t *testing.T) {
	for _, args := range [][]string{nil, {"--config=x.yaml"}, {"validate", "--config=x.yaml"}, {"--config", "safe-outputs"}} {
		r := runMain(t, args...)
		assert.True(t, r.ran, "%q", args)
		assert.EqualError(t, r.err, "collector ran")
	}
	r := runMain(t, "safe-outputs", "--config=yaml:receivers: {}")
	assert.False(t, r.ran, "safe-outputs never starts the collector")
	assert.NoError(t, r.err)
}

// The loop config of a small PLC on the sim backend; the heater's name comes from the
// environment, as the shipped config takes its values.
const plc = `
extensions:
  bearertokenauth/api:
    token: ${env:FCT_SAFE_UNSET_TOKEN}
  controlloop:
    hardware:
      backend: sim
      devices:
        - {name: oven_temp, kind: mcp9808}
        - {name: "${env:FCT_SAFE_HEATER}", kind: duty_output, signal: heater}
        - {name: motor_tach, kind: ads1115, signal: motor_tach}
        - {name: motor_speed, kind: duty_output, signal: motor_speed}
        - {name: motor_enable, kind: gpio_output, signal: motor_enable}
    loops:
      - name: oven
        input: {sensor: oven_temp}
        output: {actuator: "${env:FCT_SAFE_HEATER}", safe_state: 0}
`

// A second --config adds the conveyor loop, merged as the collector merges.
const conveyor = `
extensions:
  controlloop:
    loops:
      - name: oven
        input: {sensor: oven_temp}
        output: {actuator: "${env:FCT_SAFE_HEATER}", safe_state: 0}
      - name: conveyor
        input: {sensor: motor_tach}
        output: {actuator: motor_speed, enable: motor_enable, enable_safe_state: "${FCT_SAFE_ENABLE_SAFE}"}
`

func TestSafeOutputs(t *testing.T) {
	t.Setenv("FCT_SAFE_HEATER", "heater_ssr")
	t.Setenv("FCT_SAFE_ENABLE_SAFE", "false")
	t.Setenv("SERVICE_RESULT", "signal")
	t.Setenv("EXIT_CODE", "killed")
	t.Setenv("EXIT_STATUS", "KILL")
	base := writeFile(t, "config.yaml", plc)

	r := runMain(t, "safe-outputs", "--config="+base)
	require.NoError(t, r.err, r.stderr)
	assert.Equal(t, "after the service ended: SERVICE_RESULT=signal EXIT_CODE=killed EXIT_STATUS=KILL\n"+
		`controlloop: loop "oven": heater_ssr (duty_output, output.actuator) driven safe: duty 0`+"\n"+
		"backend sim: the simulated plant lives inside the collector's process; these writes went to a fresh plant of this process and change nothing\n"+
		"1 of 1 actuators driven safe\n", r.stdout)
	assert.Contains(t, r.stderr, "FCT_SAFE_UNSET_TOKEN", "an unset variable is warned about, as the collector does, and does not stop the command")

	r = runMain(t, "safe-outputs", "--config", base, "--config=file:"+writeFile(t, "conveyor.yaml", conveyor))
	require.NoError(t, r.err, r.stderr)
	for _, line := range []string{
		`controlloop: loop "oven": heater_ssr (duty_output, output.actuator) driven safe: duty 0`,
		`controlloop: loop "conveyor": motor_speed (duty_output, output.actuator) driven safe: duty 0`,
		`controlloop: loop "conveyor": motor_enable (gpio_output, output.enable) driven safe: off`,
		"3 of 3 actuators driven safe",
	} {
		assert.Contains(t, strings.Split(r.stdout, "\n"), line)
	}
}

// The shipped configs as they are: the edge's three actuators, nothing for the gateway.
func TestSafeOutputsShippedConfigs(t *testing.T) {
	t.Setenv("FIELDCOL_API_TOKEN", "t")
	r := runMain(t, "safe-outputs", "--config=../../distributions/edge/config.yaml")
	require.NoError(t, r.err, r.stderr)
	assert.Contains(t, r.stdout, `controlloop: loop "oven": heater_ssr (duty_output, output.actuator) driven safe: duty 0`)
	assert.Contains(t, r.stdout, `controlloop: loop "conveyor": motor_speed (duty_output, output.actuator) driven safe: duty 0`)
	assert.Contains(t, r.stdout, `controlloop: loop "conveyor": motor_enable (gpio_output, output.enable) driven safe: off`)
	assert.Contains(t, r.stdout, "3 of 3 actuators driven safe")
	assert.NotContains(t, r.stdout, "door_closed")
	assert.NotContains(t, r.stdout, "oven_temp")
	assert.Empty(t, r.stderr)

	r = runMain(t, "safe-outputs", "--config=../../distributions/gateway/config.yaml")
	require.NoError(t, r.err, r.stderr)
	assert.Equal(t, "nothing to drive: the configuration has no controlloop extension with a loop\n", r.stdout)
}

func TestSafeOutputsFails(t *testing.T) {
	t.Setenv("FCT_SAFE_HEATER", "heater_ssr")
	t.Setenv("FCT_SAFE_ENABLE_SAFE", "false")
	// The oven's actuator names its sensor: refused, and the conveyor still goes safe.
	broken := strings.Replace(conveyor, "output: {actuator: \"${env:FCT_SAFE_HEATER}\"", "output: {actuator: oven_temp", 1)
	r := runMain(t, "safe-outputs", "--config="+writeFile(t, "config.yaml", plc), "--config="+writeFile(t, "broken.yaml", broken))
	require.Error(t, r.err)
	assert.True(t, strings.HasSuffix(r.stderr, "\n"+`fieldcol-edge safe-outputs: controlloop: loop "oven": output.actuator "oven_temp": is a mcp9808, not a duty_output or gpio_output; not opened`+"\n"), r.stderr)
	assert.Contains(t, r.stdout, "motor_enable (gpio_output, output.enable) driven safe: off")
	assert.Contains(t, r.stdout, "2 of 3 actuators driven safe")

	for name, tc := range map[string]struct {
		args []string
		want string
	}{
		"no config":      {nil, "at least one --config is required"},
		"missing file":   {[]string{"--config=/nonexistent/fieldcol.yaml"}, "reading --config /nonexistent/fieldcol.yaml: "},
		"stray argument": {[]string{"--config=x.yaml", "now"}, `unexpected argument "now"`},
		"unknown flag":   {[]string{"--set=a=b"}, "flag provided but not defined: -set"},
		"bad section": {[]string{"--config=yaml:extensions::controlloop::loops: 3"},
			"extensions::controlloop: cannot read its actuators"},
	} {
		t.Run(name, func(t *testing.T) {
			r := runMain(t, append([]string{"safe-outputs"}, tc.args...)...)
			require.Error(t, r.err)
			assert.Contains(t, r.err.Error(), tc.want)
			assert.Contains(t, r.stderr, "fieldcol-edge safe-outputs: ")
			assert.False(t, r.ran)
		})
	}
}

// TestMainLinkTimeVersion: the version scripts/dist.sh links in replaces the manifest's,
// and a build without one keeps the manifest's.
func TestMainLinkTimeVersion(t *testing.T) {
	oldArgs, oldVersion := os.Args, version
	t.Cleanup(func() { os.Args, version = oldArgs, oldVersion })
	os.Args = []string{"fieldcol-edge", "--version"}
	tests := []struct{ linked, want string }{
		{"", "0.1.0"},
		{"0.1.0+git20261206.d8ed014", "0.1.0+git20261206.d8ed014"},
	}
	for _, tt := range tests {
		version = tt.linked
		set := edgeSettings()
		set.BuildInfo.Version = "0.1.0"
		var got string
		require.NoError(t, Main(set, func(s otelcol.CollectorSettings) error {
			got = s.BuildInfo.Version
			return nil
		}))
		assert.Equal(t, tt.want, got)
	}
}
