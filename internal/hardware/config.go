package hardware

import (
	"errors"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/fieldcol/fieldcol/internal/confenum"
)

// BackendName selects the Backend behind the interfaces.
type BackendName string

const (
	// BackendSim is the simulated plant (the default).
	BackendSim BackendName = "sim"
	// BackendPeriph is real hardware through periph.io.
	BackendPeriph BackendName = "periph"
)

// DefaultMinOnTime is the shortest on- or off-time time-proportional switching makes when
// min_on_time is not set: one half-cycle of 50 Hz mains, the least a zero-crossing SSR can
// switch.
const DefaultMinOnTime = 10 * time.Millisecond

// DefaultTimeout is the per-read timeout when neither the device nor the Config sets one.
// It covers an ADS1115 conversion at 8 SPS (125 ms) with margin.
const DefaultTimeout = 250 * time.Millisecond

// Config is the hardware part of a component's configuration. Components embed it with
// `mapstructure:",squash"` so that its keys sit at the top level of the component.
type Config struct {
	// Backend is "sim" (default) or "periph".
	Backend BackendName `mapstructure:"backend"`
	// Timeout is the default per-read timeout of every device (default 250ms).
	Timeout time.Duration `mapstructure:"timeout"`
	// Devices are the devices this component uses.
	Devices []DeviceConfig `mapstructure:"devices"`
	// Sim configures the simulated plant; only used with backend "sim". The plant belongs
	// to a Registry: when two components share one and both configure it, their sim
	// sections must be equal, or one of them leaves it empty to join the plant the other
	// one configured.
	Sim SimConfig `mapstructure:"sim"`
}

// Range is an inclusive valid range of engineering values.
type Range struct {
	// Min is the lowest valid value.
	Min float64 `mapstructure:"min"`
	// Max is the highest valid value.
	Max float64 `mapstructure:"max"`
}

// Contains reports whether v lies in [Min, Max].
func (r Range) Contains(v float64) bool { return v >= r.Min && v <= r.Max }

// DeviceConfig describes one device.
type DeviceConfig struct {
	// Name is the device's unique name (hw.name), used by faults and the control loop.
	Name string `mapstructure:"name"`
	// Kind is the chip or driver, see Kinds.
	Kind Kind `mapstructure:"kind"`
	// Bus names the bus: the I2C bus ("1" for I2C1, the default), the SPI port ("SPI0.0",
	// the default), the 1-wire bus master id ("1", the default, from the w1 kernel driver).
	Bus string `mapstructure:"bus"`
	// Address is the I2C address (ADS1x15 default 0x48, MCP9808 default 0x18) or the 64-bit
	// 1-wire ROM code of a DS18B20 (ROM is easier).
	Address uint64 `mapstructure:"address"`
	// ROM is a DS18B20's name under /sys/bus/w1/devices, e.g. "28-0000075b4a2f"; with
	// backend periph a DS18B20 needs ROM or Address.
	ROM string `mapstructure:"rom"`
	// Resolution is a DS18B20's or an MCP9808's resolution in bits, 9..12. DS18B20: 0 leaves
	// the sensor as it is (12 bits from the factory); each bit doubles the conversion every
	// read waits for, 94 ms at 9 bits, 750 ms at 12; with backend periph it is written to
	// the sensor at open. MCP9808: 0 means 12 bits (0.0625 °C), which converts every 250 ms;
	// 9, 10 and 11 bits convert every 30, 65 and 130 ms.
	Resolution int `mapstructure:"resolution"`
	// Channel is the ADC channel (ADS1x15 0..3, MCP3008 0..7) or the thermal zone number.
	Channel int `mapstructure:"channel"`
	// Pin is the GPIO name for gpio_input, gpio_output and duty_output, e.g. "GPIO17".
	Pin string `mapstructure:"pin"`
	// ActiveLow inverts the logical level of a GPIO pin.
	ActiveLow bool `mapstructure:"active_low"`
	// Pull is a gpio_input's pull resistor: "up", "down", "off" (both pulls disabled) or
	// "none" (left as the board set it, the same on every model). Required for gpio_input
	// with backend periph, where a wrong guess reads a floating or inverted line.
	Pull Pull `mapstructure:"pull"`
	// Edge is the edge that gpio_input counts: "rising" (default), "falling" or "both".
	Edge Edge `mapstructure:"edge"`
	// Debounce is a gpio_input's debounce period, applied by the kernel to the line before
	// edges are counted (a reed switch or a relay contact bounces for a few ms); 0 is none.
	// The sim backend validates it and ignores it.
	Debounce time.Duration `mapstructure:"debounce"`
	// Scale multiplies the raw value (0 means 1).
	Scale float64 `mapstructure:"scale"`
	// Offset is added after scaling.
	Offset float64 `mapstructure:"offset"`
	// ValidRange, when set, makes reads outside it errors of type out_of_range.
	ValidRange *Range `mapstructure:"valid_range"`
	// Timeout is this device's per-read timeout (0 means Config.Timeout).
	Timeout time.Duration `mapstructure:"timeout"`
	// StuckAfter, when positive, makes a read an error of type stale once the raw value
	// has been identical for that many reads in a row (a noisy sensor never repeats itself
	// exactly; do not set it for a sensor whose resolution hides its noise).
	StuckAfter int `mapstructure:"stuck_after"`
	// FullScale is the ADC's full-scale voltage: the ADS1x15 gain is picked to cover it
	// (default 4.096 V), the MCP3008 reference voltage (default 3.3 V).
	FullScale float64 `mapstructure:"full_scale"`
	// DataRate is the ADS1x15 conversion rate in samples/s (default 860 for ADS1115, 3300
	// for ADS1015): a single-shot read waits one conversion, 125 ms at 8 SPS.
	DataRate int `mapstructure:"data_rate"`
	// Period is the duty_output's time-proportional switching period (default 2s); with
	// PWMFrequency set and a PWM-capable pin, hardware PWM is used instead.
	Period time.Duration `mapstructure:"period"`
	// PWMFrequency is the duty_output's hardware PWM frequency in Hz (0 = time-proportional).
	// Hardware PWM needs /dev/mem (root) and is refused on a Raspberry Pi 5.
	PWMFrequency float64 `mapstructure:"pwm_frequency"`
	// MinOnTime is the shortest on- and off-time of time-proportional switching (default
	// 10ms, one half-cycle of 50 Hz mains): a shorter on-time is not switched at all, a
	// shorter off-time leaves the output on for the whole period.
	MinOnTime time.Duration `mapstructure:"min_on_time"`
	// Signal is the sim plant signal the device reads or drives (sim backend only; see
	// Signals). Defaults by kind: temperature -> heater_temperature, analog ->
	// supply_voltage, gpio_input -> door, gpio_output -> motor_enable, duty_output -> heater.
	Signal string `mapstructure:"signal"`
}

// Validate checks the configuration; every message names the key.
func (c *Config) Validate() error {
	var errs []error
	switch c.Backend {
	case "", BackendSim, BackendPeriph:
	default:
		errs = append(errs, fmt.Errorf("backend: must be %q or %q, got %q", BackendSim, BackendPeriph, c.Backend))
	}
	if c.Timeout < 0 {
		errs = append(errs, fmt.Errorf("timeout: must not be negative, got %s", c.Timeout))
	}
	seen := make(map[string]int, len(c.Devices))
	for i := range c.Devices {
		d := &c.Devices[i]
		key := fmt.Sprintf("devices[%d]", i)
		if d.Name != "" {
			key = fmt.Sprintf("devices[%d] (%s)", i, d.Name)
			if j, dup := seen[d.Name]; dup {
				errs = append(errs, fmt.Errorf("%s.name: %q is already used by devices[%d]", key, d.Name, j))
			}
			seen[d.Name] = i
		}
		if err := d.validate(c.Backend); err != nil {
			errs = append(errs, fmt.Errorf("%s.%w", key, err))
		}
	}
	if c.Backend == "" || c.Backend == BackendSim {
		if err := c.Sim.validate(); err != nil {
			errs = append(errs, fmt.Errorf("sim.%w", err))
		}
	}
	return errors.Join(errs...)
}

func (d *DeviceConfig) validate(backend BackendName) error {
	if strings.TrimSpace(d.Name) == "" {
		return errors.New("name: must not be empty")
	}
	role := d.Kind.Role()
	if role == RoleUnknown {
		names := make([]string, 0, len(Kinds()))
		for _, k := range Kinds() {
			names = append(names, string(k))
		}
		return fmt.Errorf("kind: %q is not one of %s", d.Kind, strings.Join(names, ", "))
	}
	switch d.Kind {
	case KindADS1115, KindADS1015:
		if d.Channel < 0 || d.Channel > 3 {
			return fmt.Errorf("channel: must be 0..3 for %s, got %d", d.Kind, d.Channel)
		}
		if d.Address > 0x7f {
			return fmt.Errorf("address: must be a 7-bit I2C address, got %#x", d.Address)
		}
		if d.DataRate < 0 {
			return fmt.Errorf("data_rate: must not be negative, got %d", d.DataRate)
		}
		// Checked here rather than found when the chip opens: a device that fails to open
		// is retried, a configuration the chip cannot take never works.
		if maxRate := map[Kind]int{KindADS1115: 860, KindADS1015: 3300}[d.Kind]; d.DataRate > maxRate {
			return fmt.Errorf("data_rate: %s converts at most %d samples/s, got %d", d.Kind, maxRate, d.DataRate)
		}
		if d.FullScale > 6.144 {
			return fmt.Errorf("full_scale: %s reads at most 6.144 V, got %g", d.Kind, d.FullScale)
		}
	case KindMCP3008:
		if d.Channel < 0 || d.Channel > 7 {
			return fmt.Errorf("channel: must be 0..7 for mcp3008, got %d", d.Channel)
		}
	case KindMCP9808:
		if d.Address > 0x7f {
			return fmt.Errorf("address: must be a 7-bit I2C address, got %#x", d.Address)
		}
	case KindDS18B20:
		if d.ROM != "" {
			if _, err := ParseROM(d.ROM); err != nil {
				return fmt.Errorf("rom: %w", err)
			}
		} else if backend == BackendPeriph && d.Address == 0 {
			return errors.New("rom: the DS18B20's 1-wire name (see /sys/bus/w1/devices/28-*) is required with backend periph")
		}
		if err := d.validateW1(backend); err != nil {
			return err
		}
	case KindSoCThermal:
		if d.Channel < 0 {
			return fmt.Errorf("channel: the thermal zone must not be negative, got %d", d.Channel)
		}
	case KindGPIOInput, KindGPIOOutput, KindDutyOutput:
		if backend == BackendPeriph && d.Pin == "" {
			return fmt.Errorf("pin: must name the GPIO (e.g. GPIO17) for %s", d.Kind)
		}
	}
	if d.Pull == "" && backend == BackendPeriph && d.Kind == KindGPIOInput {
		return errors.New("pull: required for gpio_input with backend periph: up, down, off (no pull) or none (leave the board's pull as it is)")
	}
	if err := confenum.Check(d.Pull, pulls, pullChoices); err != nil {
		return fmt.Errorf("pull: %w", err)
	}
	if err := d.validateTiming(); err != nil {
		return err
	}
	if err := confenum.Check(d.Edge, edges, edgeChoices); err != nil {
		return fmt.Errorf("edge: %w", err)
	}
	if math.IsNaN(d.Scale) || math.IsInf(d.Scale, 0) || math.IsNaN(d.Offset) || math.IsInf(d.Offset, 0) {
		return errors.New("scale: scale and offset must be finite")
	}
	if r := d.ValidRange; r != nil && !(r.Min < r.Max) {
		return fmt.Errorf("valid_range: min (%g) must be below max (%g)", r.Min, r.Max)
	}
	if d.Timeout < 0 {
		return fmt.Errorf("timeout: must not be negative, got %s", d.Timeout)
	}
	if d.Resolution != 0 && d.Kind != KindDS18B20 && d.Kind != KindMCP9808 {
		return fmt.Errorf("resolution: only a ds18b20 or an mcp9808 has one, not a %s", d.Kind)
	}
	if d.Kind == KindMCP9808 && d.Resolution != 0 && (d.Resolution < 9 || d.Resolution > 12) {
		return fmt.Errorf("resolution: must be 9..12 bits, got %d", d.Resolution)
	}
	if d.StuckAfter < 0 {
		return fmt.Errorf("stuck_after: must not be negative, got %d", d.StuckAfter)
	}
	if d.FullScale < 0 {
		return fmt.Errorf("full_scale: must not be negative, got %g", d.FullScale)
	}
	if d.Period < 0 {
		return fmt.Errorf("period: must not be negative, got %s", d.Period)
	}
	if d.PWMFrequency < 0 {
		return fmt.Errorf("pwm_frequency: must not be negative, got %g", d.PWMFrequency)
	}
	if d.Signal != "" && backend != BackendPeriph {
		sig, ok := signalByName(d.Signal)
		if !ok {
			return fmt.Errorf("signal: %q is not a sim signal (%s)", d.Signal, strings.Join(SignalNames(), ", "))
		}
		if sig.role != role {
			return fmt.Errorf("signal: %q cannot be used by a %s device", d.Signal, d.Kind)
		}
	}
	return nil
}

// Pull is a gpio_input's pull resistor.
type Pull string

// Pull values.
const (
	// PullNone leaves a line's pull resistor as the board or an earlier user set it.
	PullNone Pull = "none"
	// PullUp enables the pull-up.
	PullUp Pull = "up"
	// PullDown enables the pull-down.
	PullDown Pull = "down"
	// PullOff disables both pulls.
	PullOff Pull = "off"
)

// The values each key takes; empty is the default.
var (
	pulls        = map[Pull]bool{"": true, PullUp: true, PullDown: true, PullOff: true, PullNone: true}
	edges        = map[Edge]bool{"": true, EdgeRising: true, EdgeFalling: true, EdgeBoth: true}
	backendNames = map[BackendName]bool{"": true, BackendSim: true, BackendPeriph: true}
)

const pullChoices = "up, down, off, none"

// UnmarshalText refuses an unknown pull while the configuration is decoded, so the error
// names the key.
func (p *Pull) UnmarshalText(text []byte) error {
	return confenum.Unmarshal(p, text, pulls, pullChoices)
}

// Edge is the edge a gpio_input counts.
type Edge string

// Edges; the empty Edge is rising.
const (
	EdgeRising  Edge = "rising"
	EdgeFalling Edge = "falling"
	EdgeBoth    Edge = "both"
)

const edgeChoices = "rising, falling, both"

// UnmarshalText refuses an unknown edge while the configuration is decoded.
func (e *Edge) UnmarshalText(text []byte) error {
	return confenum.Unmarshal(e, text, edges, edgeChoices)
}

// UnmarshalText refuses an unknown backend while the configuration is decoded.
func (b *BackendName) UnmarshalText(text []byte) error {
	return confenum.Unmarshal(b, text, backendNames, "sim, periph")
}

// UnmarshalText refuses an unknown kind while the configuration is decoded.
func (k *Kind) UnmarshalText(text []byte) error {
	return unmarshalListed(k, text, Kinds())
}

// unmarshalListed is confenum.Unmarshal for a key whose values are listed in order, which
// the error repeats.
func unmarshalListed[E ~string](v *E, text []byte, values []E) error {
	known := make(map[E]bool, len(values))
	names := make([]string, 0, len(values))
	for _, x := range values {
		known[x] = true
		names = append(names, string(x))
	}
	return confenum.Unmarshal(v, text, known, strings.Join(names, ", "))
}

// maxDebounce is the longest debounce the kernel takes: debounce_period_us is a __u32.
const maxDebounce = time.Duration(math.MaxUint32) * time.Microsecond

// validateTiming checks debounce and min_on_time, each only where it means something.
func (d *DeviceConfig) validateTiming() error {
	switch {
	case d.Debounce < 0:
		return fmt.Errorf("debounce: must not be negative, got %s", d.Debounce)
	case d.Debounce > maxDebounce:
		return fmt.Errorf("debounce: must be at most %s (the kernel counts it in µs in 32 bits), got %s", maxDebounce, d.Debounce)
	case d.Debounce != 0 && d.Kind != KindGPIOInput:
		return fmt.Errorf("debounce: applies to gpio_input only, not %s", d.Kind)
	case d.MinOnTime < 0:
		return fmt.Errorf("min_on_time: must not be negative, got %s", d.MinOnTime)
	case d.MinOnTime != 0 && d.Kind != KindDutyOutput:
		return fmt.Errorf("min_on_time: applies to duty_output only, not %s", d.Kind)
	case d.MinOnTime != 0 && d.PWMFrequency > 0:
		return errors.New("min_on_time: applies to time-proportional switching only; drop it or pwm_frequency")
	}
	if d.Kind == KindDutyOutput && d.PWMFrequency == 0 && d.Period >= 0 && 2*d.MinSwitchTime() >= d.DutyPeriod() {
		return fmt.Errorf("min_on_time: %s must be less than half the period (%s), or no duty could be switched", d.MinSwitchTime(), d.DutyPeriod())
	}
	return nil
}

// DutyPeriod is a duty_output's time-proportional period, 2s when unset.
func (d *DeviceConfig) DutyPeriod() time.Duration {
	if d.Period == 0 {
		return 2 * time.Second
	}
	return d.Period
}

// MinSwitchTime is a duty_output's minimum on- and off-time: MinOnTime, or
// DefaultMinOnTime when unset.
func (d *DeviceConfig) MinSwitchTime() time.Duration {
	if d.MinOnTime == 0 {
		return DefaultMinOnTime
	}
	return d.MinOnTime
}

// OneWireAddress is a ds18b20 device's ROM code: from ROM when set (validated already),
// else Address; a sim sensor with neither reads as a DS18B20 (family 0x28).
func (d *DeviceConfig) OneWireAddress() uint64 {
	if d.ROM != "" {
		if a, err := ParseROM(d.ROM); err == nil {
			return a
		}
	}
	if d.Address != 0 {
		return d.Address
	}
	return 0x28
}

// I2CBus is the I2C bus of an ads1115, ads1015 or mcp9808 device: "1" (I2C1) when unset.
func (d *DeviceConfig) I2CBus() string { return busOr(d.Bus, "1") }

// I2CAddress is the I2C address of an ads1115 or ads1015 device (0x48 when unset) or of
// an mcp9808 device (0x18 when unset).
func (d *DeviceConfig) I2CAddress() uint64 {
	switch {
	case d.Address != 0:
		return d.Address
	case d.Kind == KindMCP9808:
		return 0x18
	default:
		return 0x48
	}
}

// SPIPort is the SPI port of an mcp3008 device, periph's name: "SPI0.0" when unset.
func (d *DeviceConfig) SPIPort() string { return busOr(d.Bus, "SPI0.0") }

func busOr(bus, def string) string {
	if bus == "" {
		return def
	}
	return bus
}

// scale returns the configured scale, 1 when unset.
func (d *DeviceConfig) scale() float64 {
	if d.Scale == 0 {
		return 1
	}
	return d.Scale
}

// timeout returns the device's per-read timeout given the component default.
func (d *DeviceConfig) timeout(def time.Duration) time.Duration {
	switch {
	case d.Timeout > 0:
		return d.Timeout
	case def > 0:
		return def
	default:
		return DefaultTimeout
	}
}
