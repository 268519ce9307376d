package hardware

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		want string // substring of the error; empty means valid
	}{
		{name: "empty is valid", cfg: Config{}},
		{name: "every kind on sim", cfg: Config{Devices: func() []DeviceConfig {
			var out []DeviceConfig
			for _, k := range Kinds() {
				out = append(out, DeviceConfig{Name: string(k), Kind: k})
			}
			return out
		}()}},
		{name: "bad backend", cfg: Config{Backend: "gpio"}, want: `backend: must be "sim" or "periph", got "gpio"`},
		{name: "negative timeout", cfg: Config{Timeout: -time.Second}, want: "timeout: must not be negative"},
		{name: "missing name", cfg: Config{Devices: []DeviceConfig{{Kind: KindDS18B20}}}, want: "devices[0].name: must not be empty"},
		{name: "duplicate name", cfg: Config{Devices: []DeviceConfig{{Name: "a", Kind: KindDS18B20}, {Name: "a", Kind: KindMCP9808}}},
			want: `devices[1] (a).name: "a" is already used by devices[0]`},
		{name: "unknown kind", cfg: Config{Devices: []DeviceConfig{{Name: "a", Kind: "bme280"}}}, want: `devices[0] (a).kind: "bme280" is not one of ads1115`},
		{name: "ads channel", cfg: Config{Devices: []DeviceConfig{{Name: "a", Kind: KindADS1115, Channel: 4}}}, want: "devices[0] (a).channel: must be 0..3 for ads1115, got 4"},
		{name: "mcp3008 channel", cfg: Config{Devices: []DeviceConfig{{Name: "a", Kind: KindMCP3008, Channel: 8}}}, want: "devices[0] (a).channel: must be 0..7"},
		{name: "i2c address", cfg: Config{Devices: []DeviceConfig{{Name: "a", Kind: KindMCP9808, Address: 0x100}}}, want: "devices[0] (a).address: must be a 7-bit I2C address"},
		{name: "ds18b20 rom on periph", cfg: Config{Backend: BackendPeriph, Devices: []DeviceConfig{{Name: "a", Kind: KindDS18B20}}}, want: "devices[0] (a).rom: the DS18B20's 1-wire name (see /sys/bus/w1/devices/28-*) is required with backend periph"},
		{name: "bad rom", cfg: Config{Devices: []DeviceConfig{{Name: "a", Kind: KindDS18B20, ROM: "28-xyz"}}}, want: `devices[0] (a).rom: "28-xyz" is not a 1-wire device name`},
		{name: "rom on periph", cfg: Config{Backend: BackendPeriph, Devices: []DeviceConfig{{Name: "a", Kind: KindDS18B20, ROM: "28-0000075b4a2f"}}}},
		{name: "pin on periph", cfg: Config{Backend: BackendPeriph, Devices: []DeviceConfig{{Name: "door", Kind: KindGPIOInput}}}, want: "devices[0] (door).pin: must name the GPIO"},
		{name: "pull", cfg: Config{Devices: []DeviceConfig{{Name: "a", Kind: KindGPIOInput, Pull: "sideways"}}}, want: `devices[0] (a).pull: "sideways" is not one of up, down, off, none`},
		{name: "pull required on periph", cfg: Config{Backend: BackendPeriph, Devices: []DeviceConfig{{Name: "door", Kind: KindGPIOInput, Pin: "GPIO17"}}},
			want: "devices[0] (door).pull: required for gpio_input with backend periph: up, down, off (no pull) or none (leave the board's pull as it is)"},
		{name: "pull optional on sim", cfg: Config{Devices: []DeviceConfig{{Name: "door", Kind: KindGPIOInput, Pin: "GPIO17"}}}},
		{name: "pull optional for outputs", cfg: Config{Backend: BackendPeriph, Devices: []DeviceConfig{{Name: "ssr", Kind: KindGPIOOutput, Pin: "GPIO17"}}}},
		{name: "every pull on periph", cfg: Config{Backend: BackendPeriph, Devices: []DeviceConfig{
			{Name: "a", Kind: KindGPIOInput, Pin: "GPIO4", Pull: "up"}, {Name: "b", Kind: KindGPIOInput, Pin: "GPIO5", Pull: "down"},
			{Name: "c", Kind: KindGPIOInput, Pin: "GPIO6", Pull: "off"}, {Name: "d", Kind: KindGPIOInput, Pin: "GPIO7", Pull: "none"}}}},
		{name: "debounce", cfg: Config{Devices: []DeviceConfig{{Name: "reed", Kind: KindGPIOInput, Debounce: 5 * time.Millisecond}}}},
		{name: "negative debounce", cfg: Config{Devices: []DeviceConfig{{Name: "reed", Kind: KindGPIOInput, Debounce: -time.Millisecond}}},
			want: "devices[0] (reed).debounce: must not be negative, got -1ms"},
		{name: "debounce beyond the kernel's", cfg: Config{Devices: []DeviceConfig{{Name: "reed", Kind: KindGPIOInput, Debounce: 2 * time.Hour}}},
			want: "devices[0] (reed).debounce: must be at most 1h11m34.967295s"},
		{name: "debounce on an output", cfg: Config{Devices: []DeviceConfig{{Name: "ssr", Kind: KindGPIOOutput, Debounce: time.Millisecond}}},
			want: "devices[0] (ssr).debounce: applies to gpio_input only, not gpio_output"},
		{name: "min_on_time", cfg: Config{Devices: []DeviceConfig{{Name: "h", Kind: KindDutyOutput, Period: time.Second, MinOnTime: 20 * time.Millisecond}}}},
		{name: "negative min_on_time", cfg: Config{Devices: []DeviceConfig{{Name: "h", Kind: KindDutyOutput, MinOnTime: -1}}},
			want: "devices[0] (h).min_on_time: must not be negative"},
		{name: "min_on_time on an input", cfg: Config{Devices: []DeviceConfig{{Name: "d", Kind: KindGPIOInput, MinOnTime: time.Millisecond}}},
			want: "devices[0] (d).min_on_time: applies to duty_output only, not gpio_input"},
		{name: "min_on_time with pwm", cfg: Config{Devices: []DeviceConfig{{Name: "fan", Kind: KindDutyOutput, PWMFrequency: 25000, MinOnTime: time.Millisecond}}},
			want: "devices[0] (fan).min_on_time: applies to time-proportional switching only"},
		{name: "min_on_time half the period", cfg: Config{Devices: []DeviceConfig{{Name: "h", Kind: KindDutyOutput, Period: 100 * time.Millisecond, MinOnTime: 50 * time.Millisecond}}},
			want: "devices[0] (h).min_on_time: 50ms must be less than half the period (100ms)"},
		{name: "default min_on_time and a short period", cfg: Config{Devices: []DeviceConfig{{Name: "h", Kind: KindDutyOutput, Period: 20 * time.Millisecond}}},
			want: "devices[0] (h).min_on_time: 10ms must be less than half the period (20ms)"},
		{name: "edge", cfg: Config{Devices: []DeviceConfig{{Name: "a", Kind: KindGPIOInput, Edge: "up"}}}, want: "devices[0] (a).edge: \"up\" is not one of rising, falling, both"},
		{name: "range", cfg: Config{Devices: []DeviceConfig{{Name: "a", Kind: KindDS18B20, ValidRange: &Range{Min: 5, Max: 5}}}}, want: "devices[0] (a).valid_range: min (5) must be below max (5)"},
		{name: "device timeout", cfg: Config{Devices: []DeviceConfig{{Name: "a", Kind: KindDS18B20, Timeout: -1}}}, want: "devices[0] (a).timeout: must not be negative"},
		{name: "stuck_after", cfg: Config{Devices: []DeviceConfig{{Name: "a", Kind: KindDS18B20, StuckAfter: -1}}}, want: "devices[0] (a).stuck_after: must not be negative"},
		{name: "unknown signal", cfg: Config{Devices: []DeviceConfig{{Name: "a", Kind: KindDS18B20, Signal: "oven"}}}, want: `devices[0] (a).signal: "oven" is not a sim signal`},
		{name: "signal of another role", cfg: Config{Devices: []DeviceConfig{{Name: "a", Kind: KindDS18B20, Signal: SignalHeater}}}, want: `devices[0] (a).signal: "heater" cannot be used by a ds18b20 device`},
		{name: "signal ignored on periph", cfg: Config{Backend: BackendPeriph, Devices: []DeviceConfig{{Name: "a", Kind: KindMCP9808, Signal: "oven"}}}},
		{name: "time_scale", cfg: Config{Sim: SimConfig{TimeScale: -1}}, want: "sim.time_scale: must be a finite non-negative number"},
		{name: "heater time constant", cfg: Config{Sim: SimConfig{Heater: SimHeaterConfig{TimeConstant: -time.Second}}}, want: "sim.heater.time_constant: must not be negative"},
		{name: "dead time", cfg: Config{Sim: SimConfig{Heater: SimHeaterConfig{DeadTime: 2 * time.Hour}}}, want: "sim.heater.dead_time: must be at most 1h"},
		{name: "fault kind", cfg: Config{Sim: SimConfig{Faults: []FaultSpec{{Device: "a", Kind: "melted"}}}}, want: `sim.faults[0].kind: "melted" is not one of`},
		{name: "fault device", cfg: Config{Sim: SimConfig{Faults: []FaultSpec{{Kind: FaultNaN}}}}, want: "sim.faults[0].device: must name a device"},
		{name: "fault at", cfg: Config{Sim: SimConfig{Faults: []FaultSpec{{Device: "a", Kind: FaultNaN, At: -time.Second}}}}, want: "sim.faults[0].at: must not be negative"},
		{name: "sim ignored on periph", cfg: Config{Backend: BackendPeriph, Sim: SimConfig{TimeScale: -1}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.Validate()
			if tt.want == "" {
				require.NoError(t, err)
				return
			}
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.want)
		})
	}
}

func TestKindsHaveRoleAndBus(t *testing.T) {
	for _, k := range Kinds() {
		assert.NotEqual(t, RoleUnknown, k.Role(), k)
		assert.Contains(t, []string{BusI2C, BusSPI, BusOneWire, BusGPIO, BusSysfs}, k.BusType(), k)
	}
	assert.Equal(t, RoleUnknown, Kind("nope").Role())
}

func TestDeviceID(t *testing.T) {
	tests := []struct {
		dc   DeviceConfig
		want string
	}{
		{DeviceConfig{Kind: KindADS1115}, "i2c1/0x48/ch0"},
		{DeviceConfig{Kind: KindADS1015, Bus: "3", Address: 0x49, Channel: 2}, "i2c3/0x49/ch2"},
		{DeviceConfig{Kind: KindMCP9808}, "i2c1/0x18"},
		{DeviceConfig{Kind: KindMCP3008, Channel: 5}, "spi0.0/ch5"},
		{DeviceConfig{Kind: KindMCP3008, Bus: "SPI0.1"}, "spi0.1/ch0"},
		{DeviceConfig{Kind: KindDS18B20, Address: 0xee0000075b4a2f28}, "onewire1/28-0000075b4a2f"},
		{DeviceConfig{Kind: KindDS18B20, ROM: "28-0000075B4A2F", Bus: "2"}, "onewire2/28-0000075b4a2f"},
		{DeviceConfig{Kind: KindSoCThermal, Channel: 1}, "thermal_zone1"},
		{DeviceConfig{Kind: KindGPIOInput, Pin: "GPIO17"}, "GPIO17"},
		{DeviceConfig{Name: "door", Kind: KindGPIOInput}, "door"},
	}
	for _, tt := range tests {
		assert.Equal(t, tt.want, deviceID(&tt.dc))
	}
}

func TestHealth(t *testing.T) {
	errX := &Error{Device: "d", Type: ErrorNack}
	tests := []struct {
		name      string
		failAfter int
		outcomes  []error
		want      []State
	}{
		{"ok stays ok", 0, []error{nil, nil}, []State{StateOK, StateOK}},
		{"default fails after 3", 0, []error{errX, errX, errX, errX}, []State{StateDegraded, StateDegraded, StateFailed, StateFailed}},
		{"recovers at once", 2, []error{errX, errX, nil, errX}, []State{StateDegraded, StateFailed, StateOK, StateDegraded}},
		{"fail after 1", 1, []error{errX}, []State{StateFailed}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := Health{FailAfter: tt.failAfter}
			for i, err := range tt.outcomes {
				assert.Equal(t, tt.want[i], h.Observe(err), "outcome %d", i)
			}
			assert.Equal(t, tt.want[len(tt.want)-1], h.State())
		})
	}
}
