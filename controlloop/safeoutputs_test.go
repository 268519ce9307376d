package controlloop

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/confmap"
	"periph.io/x/conn/v3/gpio"
	"periph.io/x/conn/v3/gpio/gpioreg"
	"periph.io/x/conn/v3/gpio/gpiotest"

	"github.com/fieldcol/fieldcol/internal/hardware"
	"github.com/fieldcol/fieldcol/internal/hardware/backends"
	"github.com/fieldcol/fieldcol/internal/hardware/periph"
	"github.com/fieldcol/fieldcol/internal/hardware/sim"
)

// collectorConf is a whole collector configuration holding the given extensions, as
// safe-outputs reads it from --config.
func collectorConf(t *testing.T, exts map[string]*Config) *confmap.Conf {
	t.Helper()
	m := map[string]any{}
	for id, cfg := range exts {
		c := confmap.New()
		require.NoError(t, c.Marshal(cfg))
		m[id] = c.ToStringMap()
	}
	return confmap.NewFromStringMap(map[string]any{
		"extensions": m,
		"service":    map[string]any{"extensions": []any{"controlloop"}},
	})
}

// driven is what a test compares: which device was driven to what, and whether it failed.
type driven struct {
	Device string
	Value  float64
	Failed bool
}

func summary(ws []SafeWrite) []driven {
	out := make([]driven, 0, len(ws))
	for _, w := range ws {
		out = append(out, driven{w.Device, w.Value, w.Err != nil})
	}
	return out
}

// The edge's actuators, left energized by a collector that was killed without closing its
// session, are driven safe from the same registry; the session left open is the crashed
// process's, so the sim plant it drives stays up and shows the result.
func TestDriveSafeAfterCrash(t *testing.T) {
	cfg := plantConfig(t, filepath.Join(t.TempDir(), "latches.json"))
	reg := backends.NewRegistry(nil)
	crashed, err := reg.Open(cfg.Hardware, hardware.Settings{})
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, crashed.Close()) })
	ctx := context.Background()
	for _, name := range []string{"heater_ssr", "motor_speed"} {
		d, err := crashed.DutyOutput(name)
		require.NoError(t, err)
		require.NoError(t, d.WriteDuty(ctx, 1))
	}
	en, err := crashed.DigitalOutput("motor_enable")
	require.NoError(t, err)
	require.NoError(t, en.WriteLevel(ctx, true))
	pl := sim.Plant(crashed)
	require.Equal(t, 1.0, pl.HeaterDuty())
	require.True(t, pl.MotorEnabled())
	require.Equal(t, 1.0, pl.MotorCommand())

	writes, err := DriveSafe(ctx, collectorConf(t, map[string]*Config{"controlloop": cfg}), reg, nil)
	require.NoError(t, err)
	assert.Equal(t, []driven{{"heater_ssr", 0, false}, {"motor_speed", 0, false}, {"motor_enable", 0, false}}, summary(writes))
	for _, w := range writes {
		assert.Equal(t, "controlloop", w.Extension.String())
		assert.Equal(t, hardware.BackendSim, w.Backend)
	}
	assert.Equal(t, []string{"oven", "conveyor", "conveyor"}, []string{writes[0].Loop, writes[1].Loop, writes[2].Loop})
	assert.Equal(t, []string{"output.actuator", "output.actuator", "output.enable"}, []string{writes[0].Key, writes[1].Key, writes[2].Key})
	assert.Equal(t, 0.0, pl.HeaterDuty())
	assert.False(t, pl.MotorEnabled())
	assert.Equal(t, 0.0, pl.MotorCommand())
}

// A sensor that cannot be opened (here: one that is not even a valid device) does not keep
// the actuators from going safe, because DriveSafe never opens a sensor.
func TestDriveSafeNeverOpensSensors(t *testing.T) {
	cfg := plantConfig(t, filepath.Join(t.TempDir(), "latches.json"))
	cfg.Hardware.Devices[0].Kind = "thermocouple"     // oven_temp, the oven loop's input
	cfg.Hardware.Devices[5].Signal = "no_such_signal" // door_closed, the conveyor's interlock
	cfg.Hardware.Devices[5].Pull = "sideways"         // refused when the collector decodes it
	cfg.Loops[0].Alarms[0].Type = "rate"              // so is this: safe-outputs reads neither
	reg := backends.NewRegistry(nil)
	for _, sensor := range []int{0, 5} {
		_, err := reg.Open(hardware.Config{Backend: hardware.BackendSim, Devices: cfg.Hardware.Devices[sensor : sensor+1]}, hardware.Settings{})
		require.Error(t, err, "the broken sensor %s must not open", cfg.Hardware.Devices[sensor].Name)
	}

	actuators := hardware.Config{Backend: hardware.BackendSim, Sim: cfg.Hardware.Sim, Devices: []hardware.DeviceConfig{
		cfg.Hardware.Devices[1], cfg.Hardware.Devices[4],
	}}
	crashed, err := reg.Open(actuators, hardware.Settings{})
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, crashed.Close()) })
	heater, err := crashed.DutyOutput("heater_ssr")
	require.NoError(t, err)
	require.NoError(t, heater.WriteDuty(context.Background(), 0.7))
	en, err := crashed.DigitalOutput("motor_enable")
	require.NoError(t, err)
	require.NoError(t, en.WriteLevel(context.Background(), true))

	writes, err := DriveSafe(context.Background(), collectorConf(t, map[string]*Config{"controlloop": cfg}), reg, nil)
	require.NoError(t, err)
	assert.Equal(t, []driven{{"heater_ssr", 0, false}, {"motor_speed", 0, false}, {"motor_enable", 0, false}}, summary(writes))
	assert.Equal(t, 0.0, sim.Plant(crashed).HeaterDuty())
	assert.False(t, sim.Plant(crashed).MotorEnabled())
}

// An actuator whose own entry does not decode is reported by name; the others go safe.
func TestDriveSafeReportsAnActuatorThatDoesNotDecode(t *testing.T) {
	cfg := plantConfig(t, filepath.Join(t.TempDir(), "latches.json"))
	cfg.Hardware.Devices[4].Edge = "sideways" // motor_enable
	writes, err := DriveSafe(context.Background(), collectorConf(t, map[string]*Config{"controlloop": cfg}), backends.NewRegistry(nil), nil)
	require.ErrorContains(t, err, `output.enable "motor_enable": its entry in hardware.devices cannot be read`)
	assert.Equal(t, []driven{{"heater_ssr", 0, false}, {"motor_speed", 0, false}, {"motor_enable", 0, true}}, summary(writes))
}

// Without a controlloop extension (the gateway), or with one without loops, there is
// nothing to drive: no write, no error.
func TestDriveSafeNothingToDo(t *testing.T) {
	empty := createDefaultConfig()
	for name, conf := range map[string]*confmap.Conf{
		"no extensions": confmap.NewFromStringMap(map[string]any{"receivers": map[string]any{"otlp": nil}}),
		"gateway": confmap.NewFromStringMap(map[string]any{"extensions": map[string]any{
			"health_check": map[string]any{"endpoint": "localhost:13133"}, "controlloopx": nil,
		}}),
		"controlloop without loops": collectorConf(t, map[string]*Config{"controlloop": empty}),
		"empty controlloop section": confmap.NewFromStringMap(map[string]any{"extensions": map[string]any{"controlloop": nil}}),
	} {
		t.Run(name, func(t *testing.T) {
			writes, err := DriveSafe(context.Background(), conf, backends.NewRegistry(nil), nil)
			require.NoError(t, err)
			assert.Empty(t, writes)
		})
	}
}

// Every controlloop extension counts, named or not.
func TestDriveSafeEveryInstance(t *testing.T) {
	a := plantConfig(t, filepath.Join(t.TempDir(), "a.json"))
	b := plantConfig(t, filepath.Join(t.TempDir(), "b.json"))
	b.Loops = b.Loops[:1]
	b.Loops[0].Output.SafeState = 0.25 // a heater kept warm when safe
	writes, err := DriveSafe(context.Background(),
		collectorConf(t, map[string]*Config{"controlloop/line2": b, "controlloop": a}), backends.NewRegistry(nil), nil)
	require.NoError(t, err)
	var ids []string
	for _, w := range writes {
		ids = append(ids, w.Extension.String())
	}
	assert.Equal(t, []string{"controlloop", "controlloop", "controlloop", "controlloop/line2"}, ids)
	assert.Equal(t, driven{"heater_ssr", 0.25, false}, summary(writes)[3])
}

// One actuator that cannot be driven does not stop the others; the error names it.
func TestDriveSafeTriesEveryActuator(t *testing.T) {
	for name, tc := range map[string]struct {
		edit func(*Config)
		want string
	}{
		"actuator names a sensor": {
			func(c *Config) { c.Loops[0].Output.Actuator = "oven_temp" },
			`controlloop: loop "oven": output.actuator "oven_temp": is a mcp9808, not a duty_output or gpio_output; not opened`,
		},
		"actuator not configured": {
			func(c *Config) { c.Loops[0].Output.Actuator = "heater_relay" },
			`controlloop: loop "oven": output.actuator "heater_relay": not a device in hardware.devices`,
		},
		"safe state out of range": {
			func(c *Config) { c.Loops[0].Output.SafeState = 1.5 },
			`controlloop: loop "oven": output.actuator "heater_ssr": its safe state 1.5 is outside 0..1; not written`,
		},
	} {
		t.Run(name, func(t *testing.T) {
			cfg := plantConfig(t, filepath.Join(t.TempDir(), "latches.json"))
			tc.edit(cfg)
			reg := backends.NewRegistry(nil)
			crashed, err := reg.Open(hardware.Config{Backend: hardware.BackendSim, Sim: cfg.Hardware.Sim,
				Devices: []hardware.DeviceConfig{cfg.Hardware.Devices[4]}}, hardware.Settings{})
			require.NoError(t, err)
			t.Cleanup(func() { require.NoError(t, crashed.Close()) })
			en, err := crashed.DigitalOutput("motor_enable")
			require.NoError(t, err)
			require.NoError(t, en.WriteLevel(context.Background(), true))

			writes, err := DriveSafe(context.Background(), collectorConf(t, map[string]*Config{"controlloop": cfg}), reg, nil)
			require.EqualError(t, err, tc.want)
			sum := summary(writes)
			require.Len(t, sum, 3)
			assert.True(t, sum[0].Failed)
			assert.Equal(t, []driven{{"motor_speed", 0, false}, {"motor_enable", 0, false}}, sum[1:])
			assert.False(t, sim.Plant(crashed).MotorEnabled(), "the conveyor's enable went safe after the oven's actuator failed")
		})
	}
}

// brokenPin is a GPIO whose every write fails, like a pin another process holds.
type brokenPin struct{ *gpiotest.Pin }

func (p *brokenPin) Out(gpio.Level) error { return errors.New("device or resource busy") }

func registerPins(t *testing.T, pins ...gpio.PinIO) {
	t.Helper()
	for _, p := range pins {
		require.NoError(t, gpioreg.Register(p))
		name := p.Name()
		t.Cleanup(func() { _ = gpioreg.Unregister(name) })
	}
}

// On real hardware a killed collector leaves its pins as they were: the GPIO registers keep
// their value. With periph's test doubles in periph's registries, DriveSafe opens the pins
// anew and drives them safe (active_low included), while the oven's sensor, on an I2C bus
// that does not exist, is never opened, and a pin that refuses every write is reported by
// name after the others were driven.
func TestDriveSafePeriph(t *testing.T) {
	heat := &gpiotest.Pin{N: "FCT_SAFE_HEAT", Num: 9101, L: gpio.High}
	speed := &gpiotest.Pin{N: "FCT_SAFE_SPEED", Num: 9102, L: gpio.High}
	enable := &gpiotest.Pin{N: "FCT_SAFE_EN", Num: 9103, L: gpio.Low} // active low: on
	stuck := &brokenPin{&gpiotest.Pin{N: "FCT_SAFE_STUCK", Num: 9104, L: gpio.High}}
	damper := &gpiotest.Pin{N: "FCT_SAFE_DAMPER", Num: 9105, D: gpio.DutyMax}
	hoist := &gpiotest.Pin{N: "FCT_SAFE_HOIST", Num: 9106, L: gpio.High}
	brake := &gpiotest.Pin{N: "FCT_SAFE_BRAKE", Num: 9107, L: gpio.Low}
	registerPins(t, heat, speed, enable, stuck, damper, hoist, brake)

	cfg := createDefaultConfig()
	cfg.Hardware = hardware.Config{Backend: hardware.BackendPeriph, Devices: []hardware.DeviceConfig{
		{Name: "oven_temp", Kind: hardware.KindMCP9808, Bus: "fct-safe-no-such-bus"},
		{Name: "heater_ssr", Kind: hardware.KindDutyOutput, Pin: "FCT_SAFE_HEAT"},
		{Name: "motor_tach", Kind: hardware.KindADS1115, Bus: "fct-safe-no-such-bus"},
		{Name: "motor_speed", Kind: hardware.KindDutyOutput, Pin: "FCT_SAFE_SPEED", PWMFrequency: 1000},
		{Name: "motor_enable", Kind: hardware.KindGPIOOutput, Pin: "FCT_SAFE_EN", ActiveLow: true},
		{Name: "fan", Kind: hardware.KindGPIOOutput, Pin: "FCT_SAFE_STUCK"},
		{Name: "damper", Kind: hardware.KindDutyOutput, Pin: "FCT_SAFE_DAMPER", PWMFrequency: 50},
		{Name: "hoist_speed", Kind: hardware.KindDutyOutput, Pin: "FCT_SAFE_HOIST"},
		{Name: "hoist_brake", Kind: hardware.KindGPIOOutput, Pin: "FCT_SAFE_BRAKE"},
	}}
	cfg.Loops = []LoopConfig{
		{Name: "fan", Input: InputConfig{Sensor: "oven_temp"}, Output: OutputConfig{Actuator: "fan"}},
		{Name: "oven", Input: InputConfig{Sensor: "oven_temp"}, Output: OutputConfig{Actuator: "heater_ssr"}},
		{Name: "conveyor", Input: InputConfig{Sensor: "motor_tach"}, Output: OutputConfig{Actuator: "motor_speed", Enable: "motor_enable"}},
		// Safe is half open: the write is seen in the PWM duty, which closing leaves alone.
		{Name: "draught", Input: InputConfig{Sensor: "oven_temp"}, Output: OutputConfig{Actuator: "damper", SafeState: 0.5}},
		// A hoist's brake holds the load when its line is high: safe is on, and the session's
		// close must leave it on.
		{Name: "hoist", Input: InputConfig{Sensor: "motor_tach"}, Output: OutputConfig{Actuator: "hoist_speed", Enable: "hoist_brake", EnableSafeState: true}},
	}
	probe, err := backends.NewRegistry(nil).Open(hardware.Config{Backend: hardware.BackendPeriph, Devices: cfg.Hardware.Devices[:1]}, hardware.Settings{})
	require.NoError(t, err)
	require.ErrorIs(t, probe.Status()[0].Err, hardware.ErrNotOpen, "the oven's sensor must not open")
	require.NoError(t, probe.Close())

	// A host without gpiochips (the pins are the gpiotest doubles) whose /dev/mem opens, so
	// that hardware PWM is not refused.
	mem := filepath.Join(t.TempDir(), "mem")
	require.NoError(t, os.WriteFile(mem, nil, 0o600))
	reg := backends.NewRegistryWith(nil, periph.Options{GPIO: periph.GPIOPaths{DevDir: t.TempDir(), Model: mem, Compatible: mem, DevMem: mem}})
	writes, err := DriveSafe(context.Background(), collectorConf(t, map[string]*Config{"controlloop": cfg}), reg, nil)
	require.Error(t, err)
	assert.Contains(t, err.Error(), `controlloop: loop "fan": output.actuator "fan": opening: device "fan"`)
	assert.Contains(t, err.Error(), "device or resource busy")
	assert.Equal(t, []driven{{"fan", 0, true}, {"heater_ssr", 0, false}, {"motor_speed", 0, false}, {"motor_enable", 0, false}, {"damper", 0.5, false},
		{"hoist_speed", 0, false}, {"hoist_brake", 1, false}}, summary(writes))
	for _, p := range []*gpiotest.Pin{heat, speed, enable, damper, hoist, brake} {
		p.Lock()
		defer p.Unlock()
	}
	assert.Equal(t, gpio.Low, heat.L, "heater SSR off")
	assert.Equal(t, gpio.Low, speed.L, "motor speed off")
	assert.Equal(t, gpio.Duty(0), speed.D, "motor speed PWM at 0")
	assert.Equal(t, gpio.High, enable.L, "active-low enable released")
	assert.Equal(t, gpio.DutyMax/2, damper.D, "damper at its configured safe state")
	assert.Equal(t, gpio.Low, hoist.L, "hoist off")
	assert.Equal(t, gpio.High, brake.L, "a brake whose safe state is on stays on after the session closes")
}
