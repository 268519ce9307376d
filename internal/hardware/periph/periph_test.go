package periph

import (
	"errors"
	"math"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"periph.io/x/conn/v3/conntest"
	"periph.io/x/conn/v3/gpio"
	"periph.io/x/conn/v3/gpio/gpioreg"
	"periph.io/x/conn/v3/gpio/gpiotest"
	"periph.io/x/conn/v3/i2c"
	"periph.io/x/conn/v3/i2c/i2creg"
	"periph.io/x/conn/v3/i2c/i2ctest"
	"periph.io/x/conn/v3/physic"
	"periph.io/x/conn/v3/spi"
	"periph.io/x/conn/v3/spi/spireg"
	"periph.io/x/conn/v3/spi/spitest"

	"github.com/fieldcol/fieldcol/internal/hardware"
)

// The periph tests run the real periph backend against the conn/v3 test doubles, which
// they register in periph's own registries under names no real host uses.

func openPeriph(t *testing.T, devices ...hardware.DeviceConfig) *hardware.Session {
	t.Helper()
	s, err := newRegistry(nil).Open(hardware.Config{Backend: hardware.BackendPeriph, Devices: devices}, hardware.Settings{})
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, s.Close()) })
	return s
}

func registerI2C(t *testing.T, name string, p *i2ctest.Playback) {
	t.Helper()
	require.NoError(t, i2creg.Register(name, nil, -1, func() (i2c.BusCloser, error) { return p, nil }))
	t.Cleanup(func() { _ = i2creg.Unregister(name) })
}

func registerPin(t *testing.T, p *gpiotest.Pin) {
	t.Helper()
	require.NoError(t, gpioreg.Register(p))
	t.Cleanup(func() { _ = gpioreg.Unregister(p.N) })
}

func count(p *i2ctest.Playback) int {
	p.Lock()
	defer p.Unlock()
	return p.Count
}

// ADS1115 single-shot on channel 0, gain 1 (±4.096 V), 860 SPS, comparator off:
// OS=1 MUX=100 PGA=001 MODE=1 DR=111 COMP_QUE=11 -> config register 0xC3E3.
func TestPeriphADS1115(t *testing.T) {
	bus := &i2ctest.Playback{DontPanic: true, Ops: []i2ctest.IO{
		{Addr: 0x48, W: []byte{0x01, 0xc3, 0xe3}},
		{Addr: 0x48, W: []byte{0x00}, R: []byte{0x40, 0x00}}, // 16384 of 32768 -> 2.048 V
		{Addr: 0x48, W: []byte{0x01, 0xd3, 0xe3}},            // channel 1: MUX=101
		{Addr: 0x48, W: []byte{0x00}, R: []byte{0x7f, 0xff}}, // full scale
	}}
	registerI2C(t, "fct-ads", bus)
	s := openPeriph(t,
		hardware.DeviceConfig{Name: "v0", Kind: hardware.KindADS1115, Bus: "fct-ads", Scale: 2},
		hardware.DeviceConfig{Name: "v1", Kind: hardware.KindADS1115, Bus: "fct-ads", Channel: 1, ValidRange: &hardware.Range{Min: 0, Max: 4}},
	)
	v0, err := s.AnalogInput("v0")
	require.NoError(t, err)
	assert.Equal(t, "i2cfct-ads/0x48/ch0", v0.Info().ID)
	v, err := v0.ReadVoltage(ctx)
	require.NoError(t, err)
	assert.InDelta(t, 4.096, v, 1e-6, "2.048 V through a 1:2 divider")

	v1, err := s.AnalogInput("v1")
	require.NoError(t, err)
	v, err = v1.ReadVoltage(ctx)
	assert.Equal(t, hardware.ErrorOutOfRange, hardware.ErrorTypeOf(err))
	assert.InDelta(t, 4.096, v, 1e-3)
	assert.Equal(t, 4, count(bus))
}

// At 8 SPS a single-shot conversion takes 125 ms: a 30 ms per-read timeout gives up
// without waiting for it, and the bus stays serialized until the transfer ends.
func TestPeriphSlowConversionTimesOut(t *testing.T) {
	bus := &i2ctest.Playback{DontPanic: true, Ops: []i2ctest.IO{
		{Addr: 0x49, W: []byte{0x01, 0xc3, 0x03}},
		{Addr: 0x49, W: []byte{0x00}, R: []byte{0x00, 0x10}},
	}}
	registerI2C(t, "fct-slow", bus)
	s := openPeriph(t, hardware.DeviceConfig{Name: "slow", Kind: hardware.KindADS1115, Bus: "fct-slow", Address: 0x49, DataRate: 8, Timeout: 30 * time.Millisecond})
	a, err := s.AnalogInput("slow")
	require.NoError(t, err)
	began := time.Now()
	_, err = a.ReadVoltage(ctx)
	assert.Equal(t, hardware.ErrorTimeout, hardware.ErrorTypeOf(err), err)
	assert.Less(t, time.Since(began), 120*time.Millisecond, "the caller is not held for the conversion")
	assert.Eventually(t, func() bool { return count(bus) == 2 }, 2*time.Second, 10*time.Millisecond,
		"the abandoned transfer completes in the background")
}

func TestPeriphMCP3008(t *testing.T) {
	port := &spitest.Playback{Playback: conntest.Playback{DontPanic: true, Ops: []conntest.IO{
		{W: []byte{0x01, 0x80, 0x00}, R: []byte{0x00, 0x01, 0x00}}, // ch0: 256 -> 0.825 V
		{W: []byte{0x01, 0xb0, 0x00}, R: []byte{0x00, 0x03, 0xff}}, // ch3: 1023
	}}}
	require.NoError(t, spireg.Register("FCT-SPI", nil, -1, func() (spi.PortCloser, error) { return port, nil }))
	t.Cleanup(func() { _ = spireg.Unregister("FCT-SPI") })
	s := openPeriph(t,
		hardware.DeviceConfig{Name: "pot", Kind: hardware.KindMCP3008, Bus: "FCT-SPI"},
		hardware.DeviceConfig{Name: "level", Kind: hardware.KindMCP3008, Bus: "FCT-SPI", Channel: 3},
	)
	pot, err := s.AnalogInput("pot")
	require.NoError(t, err)
	assert.Equal(t, "fct-spi/ch0", pot.Info().ID)
	v, err := pot.ReadVoltage(ctx)
	require.NoError(t, err)
	assert.InDelta(t, 0.825, v, 1e-9)
	level, err := s.AnalogInput("level")
	require.NoError(t, err)
	v, err = level.ReadVoltage(ctx)
	require.NoError(t, err)
	assert.InDelta(t, 1023*3.3/1024, v, 1e-9)
}

func TestPeriphGPIOInputCountsEdges(t *testing.T) {
	pin := &gpiotest.Pin{N: "FCT17", Num: 9017, EdgesChan: make(chan gpio.Level, 8)}
	registerPin(t, pin)
	s := openPeriph(t, hardware.DeviceConfig{Name: "door", Kind: hardware.KindGPIOInput, Pin: "FCT17", Pull: "up"})
	door, err := s.DigitalInput("door")
	require.NoError(t, err)
	assert.Equal(t, "FCT17", door.Info().ID)
	lvl, err := door.ReadLevel(ctx)
	require.NoError(t, err)
	assert.True(t, lvl, "pull-up reads high")
	for _, l := range []gpio.Level{gpio.Low, gpio.High, gpio.Low} {
		pin.EdgesChan <- l
	}
	assert.Eventually(t, func() bool {
		n, err := door.Edges(ctx)
		return err == nil && n == 3
	}, 2*time.Second, 5*time.Millisecond)
	lvl, err = door.ReadLevel(ctx)
	require.NoError(t, err)
	assert.False(t, lvl)
}

func TestPeriphGPIOOutputAndSafeClose(t *testing.T) {
	pin := &gpiotest.Pin{N: "FCT22", Num: 9022}
	lowPin := &gpiotest.Pin{N: "FCT23", Num: 9023}
	registerPin(t, pin)
	registerPin(t, lowPin)
	s, err := newRegistry(nil).Open(hardware.Config{Backend: hardware.BackendPeriph, Devices: []hardware.DeviceConfig{
		{Name: "motor_on", Kind: hardware.KindGPIOOutput, Pin: "FCT22"},
		{Name: "alarm", Kind: hardware.KindGPIOOutput, Pin: "FCT23", ActiveLow: true},
	}}, hardware.Settings{})
	require.NoError(t, err)
	assert.Equal(t, gpio.Low, pin.Read(), "outputs start safe")
	assert.Equal(t, gpio.High, lowPin.Read(), "an active-low output starts electrically high")
	on, err := s.DigitalOutput("motor_on")
	require.NoError(t, err)
	require.NoError(t, on.WriteLevel(ctx, true))
	assert.Equal(t, gpio.High, pin.Read())
	alarm, err := s.DigitalOutput("alarm")
	require.NoError(t, err)
	require.NoError(t, alarm.WriteLevel(ctx, true))
	assert.Equal(t, gpio.Low, lowPin.Read())
	require.NoError(t, s.Close())
	assert.Equal(t, gpio.Low, pin.Read(), "Close drives outputs safe")
	assert.Equal(t, gpio.High, lowPin.Read())
}

func TestPeriphDutyOutputPWM(t *testing.T) {
	pin := &gpiotest.Pin{N: "FCT18", Num: 9018}
	registerPin(t, pin)
	mem := filepath.Join(t.TempDir(), "mem") // a /dev/mem that opens read-write, not a Pi 5
	require.NoError(t, os.WriteFile(mem, nil, 0o600))
	withGPIO(t, func(e *gpioEnv) { e.DevMem = mem })
	s := openPeriph(t, hardware.DeviceConfig{Name: "fan", Kind: hardware.KindDutyOutput, Pin: "FCT18", PWMFrequency: 25000})
	fan, err := s.DutyOutput("fan")
	require.NoError(t, err)
	require.NoError(t, fan.WriteDuty(ctx, 0.25))
	pin.Lock()
	d, f := pin.D, pin.F
	pin.Unlock()
	assert.Equal(t, gpio.DutyMax/4, d)
	assert.Equal(t, 25*physic.KiloHertz, f)
	assert.InDelta(t, 0.25, fan.Duty(), 1e-9)
	require.NoError(t, fan.WriteDuty(ctx, 7))
	assert.Equal(t, 1.0, fan.Duty(), "duty is clamped")
}

func TestPeriphDutyOutputTimeProportional(t *testing.T) {
	pin := &gpiotest.Pin{N: "FCT27", Num: 9027}
	registerPin(t, pin)
	s, err := newRegistry(nil).Open(hardware.Config{Backend: hardware.BackendPeriph, Devices: []hardware.DeviceConfig{
		{Name: "heater", Kind: hardware.KindDutyOutput, Pin: "FCT27", Period: 40 * time.Millisecond},
	}}, hardware.Settings{})
	require.NoError(t, err)
	h, err := s.DutyOutput("heater")
	require.NoError(t, err)
	require.NoError(t, h.WriteDuty(ctx, 0.5))
	sawHigh, sawLow := false, false
	assert.Eventually(t, func() bool {
		if pin.Read() == gpio.High {
			sawHigh = true
		} else if sawHigh {
			sawLow = true
		}
		return sawHigh && sawLow
	}, 2*time.Second, time.Millisecond, "the SSR line switches on and off within each period")
	require.NoError(t, s.Close())
	assert.Equal(t, gpio.Low, pin.Read(), "Close leaves the heater off")
}

// The thermal zone's temp file holds millidegrees, whatever the value: a Pi that boots
// below 0.1 °C reads right (periph's sysfs sensor guessed the unit from the first value).
func TestPeriphSoCThermal(t *testing.T) {
	root := t.TempDir()
	orig := thermalRoot
	t.Cleanup(func() { thermalRoot = orig })
	thermalRoot = root
	zone := filepath.Join(root, "thermal_zone0")
	require.NoError(t, os.MkdirAll(zone, 0o755))
	temp := filepath.Join(zone, "temp")
	s := func() *hardware.Session {
		require.NoError(t, os.WriteFile(temp, []byte("48500\n"), 0o644))
		return openPeriph(t, hardware.DeviceConfig{Name: "soc", Kind: hardware.KindSoCThermal})
	}()
	soc, err := s.TemperatureInput("soc")
	require.NoError(t, err)
	for _, c := range []struct {
		file string
		want float64
	}{{"48500\n", 48.5}, {"-3000\n", -3}, {"85\n", 0.085}, {"62312\n", 62.312}} {
		require.NoError(t, os.WriteFile(temp, []byte(c.file), 0o644))
		v, err := soc.ReadTemperature(ctx)
		require.NoError(t, err, c.file)
		assert.InDelta(t, c.want, v, 1e-9, c.file)
	}
	require.NoError(t, os.WriteFile(temp, []byte("hot\n"), 0o644))
	_, err = soc.ReadTemperature(ctx)
	assert.Equal(t, hardware.ErrorInvalid, hardware.ErrorTypeOf(err), "%v", err)
	require.NoError(t, os.Remove(temp))
	_, err = soc.ReadTemperature(ctx)
	assert.Equal(t, hardware.ErrorNack, hardware.ErrorTypeOf(err), "a zone that is gone: %v", err)

	err = openError(t, hardware.Config{Backend: hardware.BackendPeriph, Devices: []hardware.DeviceConfig{{Name: "soc2", Kind: hardware.KindSoCThermal, Channel: 3}}})
	require.ErrorContains(t, err, `device "soc2" (soc_thermal at thermal_zone3): no sysfs thermal zone`)
}

func FuzzParseMilliCelsius(f *testing.F) {
	for _, s := range []string{"48500\n", "-3000", "", "1e3", " 12 \n", "99999999999"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		v, err := ParseMilliCelsius(b)
		if err != nil {
			return
		}
		// Within what a 32-bit millidegree count can say, and an exact integer count.
		assert.LessOrEqual(t, math.Abs(v), float64(math.MaxInt32)/1000)
		assert.InDelta(t, math.Round(v*1000), v*1000, 1e-6)
	})
}

// Missing hardware does not fail Open: the device is failed, and its open error names it.
func TestPeriphMissingHardwareIsAFailedDevice(t *testing.T) {
	tests := []struct {
		name string
		dev  hardware.DeviceConfig
		want []string
	}{
		{"no pin", hardware.DeviceConfig{Name: "door", Kind: hardware.KindGPIOInput, Pin: "GPIO999", Pull: "up"}, []string{`device "door"`, "GPIO999", "no GPIO pin named"}},
		{"no i2c bus", hardware.DeviceConfig{Name: "adc", Kind: hardware.KindADS1115, Bus: "fct-absent"}, []string{`device "adc"`, "i2cfct-absent/0x48/ch0", `opening I2C bus "fct-absent"`}},
		{"no spi port", hardware.DeviceConfig{Name: "pot", Kind: hardware.KindMCP3008, Bus: "FCT-ABSENT"}, []string{`device "pot"`, `opening SPI port "FCT-ABSENT"`}},
		{"no mcp9808", hardware.DeviceConfig{Name: "room", Kind: hardware.KindMCP9808, Bus: "fct-empty"}, []string{`device "room"`, "no MCP9808 answering"}},
	}
	registerI2C(t, "fct-empty", &i2ctest.Playback{DontPanic: true})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := openError(t, hardware.Config{Backend: hardware.BackendPeriph, Devices: []hardware.DeviceConfig{tt.dev}})
			require.ErrorIs(t, err, hardware.ErrNotOpen)
			for _, w := range tt.want {
				assert.Contains(t, err.Error(), w)
			}
		})
	}
}

func TestPeriphPinUsedTwice(t *testing.T) {
	registerPin(t, &gpiotest.Pin{N: "FCT05", Num: 9005})
	_, err := newRegistry(nil).Open(hardware.Config{Backend: hardware.BackendPeriph, Devices: []hardware.DeviceConfig{
		{Name: "a", Kind: hardware.KindGPIOOutput, Pin: "FCT05"},
		{Name: "b", Kind: hardware.KindGPIOOutput, Pin: "FCT05"},
	}}, hardware.Settings{})
	require.ErrorContains(t, err, "pin FCT05 is already used by another device")
}

func TestPeriphHostInitFailure(t *testing.T) {
	orig := initHost
	t.Cleanup(func() { initHost = orig })
	initHost = func() (DriverState, error) { return DriverState{}, errors.New("no /dev/gpiomem") }
	_, err := newRegistry(nil).Open(hardware.Config{Backend: hardware.BackendPeriph}, hardware.Settings{})
	require.Error(t, err)
	assert.True(t, strings.HasPrefix(err.Error(), "backend: periph host.Init failed"), err.Error())
}

// MCP9808 at 0x18: set-up reads the manufacturer and device IDs (0x06 -> 0x0054, 0x07 ->
// 0x04 and the revision), writes resolution (0x08 <- 0x03) and configuration (0x01 <-
// 0x0000); a read fetches the ambient temperature register 0x05. 0x0194 is 25.25 °C, and
// 0x1ff0 (sign bit set) is -1 °C.
func TestPeriphMCP9808(t *testing.T) {
	bus := &i2ctest.Playback{DontPanic: true, Ops: []i2ctest.IO{
		{Addr: 0x18, W: []byte{0x06}, R: []byte{0x00, 0x54}},
		{Addr: 0x18, W: []byte{0x07}, R: []byte{0x04, 0x00}},
		{Addr: 0x18, W: []byte{0x08, 0x03}},
		{Addr: 0x18, W: []byte{0x01, 0x00, 0x00}},
		{Addr: 0x18, W: []byte{0x05}, R: []byte{0x01, 0x94}},
		{Addr: 0x18, W: []byte{0x05}, R: []byte{0x1f, 0xf0}},
	}}
	registerI2C(t, "fct-mcp9808", bus)
	s := openPeriph(t, hardware.DeviceConfig{Name: "room", Kind: hardware.KindMCP9808, Bus: "fct-mcp9808", Offset: -0.25})
	room, err := s.TemperatureInput("room")
	require.NoError(t, err)
	assert.Equal(t, "i2cfct-mcp9808/0x18", room.Info().ID)
	v, err := room.ReadTemperature(ctx)
	require.NoError(t, err)
	assert.InDelta(t, 25.0, v, 1e-6, "25.25 °C with a -0.25 calibration offset")
	v, err = room.ReadTemperature(ctx)
	require.NoError(t, err)
	assert.InDelta(t, -1.25, v, 1e-6)
}

// resolution sets the chip's resolution register (0x08): 9 bits is periph's Low, 0x00.
func TestPeriphMCP9808Resolution(t *testing.T) {
	bus := &i2ctest.Playback{DontPanic: true, Ops: []i2ctest.IO{
		{Addr: 0x18, W: []byte{0x06}, R: []byte{0x00, 0x54}},
		{Addr: 0x18, W: []byte{0x07}, R: []byte{0x04, 0x00}},
		{Addr: 0x18, W: []byte{0x08, 0x00}},
		{Addr: 0x18, W: []byte{0x01, 0x00, 0x00}},
	}}
	registerI2C(t, "fct-mcp9808-res", bus)
	openPeriph(t, hardware.DeviceConfig{Name: "room", Kind: hardware.KindMCP9808, Bus: "fct-mcp9808-res", Resolution: 9})
	require.NoError(t, bus.Close(), "every expected transfer happened")
	assert.Equal(t, 30*time.Millisecond, hardware.UpdateInterval(hardware.DeviceConfig{Kind: hardware.KindMCP9808, Resolution: 9}))
	assert.Equal(t, 250*time.Millisecond, hardware.UpdateInterval(hardware.DeviceConfig{Kind: hardware.KindMCP9808}))
	assert.Zero(t, hardware.UpdateInterval(hardware.DeviceConfig{Kind: hardware.KindADS1115}))
}

// Another chip at an MCP9808 address fails the device at open (io), naming what answered.
func TestPeriphMCP9808WrongChip(t *testing.T) {
	for _, c := range []struct {
		name string
		ops  []i2ctest.IO
		want string
	}{
		{"manufacturer", []i2ctest.IO{{Addr: 0x19, W: []byte{0x06}, R: []byte{0x00, 0x41}}}, "manufacturer ID 0x0041, not the MCP9808's 0x0054"},
		{"device", []i2ctest.IO{{Addr: 0x19, W: []byte{0x06}, R: []byte{0x00, 0x54}}, {Addr: 0x19, W: []byte{0x07}, R: []byte{0x02, 0x00}}}, "device ID 0x02, not the MCP9808's 0x04"},
	} {
		t.Run(c.name, func(t *testing.T) {
			bus := "fct-mcp9808-" + c.name
			registerI2C(t, bus, &i2ctest.Playback{DontPanic: true, Ops: c.ops})
			err := openError(t, hardware.Config{Backend: hardware.BackendPeriph, Devices: []hardware.DeviceConfig{
				{Name: "room", Kind: hardware.KindMCP9808, Bus: bus, Address: 0x19},
			}})
			require.ErrorContains(t, err, c.want)
			assert.Equal(t, hardware.ErrorIO, hardware.ErrorTypeOf(err))
		})
	}
}

// A pin that is missing because a periph driver failed says which driver and why.
func TestPeriphOpenErrorNamesFailedDrivers(t *testing.T) {
	orig := initHost
	t.Cleanup(func() { initHost = orig })
	initHost = func() (DriverState, error) {
		return DriverState{Loaded: []string{"sysfs-thermal"}, Failed: []DriverProblem{
			{Driver: "bcm2835-gpio", Reason: "need more access, try as root or setup udev rules: open /dev/gpiomem: permission denied"},
		}}, nil
	}
	err := openError(t, hardware.Config{Backend: hardware.BackendPeriph, Devices: []hardware.DeviceConfig{
		{Name: "heater_ssr", Kind: hardware.KindGPIOOutput, Pin: "GPIO17"},
	}})
	require.Error(t, err)
	assert.Contains(t, err.Error(), `device "heater_ssr"`)
	assert.Contains(t, err.Error(), "bcm2835-gpio (need more access, try as root or setup udev rules: open /dev/gpiomem: permission denied)")
}

func TestDriverStateSummary(t *testing.T) {
	d := DriverState{Loaded: []string{"a", "b"}}
	assert.Equal(t, "periph drivers loaded: [a, b]; none failed", d.Summary())
	d.Failed = []DriverProblem{{Driver: "c", Reason: "x"}, {Driver: "d", Reason: "y"}}
	assert.Equal(t, "periph drivers loaded: [a, b]; failed: c (x), d (y)", d.Summary())
}

func TestAccessHint(t *testing.T) {
	periphErr := errors.New("sysfs-i2c: are you member of group 'plugdev'? open /dev/i2c-1: permission denied")
	assert.Contains(t, accessHint(periphErr, "/dev/i2c-*", "i2c"), "sudo adduser fieldcol i2c")
	assert.Contains(t, accessHint(&os.PathError{Op: "open", Path: "/dev/spidev0.0", Err: syscall.EACCES}, "/dev/spidev*", "spi"), "group spi")
	assert.Empty(t, accessHint(errors.New("sysfs-i2c: bus #3 is not configured: no such file"), "/dev/i2c-*", "i2c"))
}
