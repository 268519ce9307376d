package controlloop

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"periph.io/x/conn/v3/gpio"
	"periph.io/x/conn/v3/gpio/gpiotest"
	"periph.io/x/conn/v3/i2c"
	"periph.io/x/conn/v3/i2c/i2creg"
	"periph.io/x/conn/v3/physic"

	"github.com/fieldcol/fieldcol/controlloop/internal/api"
	"github.com/fieldcol/fieldcol/internal/hardware"
	"github.com/fieldcol/fieldcol/internal/hardware/backends"
	"github.com/fieldcol/fieldcol/internal/hardware/periph"
)

// adsBus is an I2C bus with an ADS1115 at 0x48 whose conversions read about 0.512 V,
// a little different every time so that no frozen-sensor check trips. Its adapter is
// missing until plug, like an I2C bus whose module is not loaded yet.
type adsBus struct {
	mu      sync.Mutex
	plugged bool
	n       byte
}

func (b *adsBus) open() (i2c.BusCloser, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.plugged {
		return nil, errors.New("open /dev/i2c-5: no such file or directory")
	}
	return b, nil
}

func (b *adsBus) plug() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.plugged = true
}

func (b *adsBus) String() string                  { return "fake ADS1115 bus" }
func (b *adsBus) Close() error                    { return nil }
func (b *adsBus) SetSpeed(physic.Frequency) error { return nil }
func (b *adsBus) Tx(addr uint16, w, r []byte) error {
	if addr != 0x48 {
		return errors.New("i2c: no acknowledge")
	}
	if len(w) == 1 && w[0] == 0x00 && len(r) == 2 {
		b.mu.Lock()
		b.n = (b.n + 1) % 8
		r[0], r[1] = 0x10, b.n // 4096+n of 32768 at ±4.096 V
		b.mu.Unlock()
	}
	return nil
}

func registerBus(t *testing.T, name string, b *adsBus) {
	t.Helper()
	require.NoError(t, i2creg.Register(name, nil, -1, b.open))
	t.Cleanup(func() { _ = i2creg.Unregister(name) })
}

// periphConfig is the edge config's two loops on the periph backend with periph's test
// doubles: the oven reads an ADS1115 channel on ovenBus (0.512 V × 100 = 51 °C) and drives
// a heater pin, the conveyor reads a tachometer on another bus and drives a motor with an
// enable pin, interlocked on a door switch. A pin name left unregistered is a pin that
// is missing on the host.
func periphConfig(t *testing.T, ovenBus, heaterPin string) (*Config, *gpiotest.Pin) {
	cfg := plantConfig(t, latchPath(t))
	// Slower than the sim tests: a real bus worker on a shared CI machine must not time out.
	for i := range cfg.Loops {
		cfg.Loops[i].Period = 100 * time.Millisecond
	}
	cfg.Hardware = hardware.Config{
		Backend: hardware.BackendPeriph,
		Timeout: 50 * time.Millisecond,
		Devices: []hardware.DeviceConfig{
			{Name: "oven_temp", Kind: hardware.KindADS1115, Bus: ovenBus, Scale: 100},
			{Name: "heater_ssr", Kind: hardware.KindDutyOutput, Pin: heaterPin, Period: 40 * time.Millisecond},
			{Name: "motor_tach", Kind: hardware.KindADS1115, Bus: "fct-cl-tach", Scale: 3000 / 3.3},
			{Name: "motor_speed", Kind: hardware.KindDutyOutput, Pin: "FCT_CL_SPEED", Period: 40 * time.Millisecond},
			{Name: "motor_enable", Kind: hardware.KindGPIOOutput, Pin: "FCT_CL_EN"},
			{Name: "door_closed", Kind: hardware.KindGPIOInput, Pin: "FCT_CL_DOOR", Pull: "up"},
		},
	}
	tach := &adsBus{plugged: true}
	registerBus(t, "fct-cl-tach", tach)
	enable := &gpiotest.Pin{N: "FCT_CL_EN", Num: 9401}
	speed := &gpiotest.Pin{N: "FCT_CL_SPEED", Num: 9402}
	door := &gpiotest.Pin{N: "FCT_CL_DOOR", Num: 9403, EdgesChan: make(chan gpio.Level, 1)}
	registerPins(t, enable, speed, door)
	return cfg, enable
}

// doublesRegistry is a registry that sees no gpiochips, so that the periph backend opens
// the gpiotest pins registered in periph's registry, also on a Pi.
func doublesRegistry(t *testing.T) *hardware.Registry {
	none := t.TempDir()
	return backends.NewRegistryWith(nil, periph.Options{GPIO: periph.GPIOPaths{DevDir: none, Model: none + "/model", Compatible: none + "/compatible", DevMem: none + "/mem"}})
}

func loopState(t *testing.T, s *started, name string) loopStatus {
	t.Helper()
	st, ok := s.ext.Status(name)
	require.True(t, ok)
	return st.(loopStatus)
}

func latched(st loopStatus, alarm string) bool {
	for _, a := range st.Alarms {
		if a.Name == alarm {
			return a.Latched
		}
	}
	return false
}

// The oven's sensor is absent at start: the extension starts, the oven is tripped with
// sensor_fault latched and its heater off, its status names the missing device, while the
// conveyor runs. When the sensor appears the oven stays tripped until ACK_ALARM, and then
// controls again.
func TestLoopWithAbsentSensorStartsTrippedOthersRun(t *testing.T) {
	oven := &adsBus{}
	registerBus(t, "fct-cl-oven", oven)
	heater := &gpiotest.Pin{N: "FCT_CL_HEAT", Num: 9404, L: gpio.High}
	registerPins(t, heater)
	cfg, enable := periphConfig(t, "fct-cl-oven", "FCT_CL_HEAT")
	s := start(t, cfg, doublesRegistry(t))

	require.Eventually(t, func() bool {
		st := loopState(t, s, "oven")
		return st.State == "tripped" && latched(st, "sensor_fault")
	}, 5*time.Second, 5*time.Millisecond, "the oven is tripped by its absent sensor")
	st := loopState(t, s, "oven")
	assert.True(t, st.SafeState)
	assert.Zero(t, st.Output)
	assert.Equal(t, gpio.Low, heater.Read(), "heater off")
	require.Len(t, st.DevicesNotOpen, 1)
	assert.Equal(t, "oven_temp", st.DevicesNotOpen[0].Name)
	assert.Contains(t, st.DevicesNotOpen[0].Error, `opening I2C bus "fct-cl-oven"`)
	assert.False(t, latched(st, "actuator_fault"))

	require.Eventually(t, func() bool {
		return loopState(t, s, "conveyor").State == "running" && enable.Read() == gpio.High
	}, 5*time.Second, 5*time.Millisecond, "the conveyor runs meanwhile")

	err := s.ext.Execute(context.Background(), &api.Request{Command: api.CmdSetMode, Loop: "oven", Mode: ptr("manual"), Output: ptr(0.5)})
	require.Error(t, err, "the tripped oven refuses to be energized")
	assert.Contains(t, err.Error(), "device oven_temp not open")

	oven.plug()
	require.Eventually(t, func() bool {
		st := loopState(t, s, "oven")
		return len(st.DevicesNotOpen) == 0 && st.PV != nil
	}, 5*time.Second, 10*time.Millisecond, "the sensor opens at a read after it appears")
	st = loopState(t, s, "oven")
	assert.Equal(t, "tripped", st.State, "the latch holds until ACK_ALARM")
	assert.Equal(t, gpio.Low, heater.Read())

	require.NoError(t, s.ext.Execute(context.Background(), &api.Request{Command: api.CmdAckAlarm, Loop: "oven", Alarm: ptr("sensor_fault")}))
	require.Eventually(t, func() bool { return heater.Read() == gpio.High }, 5*time.Second, time.Millisecond,
		"after ACK_ALARM the oven heats towards its setpoint")
}

// The oven's heater pin is missing at start: the extension starts, the oven is held safe
// with actuator_fault latched and says which device is missing, the conveyor runs. Once
// the pin is there, the loop's safe write opens it (off), and ACK_ALARM re-arms.
func TestLoopWithAbsentActuatorIsHeldSafe(t *testing.T) {
	oven := &adsBus{plugged: true}
	registerBus(t, "fct-cl-oven2", oven)
	cfg, enable := periphConfig(t, "fct-cl-oven2", "FCT_CL_HEAT2")
	s := start(t, cfg, doublesRegistry(t))

	require.Eventually(t, func() bool {
		st := loopState(t, s, "oven")
		return st.State == "tripped" && latched(st, "actuator_fault")
	}, 5*time.Second, 5*time.Millisecond)
	st := loopState(t, s, "oven")
	assert.True(t, st.SafeState)
	require.Len(t, st.DevicesNotOpen, 1)
	assert.Equal(t, "heater_ssr", st.DevicesNotOpen[0].Name)
	assert.Contains(t, st.DevicesNotOpen[0].Error, `no GPIO pin named "FCT_CL_HEAT2"`)
	require.Eventually(t, func() bool {
		return loopState(t, s, "conveyor").State == "running" && enable.Read() == gpio.High
	}, 5*time.Second, 5*time.Millisecond, "the conveyor runs meanwhile")

	heater := &gpiotest.Pin{N: "FCT_CL_HEAT2", Num: 9405, L: gpio.High}
	registerPins(t, heater)
	require.Eventually(t, func() bool { return len(loopState(t, s, "oven").DevicesNotOpen) == 0 }, 5*time.Second, 10*time.Millisecond)
	assert.Equal(t, gpio.Low, heater.Read(), "opened off, and held off")
	assert.Equal(t, "tripped", loopState(t, s, "oven").State, "the latch holds until ACK_ALARM")
	require.Eventually(t, func() bool {
		return s.ext.Execute(context.Background(), &api.Request{Command: api.CmdAckAlarm, Loop: "oven", Alarm: ptr("actuator_fault")}) == nil
	}, 5*time.Second, 10*time.Millisecond)
	require.Eventually(t, func() bool { return heater.Read() == gpio.High }, 5*time.Second, time.Millisecond,
		"after ACK_ALARM the oven heats")
}
