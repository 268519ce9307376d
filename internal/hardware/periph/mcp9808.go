package periph

import (
	"encoding/binary"
	"fmt"
	"syscall"

	"periph.io/x/conn/v3/i2c"
	"periph.io/x/devices/v3/mcp9808"

	"github.com/fieldcol/fieldcol/internal/hardware"
)

// mcp9808Opts are periph's options for dc at addr, its resolution in periph's names (Low
// is 0.5 °C, Maximum 0.0625 °C).
func mcp9808Opts(dc *hardware.DeviceConfig, addr uint16) *mcp9808.Opts {
	o := &mcp9808.Opts{Addr: int(addr), Res: mcp9808.Maximum}
	switch hardware.Bits(*dc) {
	case 9:
		o.Res = mcp9808.Low
	case 10:
		o.Res = mcp9808.Medium
	case 11:
		o.Res = mcp9808.High
	}
	return o
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
