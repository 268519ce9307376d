package controlloop

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/confmap"
	"go.opentelemetry.io/collector/confmap/confmaptest"

	"github.com/fieldcol/fieldcol/controlloop/internal/loop"
	"github.com/fieldcol/fieldcol/controlloop/internal/metadata"
	"github.com/fieldcol/fieldcol/controlloop/internal/onoff"
	"github.com/fieldcol/fieldcol/controlloop/internal/pid"
	"github.com/fieldcol/fieldcol/internal/hardware"
)

func loadConfig(t *testing.T, name string) *Config {
	t.Helper()
	cm, err := confmaptest.LoadConf(filepath.Join("testdata", "config.yaml"))
	require.NoError(t, err)
	cfg := NewFactory().CreateDefaultConfig()
	sub, err := cm.Sub(component.NewIDWithName(metadata.Type, name).String())
	require.NoError(t, err)
	require.NoError(t, sub.Unmarshal(cfg))
	return cfg.(*Config)
}

func TestLoadConfig(t *testing.T) {
	cfg := loadConfig(t, "")
	require.NoError(t, confmap.Validate(cfg))
	require.Len(t, cfg.Loops, 2)
	oven := cfg.Loops[0]
	assert.Equal(t, 100*time.Millisecond, oven.Period)
	assert.Equal(t, 0.0125, oven.Controller.PID.Ki)
	assert.Equal(t, time.Second, oven.Controller.PID.DerivativeFilter)
	assert.Equal(t, 0.5, oven.Setpoint.MaxRate)
	assert.Equal(t, 10*time.Minute, oven.Alarms[1].Delay)
	conv := cfg.Loops[1]
	assert.Equal(t, "motor_enable", conv.Output.Enable)
	assert.Equal(t, 200.0, conv.Controller.OnOff.Hysteresis)
	require.Len(t, conv.Interlocks, 2)
	assert.True(t, *conv.Interlocks[0].Level)
	assert.True(t, conv.Interlocks[0].Latch)
	assert.Equal(t, 85.0, *conv.Interlocks[1].Below)
	assert.True(t, cfg.API.Auth.HasValue())
	assert.Equal(t, 5.0, cfg.API.RateLimit.RequestsPerSecond)
	assert.Equal(t, 10.0, cfg.Hardware.Sim.TimeScale)
}

func TestDefaultConfig(t *testing.T) {
	cfg := createDefaultConfig()
	assert.Equal(t, "localhost:8090", cfg.API.NetAddr.Endpoint)
	assert.True(t, cfg.Watchdog.Enabled)
	assert.Equal(t, "/var/lib/fieldcol/controlloop/latches.json", cfg.LatchFile)
	require.ErrorContains(t, cfg.Validate(), "loops: at least one loop is required")
}

func TestConfigErrorsNameTheKey(t *testing.T) {
	tests := []struct {
		name string
		want []string
	}{
		{"no_loops", []string{"loops: at least one loop is required"}},
		{"bad_period", []string{"loops[0] (oven).period: must be between 10ms and 10s, got 1ms"}},
		{"bad_refs", []string{
			`loops[0] (oven).input.sensor: "h" is a duty_output; a loop input must be an analog or temperature sensor`,
			`loops[0] (oven).output.actuator: "t" is a mcp9808; it must be a duty_output or gpio_output`,
			"loops[0] (oven).controller: set exactly one of pid and onoff",
			"loops[0] (oven).setpoint.value: 500 is outside [setpoint.min, setpoint.max] = [0, 100]",
			`loops[0] (oven).interlocks[0]: below/above do not apply to the digital sensor "door"; use level`,
			`loops[0] (oven).interlocks[1].loop: "kiln" is not a loop`,
			`loops[0] (oven).alarms[0].name: "sensor_fault" is already used`,
		}},
		{"slow_sensor", []string{`loops[0] (oven).input.sensor: the read timeout of "t" (250ms) must be below the period (100ms)`}},
		{"slow_1wire", []string{`loops[0] (oven).period: 100ms is shorter than the 750ms conversion of 1-wire sensor "oven_temp" (DS18B20 at 12 bits; even at resolution: 9 a read takes up to 194ms (94ms conversion plus the bus): lengthen the period)`}},
		{"open_api", []string{`api.auth: required when api.endpoint ("0.0.0.0:8090") is not a loopback address`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := loadConfig(t, tt.name).Validate()
			require.Error(t, err)
			for _, w := range tt.want {
				assert.ErrorContains(t, err, w)
			}
		})
	}
}

func TestConfigMoreChecks(t *testing.T) {
	base := func() *Config { return plantConfig(t, latchPath(t)) }
	tests := []struct {
		name   string
		mutate func(*Config)
		want   string
	}{
		{"shared actuator", func(c *Config) { c.Loops[1].Output.Actuator = "heater_ssr" }, `output.actuator: "heater_ssr" is already driven by loops[0] (oven)`},
		{"duplicate loop", func(c *Config) { c.Loops[1].Name = "oven" }, `loops[1].name: "oven" is already used by loops[0]`},
		{"empty latch file", func(c *Config) { c.LatchFile = "" }, "latch_file: must be set"},
		{"bad rate limit", func(c *Config) { c.API.RateLimit.Burst = 0 }, "api.rate_limit.burst: must be at least 1"},
		{"bad mode", func(c *Config) { c.Loops[0].Mode = "cascade" }, "loops[0] (oven).mode:"},
		{"realtime priority", func(c *Config) { c.Realtime = true; c.RealtimePriority = 0 }, "realtime_priority: must be 1..99"},
		{"pid limits", func(c *Config) { c.Loops[0].Controller.PID.OutputMin = 2 }, "controller.pid.output_min (2) must be below output_max (1)"},
		{"pid gains", func(c *Config) { c.Loops[0].Controller.PID.Kp = -1 }, "controller.pid.kp must be a finite number >= 0"},
		{"self interlock", func(c *Config) {
			c.Loops[0].Interlocks = []InterlockConfig{{Name: "me", Loop: "oven", Below: ptr(1.0)}}
		}, "interlocks[0].loop: a loop cannot interlock on itself"},
		{"pid duty range", func(c *Config) { c.Loops[0].Controller.PID.OutputMax = 100 }, "output_min and output_max must lie in 0..1"},
		{"precise window", func(c *Config) { c.PreciseWindow = time.Second }, "precise_window: must be 0..10ms"},
		{"yield without a window", func(c *Config) { c.PreciseWindowYield, c.PreciseWindow = true, 0 }, "precise_window_yield: needs a precise_window of more than 0 and at most 8ms"},
		{"yield with a window too long", func(c *Config) { c.PreciseWindowYield, c.PreciseWindow = true, 9*time.Millisecond }, "precise_window_yield: needs a precise_window of more than 0 and at most 8ms"},
		{"speed", func(c *Config) { c.Loops[1].Output.Speed = 2 }, "output.speed: must be 0..1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := base()
			tt.mutate(c)
			require.ErrorContains(t, c.Validate(), tt.want)
		})
	}
	require.NoError(t, base().Validate())
}

// TestOneWireConfig: a w1_therm read blocks for the sensor's conversion, so a loop must
// have the time to make its 1-wire reads in a period.
func TestOneWireConfig(t *testing.T) {
	ds18b20 := func(c *Config, name string, res int) {
		for i := range c.Hardware.Devices {
			if d := &c.Hardware.Devices[i]; d.Name == name {
				*d = hardware.DeviceConfig{Name: name, Kind: hardware.KindDS18B20, ROM: "28-0000075b4a2f", Resolution: res}
			}
		}
		c.Hardware.Backend = hardware.BackendPeriph
	}
	addTank := func(c *Config, res int) {
		c.Hardware.Devices = append(c.Hardware.Devices, hardware.DeviceConfig{Name: "tank", Kind: hardware.KindDS18B20, ROM: "28-000000000002", Resolution: res})
	}
	base := func() *Config { return plantConfig(t, latchPath(t)) }
	tests := []struct {
		name   string
		mutate func(*Config)
		want   string // "" = valid
	}{
		{"12 bits in 100ms", func(c *Config) { ds18b20(c, "oven_temp", 0); c.Loops[0].Period = 100 * time.Millisecond },
			`loops[0] (oven).period: 100ms is shorter than the 750ms conversion of 1-wire sensor "oven_temp" (DS18B20 at 12 bits; even at resolution: 9 a read takes up to 194ms`},
		{"12 bits in 500ms", func(c *Config) { ds18b20(c, "oven_temp", 12); c.Loops[0].Period = 500 * time.Millisecond },
			`loops[0] (oven).period: 500ms is shorter than the 750ms conversion of 1-wire sensor "oven_temp" (DS18B20 at 12 bits; set resolution: 11 for 375ms or a longer period)`},
		{"9 bits in 200ms", func(c *Config) { ds18b20(c, "oven_temp", 9); c.Loops[0].Period = 200 * time.Millisecond }, ""},
		// The conversion fits, the bus time after it does not.
		{"9 bits in 100ms", func(c *Config) { ds18b20(c, "oven_temp", 9); c.Loops[0].Period = 100 * time.Millisecond },
			`loops[0] (oven).input.sensor: the read timeout of "oven_temp" (193.75ms) must be below the period (100ms) so that a hung bus trips the loop within one period; a 1-wire read takes its 94ms conversion (DS18B20 at 9 bits) and up to 100ms on the bus`},
		{"12 bits in 1s", func(c *Config) { ds18b20(c, "oven_temp", 0); c.Loops[0].Period = time.Second }, ""},
		{"an interlock sensor", func(c *Config) {
			addTank(c, 0)
			c.Hardware.Backend = hardware.BackendPeriph
			c.Hardware.Devices[0].Resolution, c.Loops[0].Period = 9, 50*time.Millisecond // the MCP9808 keeps up
			c.Loops[1].Period = 200 * time.Millisecond
			c.Loops[1].Interlocks = append(c.Loops[1].Interlocks, InterlockConfig{Name: "tank_cool", Sensor: "tank", Below: ptr(80.0)})
		}, `loops[1] (conveyor).period: 200ms is shorter than the 750ms conversion of 1-wire sensor "tank" (DS18B20 at 12 bits; set resolution: 9 for 94ms or a longer period)`},
		{"input and interlock one after the other", func(c *Config) {
			ds18b20(c, "oven_temp", 11)
			addTank(c, 11)
			c.Loops[0].Period = 700 * time.Millisecond
			c.Loops[0].Interlocks = []InterlockConfig{{Name: "tank_cool", Sensor: "tank", Below: ptr(90.0)}}
		}, `loops[0] (oven).period: 700ms is shorter than the 750ms the 1-wire sensors of one cycle take to convert, one after the other: "oven_temp" (input, DS18B20 at 11 bits: 375ms), "tank" (interlocks[0], DS18B20 at 11 bits: 375ms)`},
		{"stale_after inside the conversion", func(c *Config) {
			ds18b20(c, "oven_temp", 0)
			c.Loops[0].Period = time.Second
			c.Loops[0].Input.StaleAfter = 500 * time.Millisecond
		}, `loops[0] (oven).input.stale_after: 500ms is shorter than the 750ms conversion of 1-wire sensor "oven_temp" (DS18B20 at 12 bits), so every reading would be stale`},
		{"interlock stale_after inside the conversion", func(c *Config) {
			addTank(c, 10)
			c.Loops[1].Period = 500 * time.Millisecond
			c.Loops[1].Interlocks = append(c.Loops[1].Interlocks, InterlockConfig{Name: "tank_cool", Sensor: "tank", Below: ptr(80.0), StaleAfter: 100 * time.Millisecond})
		}, `loops[1] (conveyor).interlocks[1].stale_after: 100ms is shorter than the 188ms conversion of 1-wire sensor "tank" (DS18B20 at 10 bits)`},
		// An MCP9808 converts on its own; a faster loop acts on one reading several times.
		{"mcp9808 slower than the period", func(c *Config) {
			c.Hardware.Backend = hardware.BackendPeriph
			c.Loops[0].Period = 100 * time.Millisecond
		}, `loops[0] (oven).input.sensor: "oven_temp" (mcp9808 at 12 bits) converts every 250ms, more slowly than the period (100ms): the loop would act several times on one reading; set resolution: 10 (65ms) or a longer period`},
		{"mcp9808 at 10 bits keeps up", func(c *Config) {
			c.Hardware.Backend = hardware.BackendPeriph
			c.Hardware.Devices[0].Resolution, c.Loops[0].Period = 10, 100*time.Millisecond
		}, ""},
		// The sim reads at once, but the configuration is the one the Pi will run.
		{"sim too", func(c *Config) {
			c.Hardware.Devices[0] = hardware.DeviceConfig{Name: "oven_temp", Kind: hardware.KindDS18B20}
			c.Loops[0].Period = 100 * time.Millisecond
		}, `loops[0] (oven).period: 100ms is shorter than the 750ms conversion of 1-wire sensor "oven_temp"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := base()
			tt.mutate(c)
			err := c.Validate()
			if tt.want == "" {
				require.NoError(t, err)
				return
			}
			require.ErrorContains(t, err, tt.want)
			assert.NotContains(t, err.Error(), "\n", "one error for one cause")
		})
	}
}

func TestOwnsDevice(t *testing.T) {
	e := newExtension(plantConfig(t, latchPath(t)), settings())
	for _, d := range []string{"oven_temp", "heater_ssr", "motor_tach", "motor_speed", "motor_enable", "door_closed"} {
		assert.True(t, e.OwnsDevice(d), d)
	}
	assert.False(t, e.OwnsDevice("soc_temp"))
}

func TestDependenciesNameTheAuthenticator(t *testing.T) {
	cfg := plantConfig(t, latchPath(t))
	assert.Empty(t, newExtension(cfg, settings()).Dependencies())
	withAuth(cfg)
	assert.Equal(t, []component.ID{authID}, newExtension(cfg, settings()).Dependencies())
}

// TestSafetyConfig: validate cross-checks the safety configuration of a loop, naming the key.
func TestSafetyConfig(t *testing.T) {
	base := func() *Config { return plantConfig(t, latchPath(t)) }
	tests := []struct {
		name   string
		mutate func(*Config)
		want   string
	}{
		// The shipped config of the last release: setpoint.max 80 above high_limit 78.
		{"setpoint above the high limit", func(c *Config) { c.Loops[0].Setpoint.Max = 80; c.Loops[0].Setpoint.LimitMargin = 0 },
			"loops[0] (oven).setpoint.max: 80 is not at least setpoint.limit_margin (0) below alarms[0] (high_limit).limit = 78"},
		{"setpoint at the high limit", func(c *Config) { c.Loops[0].Setpoint.Max = 78; c.Loops[0].Setpoint.LimitMargin = 0 }, "lower setpoint.max below 78"},
		{"inside the limit but not the margin", func(c *Config) { c.Loops[0].Setpoint.LimitMargin = 5 }, "lower setpoint.max to 73 or less"},
		{"setpoint below a low alarm", func(c *Config) {
			c.Loops[0].Alarms = append(c.Loops[0].Alarms, AlarmConfig{Name: "too_cold", Type: "low", Limit: 5})
		}, "setpoint.min: 0 is not at least setpoint.limit_margin (3) above alarms[1] (too_cold).limit = 5"},
		{"a peer interlock below the setpoint range", func(c *Config) {
			c.Loops[1].Interlocks = append(c.Loops[1].Interlocks, InterlockConfig{Name: "oven_not_overheated", Loop: "oven", Below: ptr(70.0)})
		}, "setpoint.max: 75 is not at least setpoint.limit_margin (3) below loops[1].interlocks[1] (oven_not_overheated).below = 70"},
		{"an interlock on the loop's own sensor", func(c *Config) {
			c.Loops[0].Interlocks = []InterlockConfig{{Name: "not_frozen", Sensor: "oven_temp", Above: ptr(2.0)}}
		}, "loops[0] (oven).setpoint.min: 0 is not at least setpoint.limit_margin (3) above loops[0].interlocks[0] (not_frozen).above = 2"},
		{"negative margin", func(c *Config) { c.Loops[0].Setpoint.LimitMargin = -1 }, "setpoint.limit_margin: must not be negative"},
		{"safe state above output_max", func(c *Config) { c.Loops[0].Controller.PID.OutputMax = 0.5; c.Loops[0].Output.SafeState = 0.8 }, "output.safe_state: 0.8 is above controller.pid.output_max 0.5"},
		{"stuck window of one period", func(c *Config) { c.Loops[0].Input.Stuck.After = c.Loops[0].Period }, "input.stuck.after: 20ms is under 3 periods"},
		{"negative stuck tolerance", func(c *Config) { c.Loops[0].Input.Stuck.Tolerance = -1 }, "input.stuck.tolerance: must not be negative"},
		{"saturation window too short", func(c *Config) { c.Loops[0].Plausibility.SaturationTime = c.Loops[0].Period }, "plausibility.saturation_time: 20ms is under 10 periods"},
		{"zero response", func(c *Config) { c.Loops[0].Plausibility.MinResponse = ptr(0.0) }, "plausibility.min_response: must be a positive number"},
		{"negative interlock staleness", func(c *Config) { c.Loops[1].Interlocks[0].StaleAfter = -time.Second }, "interlocks[0].stale_after: must not be negative"},
		{"restart mode", func(c *Config) { c.Restart = "hot" }, `restart: "hot" is not one of warm, cold`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := base()
			tt.mutate(c)
			require.ErrorContains(t, c.Validate(), tt.want)
		})
	}

	// Defaults: on unless turned off explicitly, derived from the period.
	c := base()
	oven := &c.Loops[0]
	require.Equal(t, 10*time.Second, oven.stuckAfter(), "100 periods of 20ms are under the 10s floor")
	require.Equal(t, 30*time.Second, oven.saturationTime())
	require.InDelta(t, 1.7, oven.minResponse(), 1e-12, "1 % of the valid range -20..150")
	oven.Period = 500 * time.Millisecond
	require.Equal(t, 50*time.Second, oven.stuckAfter())
	require.Equal(t, 150*time.Second, oven.saturationTime())
	oven.Input.Stuck.Enabled, oven.Plausibility.Enabled = ptr(false), ptr(false)
	require.Zero(t, oven.stuckAfter())
	require.Zero(t, oven.saturationTime())
	var r RestartMode
	require.NoError(t, r.UnmarshalText([]byte("cold")))
	require.ErrorContains(t, r.UnmarshalText([]byte("Warm")), `"Warm" is not one of warm, cold`)
}

// TestEnumsRefusedWhileDecoding: an unknown value of an enum-like key fails the decode, and
// the error names the key.
func TestEnumsRefusedWhileDecoding(t *testing.T) {
	cm, err := confmaptest.LoadConf(filepath.Join("testdata", "config.yaml"))
	require.NoError(t, err)
	sub, err := cm.Sub(component.NewIDWithName(metadata.Type, "bad_enums").String())
	require.NoError(t, err)
	err = sub.Unmarshal(NewFactory().CreateDefaultConfig())
	require.Error(t, err)
	for _, want := range []string{
		`'restart' "hot" is not one of warm, cold`,
		`'loops[0].mode' "cascade" is not one of auto, manual, off`,
		`'loops[0].controller.onoff.action' "sideways" is not one of heating, cooling`,
		`'loops[0].alarms[0].type' "rate" is not one of high, low, deviation (sensor faults always raise the built-in sensor_fault alarm)`,
	} {
		assert.ErrorContains(t, err, want)
	}
}

// TestValidateChecksEnumsOfAConfigBuiltInCode: a configuration built in code is not
// decoded, so Validate checks the enum-like keys with the same words.
func TestValidateChecksEnumsOfAConfigBuiltInCode(t *testing.T) {
	c := plantConfig(t, latchPath(t))
	c.Restart = "hot"
	c.Loops[0].Mode = "cascade"
	c.Loops[0].Alarms[0].Type = "rate"
	c.Loops[1].Controller.OnOff.Action = "sideways"
	err := c.Validate()
	require.Error(t, err)
	for _, want := range []string{
		`restart: "hot" is not one of warm, cold`,
		`loops[0] (oven).mode: "cascade" is not one of auto, manual, off`,
		`loops[0] (oven).alarms[0].type: "rate" is not one of high, low, deviation`,
		`loops[1] (conveyor).controller.onoff.action: "sideways" is not one of heating, cooling`,
	} {
		assert.ErrorContains(t, err, want)
	}
}

// TestEnumValues: every accepted value decodes, the empty ones mean the documented
// default, and the mode names are the command API's.
func TestEnumValues(t *testing.T) {
	var a OnOffAction
	for text, want := range map[string]onoff.Action{"": onoff.Heating, "heating": onoff.Heating, "direct": onoff.Heating, "cooling": onoff.Cooling, "reverse": onoff.Cooling} {
		require.NoError(t, a.UnmarshalText([]byte(text)), text)
		assert.Equal(t, want, onOffActions[a], text)
	}
	a = ActionReverse
	require.ErrorContains(t, a.UnmarshalText([]byte("sideways")), `"sideways" is not one of heating, cooling`)
	assert.Equal(t, ActionReverse, a, "a refused value leaves the key as it was")

	var m LoopMode
	for text, want := range map[string]pid.Mode{"": pid.Auto, "auto": pid.Auto, "manual": pid.Manual, "off": pid.Off} {
		require.NoError(t, m.UnmarshalText([]byte(text)), text)
		assert.Equal(t, want, loopModes[m], text)
		if text != "" {
			assert.Equal(t, text, want.String(), "the API's name of the mode")
		}
	}
	require.Error(t, m.UnmarshalText([]byte("Auto")))

	var at AlarmType
	for text, want := range map[string]loop.AlarmKind{"high": loop.AlarmHigh, "low": loop.AlarmLow, "deviation": loop.AlarmDeviation} {
		require.NoError(t, at.UnmarshalText([]byte(text)), text)
		assert.Equal(t, want, alarmTypes[at], text)
	}
	require.Error(t, at.UnmarshalText(nil), "an alarm needs a type")
}

// TestEnumsReachTheLoops: the decoded values are what the loops start with.
func TestEnumsReachTheLoops(t *testing.T) {
	cfg := plantConfig(t, latchPath(t))
	cfg.Loops[0].Mode = ModeOff
	cfg.Loops[0].Alarms = append(cfg.Loops[0].Alarms, AlarmConfig{Name: "too_far", Type: AlarmDeviation, Limit: 20})
	cfg.Loops[1].Controller.OnOff.Action = ActionReverse
	cfg.Loops[1].Alarms = []AlarmConfig{{Name: "too_slow", Type: AlarmLow, Limit: -50}}
	s := start(t, cfg, nil)
	oven, conveyor := s.ext.byName["oven"], s.ext.byName["conveyor"]
	assert.Equal(t, pid.Off, oven.Mode())
	assert.Equal(t, pid.Auto, conveyor.Mode())
	kinds := func(l *loop.Loop) []loop.AlarmKind {
		var k []loop.AlarmKind
		for _, a := range l.Spec().Alarms {
			k = append(k, a.Kind)
		}
		return k
	}
	assert.Equal(t, []loop.AlarmKind{loop.AlarmHigh, loop.AlarmDeviation}, kinds(oven))
	assert.Equal(t, []loop.AlarmKind{loop.AlarmLow}, kinds(conveyor))
	assert.Equal(t, onoff.Cooling, conveyor.Spec().OnOff.Action)
	assert.Equal(t, -1.0, conveyor.Spec().Direction, "plausibility expects the value to fall when a cooling output is on")
}
