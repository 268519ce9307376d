// Package probe is the hardware probe that an operator runs on a Raspberry Pi before
// writing a config (`fieldcol-edge hardware-probe`): what the board is, what periph loaded,
// which GPIO lines, I2C chips, SPI ports, 1-Wire sensors and thermal zones there are, which
// groups and kernel modules are missing, and a `hardware` block for what was found.
//
// It reads files under Root, GPIO line info (no line is requested), one byte per I2C
// address and the MCP9808's ID registers (writing only its register pointer), and each
// 1-Wire sensor's temperature.
// Every section that finds nothing says why and how to fix it; nothing here returns an
// error to the caller, because on a machine without the hardware "nothing found" is the
// answer, not a failure.
package probe

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/fieldcol/fieldcol/internal/hardware/gpiocdev"
	"github.com/fieldcol/fieldcol/internal/hardware/periph"
)

// ServiceUser is the user the package runs fieldcol.service as.
const ServiceUser = "fieldcol"

// Options configures a probe run. The zero value probes the running machine.
type Options struct {
	// Root is the directory every path is read under (default "/"), so that tests and a
	// copied tree can be probed.
	Root string
	// NoScan skips every bus transaction: no I2C address is read and no 1-Wire sensor
	// converts; only files and GPIO line info are read.
	NoScan bool
	// Drivers reports periph's drivers; default periph.Drivers (host.Init, which
	// registers the host's buses in periph's registries whatever Root is).
	Drivers func() (periph.DriverState, error)
	// GPIOChips lists the GPIO character devices in a /dev directory; default
	// gpiocdev.Chips.
	GPIOChips func(devDir string) ([]gpiocdev.ChipInfo, error)
	// Identity is the user the probe checks device access for; default the process's.
	Identity *Identity
	// W1Timeout bounds one 1-Wire temperature read (default 2s: a 12-bit conversion
	// takes 750 ms, and a read of a sensor that is gone can hang in the kernel).
	W1Timeout time.Duration
}

// Identity is a user and its groups, as the kernel checks them when a device opens.
type Identity struct {
	UID  int
	GIDs []int
}

// Report is everything the probe found; its JSON form is `hardware-probe --json`.
type Report struct {
	Root      string         `json:"root"`
	Board     BoardSection   `json:"board"`
	Periph    PeriphSection  `json:"periph"`
	GPIO      GPIOSection    `json:"gpio"`
	I2C       I2CSection     `json:"i2c"`
	SPI       SPISection     `json:"spi"`
	OneWire   OneWireSection `json:"onewire"`
	Thermal   ThermalSection `json:"thermal"`
	Access    AccessSection  `json:"access"`
	Modules   ModuleSection  `json:"modules"`
	Suggested string         `json:"suggested_config"`
}

// BoardSection is the board model from the device tree.
type BoardSection struct {
	Model  string `json:"model,omitempty"`
	Source string `json:"source,omitempty"`
	Note   string `json:"note,omitempty"`
}

// Run probes the machine (or the tree under opts.Root). It never fails: what could not be
// read is in the sections' notes.
func Run(ctx context.Context, opts Options) *Report {
	if opts.Root == "" {
		opts.Root = "/"
	}
	// Paths are shown as on the probed machine by cutting the root off: it must be clean
	// and absolute for that.
	if abs, err := filepath.Abs(opts.Root); err == nil {
		opts.Root = abs
	}
	if opts.Drivers == nil {
		opts.Drivers = periph.Drivers
	}
	if opts.GPIOChips == nil {
		opts.GPIOChips = gpiocdev.Chips
	}
	if opts.Identity == nil {
		opts.Identity = processIdentity()
	}
	if opts.W1Timeout <= 0 {
		opts.W1Timeout = 2 * time.Second
	}
	fs := rootFS(opts.Root)
	r := &Report{Root: opts.Root}
	r.Board = probeBoard(fs)
	// periph first: its host.Init registers the I2C buses that the scan opens.
	r.Periph = probePeriph(opts.Drivers)
	r.GPIO = probeGPIO(fs, opts.GPIOChips)
	r.Modules = probeModules(fs)
	r.I2C = probeI2C(ctx, fs, r.Modules, opts.NoScan)
	r.SPI = probeSPI(fs, r.Modules)
	r.OneWire = probeOneWire(ctx, fs, opts.NoScan, opts.W1Timeout)
	r.Thermal = probeThermal(fs)
	r.Access = probeAccess(fs, opts.Identity)
	r.Suggested = suggest(r)
	return r
}

func probeBoard(fs rootFS) BoardSection {
	// /proc/device-tree is a link to /sys/firmware/devicetree/base; without /proc mounted
	// (a chroot) only the second one is there.
	for _, p := range []string{"/proc/device-tree/model", "/sys/firmware/devicetree/base/model"} {
		b, err := fs.read(p)
		if err != nil {
			continue
		}
		if m := parseModel(b); m != "" {
			return BoardSection{Model: m, Source: p}
		}
	}
	return BoardSection{Note: "not a device-tree board: no /proc/device-tree/model nor /sys/firmware/devicetree/base/model (a Raspberry Pi has both; this is a PC, a VM or a container)"}
}

func processIdentity() *Identity {
	id := &Identity{UID: os.Getuid(), GIDs: []int{os.Getgid()}}
	if gs, err := os.Getgroups(); err == nil {
		id.GIDs = append(id.GIDs, gs...)
	}
	return id
}

// rootFS resolves the probe's absolute paths under the root.
type rootFS string

func (r rootFS) path(p string) string { return filepath.Join(string(r), p) }

// read reads a small kernel file; sysfs files are a page at most, the cap keeps a wrong
// root (a regular file of gigabytes) from filling memory.
func (r rootFS) read(p string) ([]byte, error) {
	f, err := os.Open(r.path(p))
	if err != nil {
		return nil, err
	}
	defer func() { _ = f.Close() }() // read-only: a close error loses nothing
	return io.ReadAll(io.LimitReader(f, 64<<10))
}

// glob returns the absolute (root-relative) paths matching pattern, sorted.
func (r rootFS) glob(pattern string) []string {
	m, _ := filepath.Glob(r.path(pattern)) // the only error is a bad pattern, and ours are constant
	out := make([]string, 0, len(m))
	for _, p := range m {
		rel, err := filepath.Rel(string(r), p)
		if err != nil {
			continue
		}
		out = append(out, "/"+filepath.ToSlash(rel))
	}
	return out
}

func (r rootFS) exists(p string) bool {
	_, err := os.Stat(r.path(p))
	return err == nil
}
