package probe

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strconv"
	"strings"

	"periph.io/x/conn/v3/i2c"
	"periph.io/x/conn/v3/i2c/i2creg"

	"github.com/fieldcol/fieldcol/internal/hardware"
)

// The addresses i2cdetect scans by default: below 0x08 and above 0x77 are reserved
// (general call, CBUS, high-speed and 10-bit prefixes).
const (
	firstScanAddr = 0x08
	lastScanAddr  = 0x77
	// maxScanErrors stops a scan after that many errors that are not a NACK: a bus that
	// answers every address with EIO is broken, and reading on gains nothing.
	maxScanErrors = 3
)

// I2CSection lists the I2C buses and what answered on them.
type I2CSection struct {
	Buses []I2CBus `json:"buses"`
	Note  string   `json:"note,omitempty"`
}

// I2CBus is one /dev/i2c-N.
type I2CBus struct {
	Number int    `json:"number"`
	Path   string `json:"path"`
	// Adapter is the kernel's name of the bus (/sys/class/i2c-dev/i2c-N/name).
	Adapter string `json:"adapter,omitempty"`
	// ConfigBus is what a device's bus key says for this bus.
	ConfigBus string      `json:"config_bus"`
	Scanned   bool        `json:"scanned"`
	Devices   []I2CDevice `json:"devices"`
	Note      string      `json:"note,omitempty"`
}

// I2CDevice is an address that answered, or that a kernel driver holds.
type I2CDevice struct {
	Address uint16 `json:"address"`
	// Chip is the chip recognised there ("MCP9808", "ADS1x15"), if any.
	Chip string `json:"chip,omitempty"`
	// Kind is the device kind a config would use for it.
	Kind   hardware.Kind `json:"kind,omitempty"`
	Detail string        `json:"detail,omitempty"`
	// KernelDriver is set for an address the kernel has bound (i2cdetect's UU): it is
	// not read.
	KernelDriver string `json:"kernel_driver,omitempty"`
	Error        string `json:"error,omitempty"`
}

func probeI2C(ctx context.Context, root rootFS, mods ModuleSection, noScan bool) I2CSection {
	s := I2CSection{Buses: []I2CBus{}}
	for _, p := range root.glob("/dev/i2c-*") {
		n, ok := parseDevNumber(path.Base(p), "i2c-")
		if !ok {
			continue
		}
		b := I2CBus{Number: n, Path: p, ConfigBus: strconv.Itoa(n), Devices: []I2CDevice{}}
		if name, err := root.read(fmt.Sprintf("/sys/class/i2c-dev/i2c-%d/name", n)); err == nil {
			b.Adapter = strings.TrimSpace(string(name))
		}
		kernel := kernelClients(root, n)
		switch {
		case noScan:
			b.Note = "not scanned (--no-scan)"
			b.Devices = kernelOnly(kernel)
		case ctx.Err() != nil:
			b.Note = "not scanned: interrupted"
			b.Devices = kernelOnly(kernel)
		default:
			scanBus(ctx, &b, kernel)
		}
		s.Buses = append(s.Buses, b)
	}
	sort.Slice(s.Buses, func(i, j int) bool { return s.Buses[i].Number < s.Buses[j].Number })
	if len(s.Buses) == 0 {
		s.Note = "none found: no /dev/i2c-*: I2C is off (sudo raspi-config nonint do_i2c 0, or dtparam=i2c_arm=on in /boot/firmware/config.txt, then reboot)"
		if m := mods.find("i2c-dev"); m != nil && m.State == moduleNotLoaded {
			s.Note += ", or the i2c-dev module is not loaded (sudo modprobe i2c-dev)"
		}
	}
	return s
}

// kernelClients are the addresses of bus n that the kernel has a client for, with the
// client's name and driver: /sys/bus/i2c/devices/<bus>-<addr>/{name,driver}.
func kernelClients(root rootFS, n int) map[uint16]string {
	out := map[uint16]string{}
	for _, p := range root.glob(fmt.Sprintf("/sys/bus/i2c/devices/%d-*", n)) {
		bus, addr, ok := parseI2CClient(path.Base(p))
		if !ok || bus != n {
			continue
		}
		who := "a kernel client"
		if name, err := root.read(p + "/name"); err == nil && strings.TrimSpace(string(name)) != "" {
			who = strings.TrimSpace(string(name))
		}
		if drv, err := readlink(root, p+"/driver"); err == nil {
			who += " (driver " + path.Base(drv) + ")"
		}
		out[addr] = who
	}
	return out
}

func kernelOnly(kernel map[uint16]string) []I2CDevice {
	out := []I2CDevice{}
	for addr, who := range kernel {
		out = append(out, I2CDevice{Address: addr, KernelDriver: who})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Address < out[j].Address })
	return out
}

// scanBus opens the bus the way a config's bus key does (i2creg by number) and reads one
// byte from every address, as `i2cdetect -r` does. periph's sysfs I2C offers only
// I2C_RDWR transfers: an empty Tx is a no-op there, so the SMBus quick write that
// i2cdetect uses by default is not available; a one-byte read is harmless to every chip
// fieldcol reads (it returns the register the pointer is on).
func scanBus(ctx context.Context, b *I2CBus, kernel map[uint16]string) {
	bus, err := i2creg.Open(b.ConfigBus)
	if err != nil {
		b.Devices = kernelOnly(kernel)
		b.Note = "not scanned: " + openHint(err, b.Path)
		return
	}
	// Probe reads only: a failed close loses nothing.
	defer func() { _ = bus.Close() }()
	b.Scanned = true
	errs := 0
	for addr := uint16(firstScanAddr); addr <= lastScanAddr; addr++ {
		if ctx.Err() != nil {
			b.Note = "scan interrupted at " + hexAddr(addr)
			break
		}
		if who, ok := kernel[addr]; ok {
			b.Devices = append(b.Devices, I2CDevice{Address: addr, KernelDriver: who})
			continue
		}
		var one [1]byte
		err := bus.Tx(addr, nil, one[:])
		typ := hardware.ErrorTypeOf(err)
		switch {
		case err == nil:
			b.Devices = append(b.Devices, identify(bus, addr))
			continue
		case typ == hardware.ErrorNack:
			continue
		}
		b.Devices = append(b.Devices, I2CDevice{Address: addr, Error: err.Error()})
		if typ == hardware.ErrorTimeout {
			b.Note = fmt.Sprintf("scan stopped at %s: the bus timed out (SDA or SCL held low: a wiring fault, a missing pull-up or a hung chip; power-cycle the chips)", hexAddr(addr))
			break
		}
		if errs++; errs >= maxScanErrors {
			b.Note = fmt.Sprintf("scan stopped at %s after %d errors that are not a NACK: check the wiring and the pull-ups", hexAddr(addr), errs)
			break
		}
	}
	// Kernel clients above the point where a scan stopped are still worth listing.
	for addr, who := range kernel {
		if !hasAddr(b.Devices, addr) {
			b.Devices = append(b.Devices, I2CDevice{Address: addr, KernelDriver: who})
		}
	}
	sort.Slice(b.Devices, func(i, j int) bool { return b.Devices[i].Address < b.Devices[j].Address })
}

func hasAddr(ds []I2CDevice, addr uint16) bool {
	for _, d := range ds {
		if d.Address == addr {
			return true
		}
	}
	return false
}

// MCP9808 identification registers (datasheet DS25095A, 5.1.4): the manufacturer ID in
// register 0x06 is 0x0054, the upper byte of register 0x07 is the device ID 0x04 (the
// lower byte is the revision).
const (
	mcp9808RegManufacturer = 0x06
	mcp9808RegDevice       = 0x07
	mcp9808Manufacturer    = 0x0054
	mcp9808Device          = 0x04
)

// identify names the chip at an address that answered. Only the MCP9808 identifies
// itself; the ADS1x15 has no ID register, so it is recognised by its address range only.
func identify(bus i2c.Bus, addr uint16) I2CDevice {
	d := I2CDevice{Address: addr}
	switch {
	case addr >= 0x18 && addr <= 0x1f:
		var man, dev [2]byte
		if err := bus.Tx(addr, []byte{mcp9808RegManufacturer}, man[:]); err != nil {
			d.Detail = "answers at an MCP9808 address, but reading register 0x06 (manufacturer ID) failed"
			d.Error = err.Error()
			return d
		}
		if m := binary.BigEndian.Uint16(man[:]); m != mcp9808Manufacturer {
			d.Detail = fmt.Sprintf("answers at an MCP9808 address, but is not one: manufacturer ID 0x%04x in register 0x06 (an MCP9808 has 0x0054)", m)
			return d
		}
		if err := bus.Tx(addr, []byte{mcp9808RegDevice}, dev[:]); err != nil {
			d.Detail = "manufacturer ID 0x0054, but reading register 0x07 (device ID) failed"
			d.Error = err.Error()
			return d
		}
		if dev[0] != mcp9808Device {
			d.Detail = fmt.Sprintf("manufacturer ID 0x0054 (Microchip), but device ID 0x%02x in register 0x07 is not an MCP9808's 0x04", dev[0])
			return d
		}
		d.Chip, d.Kind = "MCP9808", hardware.KindMCP9808
		d.Detail = fmt.Sprintf("temperature sensor: manufacturer ID 0x0054, device ID 0x04, revision %d", dev[1])
	case addr >= 0x48 && addr <= 0x4b:
		d.Chip, d.Kind = "ADS1x15", hardware.KindADS1115
		d.Detail = "ADC, by address only (no ID register): ADS1115 or ADS1015, which the bus cannot tell apart; TMP102, LM75 and PCF8591 use these addresses too"
	default:
		d.Detail = "answers; not a chip fieldcol reads"
	}
	return d
}

// openHint says why a device did not open and what to do.
func openHint(err error, dev string) string {
	msg := err.Error()
	switch {
	case errors.Is(err, fs.ErrPermission) || strings.Contains(msg, "permission denied"):
		return fmt.Sprintf("%v: no permission on %s: add the user to the group that owns it (see Device access), or run with sudo", err, dev)
	case strings.Contains(msg, "unknown bus") || strings.Contains(msg, "no bus found"):
		return fmt.Sprintf("%v: periph has no such bus (it registers /dev/i2c-* of the machine it runs on, not of --root)", err)
	}
	return msg
}

// hexAddr is an I2C address as i2cdetect and the datasheets write it.
func hexAddr(a uint16) string { return fmt.Sprintf("0x%02x", a) }
