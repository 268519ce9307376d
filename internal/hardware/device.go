package hardware

import "context"

// Kind names the chip or driver behind a device. It fixes the device's Role and BusType,
// and it is the same for both backends so that one configuration runs on sim and on a Pi.
type Kind string

const (
	// KindADS1115 is one single-ended channel of a 16-bit ADS1115 ADC on I2C.
	KindADS1115 Kind = "ads1115"
	// KindADS1015 is one single-ended channel of a 12-bit ADS1015 ADC on I2C.
	KindADS1015 Kind = "ads1015"
	// KindMCP3008 is one single-ended channel of a 10-bit MCP3008 ADC on SPI.
	KindMCP3008 Kind = "mcp3008"
	// KindDS18B20 is a DS18B20 temperature sensor on 1-wire.
	KindDS18B20 Kind = "ds18b20"
	// KindMCP9808 is an MCP9808 temperature sensor on I2C.
	KindMCP9808 Kind = "mcp9808"
	// KindSoCThermal is the SoC temperature from the kernel's sysfs thermal zone.
	KindSoCThermal Kind = "soc_thermal"
	// KindGPIOInput is a GPIO input pin whose edges are counted.
	KindGPIOInput Kind = "gpio_input"
	// KindGPIOOutput is a GPIO output pin driven high or low.
	KindGPIOOutput Kind = "gpio_output"
	// KindDutyOutput is a GPIO pin driven at a duty cycle (0..1): hardware PWM where the pin
	// supports it, time-proportional switching otherwise (the usual way to drive a heater SSR).
	KindDutyOutput Kind = "duty_output"
)

// Role is what a device does, i.e. which interface it implements.
type Role int

const (
	// RoleUnknown is the role of an unknown Kind.
	RoleUnknown Role = iota
	// RoleAnalogInput devices implement AnalogInput.
	RoleAnalogInput
	// RoleTemperatureInput devices implement TemperatureInput.
	RoleTemperatureInput
	// RoleDigitalInput devices implement DigitalInput.
	RoleDigitalInput
	// RoleDigitalOutput devices implement DigitalOutput.
	RoleDigitalOutput
	// RoleDutyOutput devices implement DutyOutput.
	RoleDutyOutput
)

// Bus types, the values of the hw.type attribute.
const (
	BusI2C     = "i2c"
	BusSPI     = "spi"
	BusOneWire = "onewire"
	BusGPIO    = "gpio"
	// BusSysfs is the kernel's sysfs (the SoC thermal zone): no bus transfer at all.
	BusSysfs = "sysfs"
)

// Role returns the role of devices of kind k, or RoleUnknown.
func (k Kind) Role() Role {
	switch k {
	case KindADS1115, KindADS1015, KindMCP3008:
		return RoleAnalogInput
	case KindDS18B20, KindMCP9808, KindSoCThermal:
		return RoleTemperatureInput
	case KindGPIOInput:
		return RoleDigitalInput
	case KindGPIOOutput:
		return RoleDigitalOutput
	case KindDutyOutput:
		return RoleDutyOutput
	default:
		return RoleUnknown
	}
}

// BusType returns the bus that devices of kind k sit on (the hw.type attribute).
func (k Kind) BusType() string {
	switch k {
	case KindADS1115, KindADS1015, KindMCP9808:
		return BusI2C
	case KindMCP3008:
		return BusSPI
	case KindDS18B20:
		return BusOneWire
	case KindSoCThermal:
		return BusSysfs
	default:
		return BusGPIO
	}
}

// Kinds lists every known Kind, in documentation order.
func Kinds() []Kind {
	return []Kind{KindADS1115, KindADS1015, KindMCP3008, KindDS18B20, KindMCP9808,
		KindSoCThermal, KindGPIOInput, KindGPIOOutput, KindDutyOutput}
}

// Info identifies a device in telemetry.
type Info struct {
	// Name is the configured name (the hw.name attribute); unique in a process.
	Name string
	// ID is the stable hardware address (the hw.id attribute), e.g. "i2c1/0x48/ch0",
	// "spi0.0/ch3", "onewire/28-0000075b4a2f", "GPIO17", "thermal_zone0".
	ID string
	// Kind is the chip or driver.
	Kind Kind
	// BusType is the hw.type attribute: i2c, spi, onewire, gpio or sysfs.
	BusType string
}

// Device is what every device implements.
type Device interface {
	// Info identifies the device.
	Info() Info
}

// Every read and write below honours ctx: when ctx is done first, the call returns an
// *Error of type ErrorTimeout. The device's configured per-read timeout is applied on top
// of ctx, so a caller that passes context.Background() is still bounded. A read that returns
// a value outside the configured valid range returns that value together with an *Error of
// type ErrorOutOfRange; NaN or Inf returns an *Error of type ErrorInvalid.

// AnalogInput is an ADC channel.
type AnalogInput interface {
	Device
	// ReadVoltage returns the measured voltage times the configured scale plus offset
	// (scale corrects a voltage divider, so the unit stays V).
	ReadVoltage(ctx context.Context) (float64, error)
}

// TemperatureInput is a temperature sensor.
type TemperatureInput interface {
	Device
	// ReadTemperature returns degrees Celsius, times scale plus offset (a calibration).
	ReadTemperature(ctx context.Context) (float64, error)
}

// DigitalInput is an input pin with edge counting.
type DigitalInput interface {
	Device
	// ReadLevel returns the logical level (after active_low inversion).
	ReadLevel(ctx context.Context) (bool, error)
	// Edges returns how many configured edges (rising by default) were seen since open; it
	// only grows.
	Edges(ctx context.Context) (uint64, error)
}

// DigitalOutput is an output pin.
type DigitalOutput interface {
	Device
	// WriteLevel drives the pin to the logical level (after active_low inversion).
	WriteLevel(ctx context.Context, level bool) error
	// Level returns the last level written successfully.
	Level() bool
}

// DutyOutput is an output driven at a duty cycle, e.g. a heater SSR.
type DutyOutput interface {
	Device
	// WriteDuty sets the duty cycle; values are clamped to [0, 1], NaN counts as 0.
	WriteDuty(ctx context.Context, duty float64) error
	// Duty returns the last duty cycle written successfully.
	Duty() float64
}
