package hardware

import (
	"fmt"
	"sort"
	"strings"
	"time"
)

// What a sensor's conversion takes, by chip: the control loop's configuration checks its
// period and its staleness limit against it, and the front its read timeout. The backends
// only read; this is the datasheets' part, the same on sim and periph.

// W1ReadMargin is what a read takes beyond the conversion: reset, Match ROM and the
// 9-byte scratchpad read (about 10 ms bit-banged by w1-gpio), the kernel's rounding of its
// sleep (95 ms for the datasheet's 93.75), its retries of a scratchpad read that fails the
// CRC (up to 5), and the bus master's periodic slave search, which holds the bus.
const W1ReadMargin = 100 * time.Millisecond

// w1Family is one 1-wire family code that the kernel's w1_therm driver binds to.
type w1Family struct {
	chip string
	// adjustable: the chip has a configuration register with the resolution (9..12 bits);
	// a DS18S20 has none and always converts in 750 ms.
	adjustable bool
}

// w1Families are w1_therm's families (W1_THERM_* in drivers/w1/slaves/w1_therm.c).
var w1Families = map[byte]w1Family{
	0x10: {chip: "DS18S20"},
	0x22: {chip: "DS1822", adjustable: true},
	0x28: {chip: "DS18B20", adjustable: true},
	0x3b: {chip: "DS1825", adjustable: true},
	0x42: {chip: "DS28EA00", adjustable: true},
}

// w1FamilyCodes lists w1Families' codes for error messages.
func w1FamilyCodes() string {
	codes := make([]string, 0, len(w1Families))
	for c := range w1Families {
		codes = append(codes, fmt.Sprintf("%02x", c))
	}
	sort.Strings(codes)
	return strings.Join(codes, ", ")
}

// conversionAt is the datasheet's maximum conversion time at a resolution (DS18B20 table
// "Thermometer Resolution Configuration": tCONV/8 per bit below 12).
func conversionAt(bits int) time.Duration {
	return 750 * time.Millisecond >> (12 - bits)
}

// w1Bits is the resolution a ds18b20 device converts at: the configured one, or 12 bits,
// the factory setting a sensor powers up with.
func w1Bits(dc *DeviceConfig) int {
	if dc.Resolution != 0 {
		return dc.Resolution
	}
	return 12
}

// ConversionTime is how long every read of dc waits for the sensor to convert: 93.75,
// 187.5, 375 or 750 ms for a DS18B20 at 9, 10, 11 or 12 bits (12 when resolution is not
// set, the power-on default), 750 ms for a DS18S20, and 0 for a device that is not a
// 1-wire thermometer.
func ConversionTime(dc DeviceConfig) time.Duration {
	if dc.Kind != KindDS18B20 {
		return 0
	}
	f, ok := w1Families[byte(dc.OneWireAddress())]
	if ok && !f.adjustable {
		return 750 * time.Millisecond
	}
	bits := w1Bits(&dc)
	if bits < 9 || bits > 12 {
		// Refused by Validate; the longest conversion keeps the caller's checks safe.
		return 750 * time.Millisecond
	}
	return conversionAt(bits)
}

// w1ReadTimeout is the shortest timeout a read of dc can succeed in, 0 for a device that
// is not a 1-wire thermometer.
func w1ReadTimeout(dc *DeviceConfig) time.Duration {
	c := ConversionTime(*dc)
	if c == 0 {
		return 0
	}
	return c + W1ReadMargin
}

// ConversionChip words what dc converts at for a config error: "DS18B20 at 12 bits",
// "DS18S20"; "" for a device that is not a 1-wire thermometer.
func ConversionChip(dc DeviceConfig) string {
	if dc.Kind != KindDS18B20 {
		return ""
	}
	f, ok := w1Families[byte(dc.OneWireAddress())]
	if !ok {
		f = w1Families[0x28]
	}
	if !f.adjustable {
		return f.chip
	}
	return fmt.Sprintf("%s at %d bits", f.chip, w1Bits(&dc))
}

// ConversionAdvice says how dc's reads can fit in budget, for a config error: the highest
// resolution whose read (conversion plus the bus) fits, or that only a longer period does.
func ConversionAdvice(dc DeviceConfig, budget time.Duration) string {
	f, ok := w1Families[byte(dc.OneWireAddress())]
	if ok && !f.adjustable {
		return fmt.Sprintf("a %s always converts in 750ms: lengthen the period", f.chip)
	}
	for bits := w1Bits(&dc) - 1; bits >= 9; bits-- {
		if conversionAt(bits)+W1ReadMargin < budget {
			return fmt.Sprintf("set resolution: %d for %s or a longer period", bits, conversionAt(bits).Round(time.Millisecond))
		}
	}
	return fmt.Sprintf("even at resolution: 9 a read takes up to %s (%s conversion plus the bus): lengthen the period",
		(conversionAt(9) + W1ReadMargin).Round(time.Millisecond), conversionAt(9).Round(time.Millisecond))
}

// validateW1 checks the keys of a ds18b20 device that the kernel's driver depends on.
func (d *DeviceConfig) validateW1(backend BackendName) error {
	key := "rom"
	if d.ROM == "" {
		key = "address"
	}
	fam := byte(d.OneWireAddress())
	f, ok := w1Families[fam]
	if !ok {
		return fmt.Errorf("%s: family %02x is not a thermometer the kernel's w1_therm driver reads (families %s)", key, fam, w1FamilyCodes())
	}
	if d.Resolution != 0 {
		if !f.adjustable {
			return fmt.Errorf("resolution: a %s (family %02x) has a fixed resolution; remove resolution", f.chip, fam)
		}
		if d.Resolution < 9 || d.Resolution > 12 {
			return fmt.Errorf("resolution: must be 9..12 bits, got %d", d.Resolution)
		}
	}
	if c := ConversionTime(*d); backend == BackendPeriph && d.Timeout > 0 && d.Timeout <= c {
		return fmt.Errorf("timeout: %s is not longer than the %s conversion of the %s, so every read would time out; leave timeout unset (the conversion plus %s) or lower resolution",
			d.Timeout, c.Round(time.Millisecond), ConversionChip(*d), W1ReadMargin)
	}
	return nil
}

// mcp9808Conversions are the MCP9808's typical conversion times by resolution in bits
// (datasheet table 5-1 and register 0x08: 0.5, 0.25, 0.125 and 0.0625 °C). The chip
// converts continuously; a read returns the last finished conversion.
var mcp9808Conversions = map[int]time.Duration{
	9: 30 * time.Millisecond, 10: 65 * time.Millisecond, 11: 130 * time.Millisecond, 12: 250 * time.Millisecond,
}

// mcp9808Bits is the resolution dc configures: 12 bits (periph's Maximum, the chip's
// power-on 0.0625 °C) unless resolution says otherwise.
func mcp9808Bits(dc *DeviceConfig) int {
	if dc.Resolution == 0 {
		return 12
	}
	return dc.Resolution
}

// UpdateInterval is how often a sensor that converts on its own produces a new value: an
// MCP9808's conversion time at its resolution, 0 for every other device (a read either
// converts, as a DS18B20's, see ConversionTime, or samples at once). A loop faster than it
// would act several times on one reading.
func UpdateInterval(dc DeviceConfig) time.Duration {
	if dc.Kind != KindMCP9808 {
		return 0
	}
	return mcp9808Conversions[mcp9808Bits(&dc)]
}

// Bits is the resolution in bits an MCP9808 converts at (resolution, or its default 12).
func Bits(dc DeviceConfig) int { return mcp9808Bits(&dc) }

// UpdateAdvice says how dc can produce a value every period, for a config error.
func UpdateAdvice(dc DeviceConfig, period time.Duration) string {
	for bits := mcp9808Bits(&dc) - 1; bits >= 9; bits-- {
		if mcp9808Conversions[bits] <= period {
			return fmt.Sprintf("set resolution: %d (%s) or a longer period", bits, mcp9808Conversions[bits])
		}
	}
	return fmt.Sprintf("even at resolution: 9 it converts every %s: lengthen the period", mcp9808Conversions[9])
}
