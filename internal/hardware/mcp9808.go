package hardware

import (
	"encoding/binary"
	"fmt"
	"syscall"
	"time"

	"periph.io/x/conn/v3/i2c"
	"periph.io/x/devices/v3/mcp9808"
)

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

// mcp9808Opts are periph's options for dc at addr, its resolution in periph's names (Low
// is 0.5 °C, Maximum 0.0625 °C).
func mcp9808Opts(dc *DeviceConfig, addr uint16) *mcp9808.Opts {
	o := &mcp9808.Opts{Addr: int(addr), Res: mcp9808.Maximum}
	switch mcp9808Bits(dc) {
	case 9:
		o.Res = mcp9808.Low
	case 10:
		o.Res = mcp9808.Medium
	case 11:
		o.Res = mcp9808.High
	}
	return o
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

// checkMCP9808 reads the chip's identity (datasheet registers 0x06 and 0x07): another chip
// at the address, such as a second sensor of another make, would otherwise be read as an
// MCP9808 and give plausible but wrong temperatures.
func checkMCP9808(d *i2c.Dev) error {
	var id [2]byte
	if err := d.Tx([]byte{0x06}, id[:]); err != nil {
		return err
	}
	if mfr := binary.BigEndian.Uint16(id[:]); mfr != 0x0054 {
		return fmt.Errorf("the chip at %#02x has manufacturer ID %#04x, not the MCP9808's 0x0054 (%w)", d.Addr, mfr, syscall.EIO)
	}
	if err := d.Tx([]byte{0x07}, id[:]); err != nil {
		return err
	}
	if id[0] != 0x04 {
		return fmt.Errorf("the chip at %#02x has device ID %#02x, not the MCP9808's 0x04 (%w)", d.Addr, id[0], syscall.EIO)
	}
	return nil
}
