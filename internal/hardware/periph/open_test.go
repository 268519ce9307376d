package periph

import (
	"errors"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
	"periph.io/x/conn/v3/gpio"
	"periph.io/x/conn/v3/gpio/gpiotest"
	"periph.io/x/conn/v3/i2c"
	"periph.io/x/conn/v3/i2c/i2creg"
	"periph.io/x/conn/v3/i2c/i2ctest"

	"github.com/fieldcol/fieldcol/internal/hardware"
	"github.com/fieldcol/fieldcol/internal/hardware/hardwaretest"
)

// openError opens cfg on a fresh registry, which must succeed, and returns the open error
// of its first device.
func openError(t *testing.T, cfg hardware.Config) error {
	t.Helper()
	s, err := newRegistry(nil).Open(cfg, hardware.Settings{})
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, s.Close()) })
	return s.Status()[0].Err
}

// lateBus is an I2C bus whose opener fails until it is plugged in, like an I2C adapter
// that is not there yet. It records how often it was opened and what the heater pin
// showed at the first attempt.
type lateBus struct {
	heater *gpiotest.Pin

	mu           sync.Mutex
	opens        int
	plugged      bool
	heaterAtOpen gpio.Level
	bus          *i2ctest.Playback
}

func (b *lateBus) open() (i2c.BusCloser, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.opens++
	if b.opens == 1 {
		b.heaterAtOpen = b.heater.Read()
	}
	if !b.plugged {
		return nil, errors.New("open /dev/i2c-7: no such file or directory")
	}
	return b.bus, nil
}

func (b *lateBus) plug() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.plugged = true
}

func (b *lateBus) openCount() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.opens
}

// The shipped edge config lists the oven's sensor before the heater. With the sensor's bus
// missing, the heater pin (left on by a crashed process) is driven off before the sensor
// is even tried, Open succeeds, the sensor's reads fail classified and name the device and
// the bus, and once the bus is there the sensor works, without a restart and without
// retrying the open more than once per back-off.
func TestOpenDrivesOutputsSafeFirstAndASensorRecovers(t *testing.T) {
	heater := &gpiotest.Pin{N: "FCT_OPEN_HEAT", Num: 9201, L: gpio.High}
	alarm := &gpiotest.Pin{N: "FCT_OPEN_ALARM", Num: 9202, L: gpio.Low} // active low: on
	registerPin(t, heater)
	registerPin(t, alarm)
	late := &lateBus{heater: heater, bus: &i2ctest.Playback{DontPanic: true, Ops: []i2ctest.IO{
		{Addr: 0x48, W: []byte{0x01, 0xc3, 0xe3}},
		{Addr: 0x48, W: []byte{0x00}, R: []byte{0x40, 0x00}}, // 2.048 V
	}}}
	require.NoError(t, i2creg.Register("fct-open-late", nil, -1, late.open))
	t.Cleanup(func() { _ = i2creg.Unregister("fct-open-late") })

	core, logs := observer.New(zapcore.DebugLevel)
	clock := hardwaretest.NewClock()
	s, err := newRegistry(clock).Open(hardware.Config{Backend: hardware.BackendPeriph, Devices: []hardware.DeviceConfig{
		{Name: "oven_temp", Kind: hardware.KindADS1115, Bus: "fct-open-late"},
		{Name: "heater_ssr", Kind: hardware.KindDutyOutput, Pin: "FCT_OPEN_HEAT"},
		{Name: "alarm", Kind: hardware.KindGPIOOutput, Pin: "FCT_OPEN_ALARM", ActiveLow: true},
	}}, hardware.Settings{Logger: zap.New(core)})
	require.NoError(t, err, "a sensor that cannot be opened does not fail Open")
	t.Cleanup(func() { require.NoError(t, s.Close()) })

	assert.Equal(t, gpio.Low, late.heaterAtOpen, "the heater was off before the sensor was tried")
	assert.Equal(t, gpio.Low, heater.Read(), "heater off")
	assert.Equal(t, gpio.High, alarm.Read(), "active-low output released")
	names := []string{}
	for _, d := range s.Devices() {
		names = append(names, d.Info().Name)
	}
	assert.Equal(t, []string{"oven_temp", "heater_ssr", "alarm"}, names, "Devices keeps configuration order")

	st := s.Status()
	require.Len(t, st, 3)
	assert.False(t, st[0].Open)
	require.ErrorIs(t, st[0].Err, hardware.ErrNotOpen)
	assert.True(t, st[1].Open)
	assert.NoError(t, st[1].Err)
	assert.True(t, st[2].Open)

	warns := logs.FilterMessageSnippet("could not be opened").All()
	require.Len(t, warns, 1, "the failed open is logged once")
	assert.Equal(t, zapcore.WarnLevel, warns[0].Level)
	assert.Equal(t, "oven_temp", warns[0].ContextMap()["device"])
	assert.Contains(t, warns[0].ContextMap()["error"], `opening I2C bus "fct-open-late"`)

	sensor, err := s.AnalogInput("oven_temp")
	require.NoError(t, err, "a device that failed to open still has its role")
	_, err = sensor.ReadVoltage(ctx)
	require.ErrorIs(t, err, hardware.ErrNotOpen)
	assert.Equal(t, hardware.ErrorNack, hardware.ErrorTypeOf(err))
	var he *hardware.Error
	require.ErrorAs(t, err, &he)
	assert.Equal(t, "oven_temp", he.Device)
	assert.Contains(t, err.Error(), `device "oven_temp" (ads1115 at i2cfct-open-late/0x48/ch0)`)
	assert.Contains(t, err.Error(), "no such file or directory")

	late.plug()
	_, err = sensor.ReadVoltage(ctx)
	require.ErrorIs(t, err, hardware.ErrNotOpen, "within the back-off the open is not retried")
	assert.Equal(t, 1, late.openCount())

	clock.Advance(hardware.OpenRetryInterval)
	v, err := sensor.ReadVoltage(ctx)
	require.NoError(t, err, "the read after the back-off opens the sensor")
	assert.InDelta(t, 2.048, v, 1e-6)
	assert.Equal(t, 2, late.openCount(), "one open per read attempt")
	assert.True(t, s.Status()[0].Open)
	assert.NoError(t, hardware.OpenError(sensor))
	infos := logs.FilterMessageSnippet("opened after failing").All()
	require.Len(t, infos, 1, "the recovery is logged")
	assert.Equal(t, zapcore.InfoLevel, infos[0].Level)
	assert.Len(t, logs.FilterMessageSnippet("could not be opened").All(), 1, "retries do not log at Warn again")
}

// An actuator whose pin is missing opens as a failed device: its writes fail until the pin
// is there; the write that opens it finds it driven safe first, and Close drives it safe
// like any output. A device that never opened is not opened after Close.
func TestOpenFailedActuatorRetriesAndClosesSafe(t *testing.T) {
	clock := hardwaretest.NewClock()
	s, err := newRegistry(clock).Open(hardware.Config{Backend: hardware.BackendPeriph, Devices: []hardware.DeviceConfig{
		{Name: "pump", Kind: hardware.KindGPIOOutput, Pin: "FCT_OPEN_PUMP"},
		{Name: "lamp", Kind: hardware.KindGPIOOutput, Pin: "FCT_OPEN_LAMP"},
	}}, hardware.Settings{})
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, s.Close()) })
	pump, err := s.DigitalOutput("pump")
	require.NoError(t, err)
	err = pump.WriteLevel(ctx, false)
	require.ErrorIs(t, err, hardware.ErrNotOpen)
	assert.Contains(t, err.Error(), `no GPIO pin named "FCT_OPEN_PUMP"`)

	pin := &gpiotest.Pin{N: "FCT_OPEN_PUMP", Num: 9203, L: gpio.High}
	registerPin(t, pin)
	clock.Advance(hardware.OpenRetryInterval)
	require.NoError(t, pump.WriteLevel(ctx, true))
	assert.Equal(t, gpio.High, pin.Read())
	assert.True(t, pump.Level())
	require.NoError(t, s.Close())
	assert.Equal(t, gpio.Low, pin.Read(), "Close drives the late actuator safe")

	lampPin := &gpiotest.Pin{N: "FCT_OPEN_LAMP", Num: 9204, L: gpio.High}
	registerPin(t, lampPin)
	lamp, err := s.DigitalOutput("lamp")
	require.NoError(t, err)
	clock.Advance(hardware.OpenRetryInterval)
	err = lamp.WriteLevel(ctx, true)
	require.ErrorContains(t, err, "the hardware session is closed")
	assert.Equal(t, gpio.High, lampPin.Read(), "untouched")
}

// A failed device keeps its pin: another device cannot take it meanwhile, in the same
// configuration or another session. That, and a chip setting the chip cannot take, are
// configuration errors that fail Open before any device is opened.
func TestOpenConfigurationErrorsStillFail(t *testing.T) {
	reg := newRegistry(nil)
	first, err := reg.Open(hardware.Config{Backend: hardware.BackendPeriph, Devices: []hardware.DeviceConfig{
		{Name: "door", Kind: hardware.KindGPIOInput, Pin: "FCT_OPEN_ABSENT", Pull: "up"},
	}}, hardware.Settings{})
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, first.Close()) })
	require.ErrorIs(t, first.Status()[0].Err, hardware.ErrNotOpen)

	heater := &gpiotest.Pin{N: "FCT_OPEN_HEAT2", Num: 9205, L: gpio.High}
	registerPin(t, heater)
	_, err = reg.Open(hardware.Config{Backend: hardware.BackendPeriph, Devices: []hardware.DeviceConfig{
		{Name: "heater", Kind: hardware.KindGPIOOutput, Pin: "FCT_OPEN_HEAT2"},
		{Name: "lamp", Kind: hardware.KindGPIOOutput, Pin: "FCT_OPEN_ABSENT"},
	}}, hardware.Settings{})
	require.ErrorContains(t, err, `devices[1] (lamp).pin: pin FCT_OPEN_ABSENT is already used by another device ("door")`)
	assert.Equal(t, gpio.High, heater.Read(), "nothing was opened")

	_, err = reg.Open(hardware.Config{Backend: hardware.BackendPeriph, Devices: []hardware.DeviceConfig{
		{Name: "a", Kind: hardware.KindMCP3008, Bus: "FCT-OPEN-SPI"},
		{Name: "b", Kind: hardware.KindMCP3008, Bus: "FCT-OPEN-SPI", Channel: 1, FullScale: 5},
	}}, hardware.Settings{})
	require.ErrorContains(t, err, `devices[1] (b).full_scale: SPI port "FCT-OPEN-SPI" already has an MCP3008 with full_scale 3.3`)

	for _, tt := range []struct {
		dev  hardware.DeviceConfig
		want string
	}{
		{hardware.DeviceConfig{Name: "v", Kind: hardware.KindADS1115, DataRate: 1000}, "data_rate: ads1115 converts at most 860 samples/s, got 1000"},
		{hardware.DeviceConfig{Name: "v", Kind: hardware.KindADS1015, FullScale: 10}, "full_scale: ads1015 reads at most 6.144 V, got 10"},
	} {
		_, err = reg.Open(hardware.Config{Backend: hardware.BackendPeriph, Devices: []hardware.DeviceConfig{tt.dev}}, hardware.Settings{})
		require.ErrorContains(t, err, tt.want)
	}
	limits, err := reg.Open(hardware.Config{Backend: hardware.BackendPeriph, Devices: []hardware.DeviceConfig{{Name: "v", Kind: hardware.KindADS1015, DataRate: 3300, FullScale: 6.144}}}, hardware.Settings{})
	require.NoError(t, err, "the limits themselves are accepted")
	require.NoError(t, limits.Close())
}
