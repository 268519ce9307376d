package probe

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"sort"
	"strings"
	"time"

	"github.com/fieldcol/fieldcol/internal/hardware/periph"
)

// Module states.
const (
	moduleLoaded    = "loaded"
	moduleBuiltin   = "built in"
	moduleNotLoaded = "not loaded"
	moduleUnknown   = "unknown"
)

// ModuleSection says whether the kernel modules the buses need are there.
type ModuleSection struct {
	Modules []Module `json:"modules"`
	Note    string   `json:"note,omitempty"`
}

// Module is one kernel module.
type Module struct {
	// Name is as modprobe takes it ("i2c-dev").
	Name  string `json:"name"`
	For   string `json:"for"`
	State string `json:"state"`
	Hint  string `json:"hint,omitempty"`
}

func (s ModuleSection) find(name string) *Module {
	for i := range s.Modules {
		if s.Modules[i].Name == name {
			return &s.Modules[i]
		}
	}
	return nil
}

// wantedModules are the modules behind the device files the hardware layer opens. The
// unit's DeviceAllow=char-i2c and char-spi only match once the module has registered its
// character device class, so they must be loaded before fieldcol.service starts.
var wantedModules = []struct{ name, for_, hint string }{
	{"i2c-dev", "/dev/i2c-* (ADS1x15, MCP9808)", "sudo modprobe i2c-dev, then sudo systemctl restart fieldcol (the unit's DeviceAllow sees only drivers loaded before it started); the fieldcol-edge package loads it at boot (/usr/lib/modules-load.d/fieldcol.conf)"},
	{"spidev", "/dev/spidev* (MCP3008)", "sudo modprobe spidev, then sudo systemctl restart fieldcol (the unit's DeviceAllow sees only drivers loaded before it started); the fieldcol-edge package loads it at boot (/usr/lib/modules-load.d/fieldcol.conf)"},
	{"w1-gpio", "the 1-Wire bus master on a GPIO (DS18B20)", "dtoverlay=w1-gpio in /boot/firmware/config.txt, then reboot"},
	{"w1-therm", "the temperature files of 1-Wire sensors", "sudo modprobe w1-therm (the w1-gpio overlay loads it when a sensor is found)"},
}

func probeModules(root rootFS) ModuleSection {
	s := ModuleSection{Modules: []Module{}}
	procB, procErr := root.read("/proc/modules")
	loaded := parseModules(procB)
	var builtin map[string]bool
	if rel, err := root.read("/proc/sys/kernel/osrelease"); err == nil {
		if b, err := root.read("/lib/modules/" + strings.TrimSpace(string(rel)) + "/modules.builtin"); err == nil {
			builtin = parseBuiltinModules(b)
		}
	}
	for _, w := range wantedModules {
		m := Module{Name: w.name, For: w.for_}
		k := moduleName(w.name)
		switch {
		case procErr == nil && loaded[k]:
			m.State = moduleLoaded
		case builtin[k]:
			m.State = moduleBuiltin
		case root.exists("/sys/module/" + k):
			// A built-in module with parameters or a version has a /sys/module entry too.
			m.State = moduleBuiltin
		case procErr == nil:
			m.State, m.Hint = moduleNotLoaded, w.hint
		default:
			m.State = moduleUnknown
		}
		s.Modules = append(s.Modules, m)
	}
	switch {
	case errors.Is(procErr, fs.ErrNotExist):
		s.Note = "cannot tell which modules are loaded: no /proc/modules (a container, or a kernel without module support)"
	case procErr != nil:
		s.Note = "cannot tell which modules are loaded: " + root.errText(procErr)
	}
	return s
}

// SPISection lists the SPI ports.
type SPISection struct {
	Ports []SPIPort `json:"ports"`
	Note  string    `json:"note,omitempty"`
}

// SPIPort is one /dev/spidevB.C.
type SPIPort struct {
	Path string `json:"path"`
	// ConfigBus is what a device's bus key says for this port ("SPI0.0").
	ConfigBus string `json:"config_bus"`
}

func probeSPI(root rootFS, mods ModuleSection) SPISection {
	s := SPISection{Ports: []SPIPort{}}
	for _, p := range root.glob("/dev/spidev*") {
		bus, cs, ok := parseSpidev(path.Base(p))
		if !ok {
			continue
		}
		s.Ports = append(s.Ports, SPIPort{Path: p, ConfigBus: fmt.Sprintf("SPI%d.%d", bus, cs)})
	}
	if len(s.Ports) == 0 {
		s.Note = "none found: no /dev/spidev*: SPI is off (sudo raspi-config nonint do_spi 0, or dtparam=spi=on in /boot/firmware/config.txt, then reboot)"
		if m := mods.find("spidev"); m != nil && m.State == moduleNotLoaded {
			s.Note += ", or the spidev module is not loaded (sudo modprobe spidev)"
		}
		return s
	}
	s.Note = "nothing is read from SPI: an MCP3008 has no ID to ask for, and a missing one reads 0 V; wire it, configure it, then check its readings"
	return s
}

// OneWireSection lists the 1-Wire bus masters and slaves the kernel's w1 driver found.
type OneWireSection struct {
	Masters []string   `json:"bus_masters"`
	Devices []W1Device `json:"devices"`
	Note    string     `json:"note,omitempty"`
}

// W1Device is one slave under /sys/bus/w1/devices.
type W1Device struct {
	// Name is the kernel's name ("28-0000075b4a2f"), what a DS18B20's rom key takes.
	Name   string `json:"name"`
	Family string `json:"family"`
	Chip   string `json:"chip,omitempty"`
	// Celsius is the temperature read through w1_therm, for temperature sensors.
	Celsius *float64 `json:"celsius,omitempty"`
	Warning string   `json:"warning,omitempty"`
	Error   string   `json:"error,omitempty"`
}

// ds18b20PowerOn is what a DS18B20 reads before its first conversion: a sensor that
// reads it has not converted, most often a parasite-powered one without a strong pull-up.
const ds18b20PowerOn = 85.0

func probeOneWire(ctx context.Context, root rootFS, noScan bool, timeout time.Duration) OneWireSection {
	s := OneWireSection{Masters: []string{}, Devices: []W1Device{}}
	if !root.exists("/sys/bus/w1") {
		s.Note = "none found: no /sys/bus/w1: the 1-Wire driver is not loaded (add dtoverlay=w1-gpio to /boot/firmware/config.txt for GPIO4, then reboot)"
		return s
	}
	for _, p := range root.glob("/sys/bus/w1/devices/*") {
		name := path.Base(p)
		if _, ok := parseDevNumber(name, "w1_bus_master"); ok {
			s.Masters = append(s.Masters, name)
			continue
		}
		fam, ok := parseW1Family(name)
		if !ok {
			continue
		}
		d := W1Device{Name: name, Family: fmt.Sprintf("%02x", fam), Chip: w1Families[fam]}
		if isW1Therm(fam) && !noScan && ctx.Err() == nil {
			readW1(root, p, timeout, &d)
		}
		s.Devices = append(s.Devices, d)
	}
	switch {
	case len(s.Masters) == 0:
		s.Note = "none found: /sys/bus/w1 exists but there is no w1_bus_master: the w1-gpio overlay is not loaded (add dtoverlay=w1-gpio to /boot/firmware/config.txt, then reboot)"
	case len(s.Devices) == 0:
		s.Note = "none found: the bus master sees no sensor: check the wiring (DS18B20 data to GPIO4, a 4.7 kΩ pull-up to 3.3 V, VDD to 3.3 V)"
	case noScan:
		s.Note = "temperatures not read (--no-scan)"
	}
	return s
}

// isW1Therm reports the families whose temperature the kernel's w1_therm driver reads.
func isW1Therm(fam byte) bool {
	switch fam {
	case 0x10, 0x22, 0x28, 0x3b, 0x42:
		return true
	}
	return false
}

// readW1 reads a sensor's temperature through w1_therm: the "temperature" file of current
// kernels, else the older w1_slave. A read converts (up to 750 ms) and can hang in the
// kernel for a sensor that is gone, hence the timeout; the goroutine of a read that hangs
// ends with the process.
func readW1(root rootFS, dir string, timeout time.Duration, d *W1Device) {
	type result struct {
		c   float64
		err error
	}
	done := make(chan result, 1)
	go func() {
		var r result
		if b, err := root.read(dir + "/temperature"); err == nil {
			r.c, r.err = periph.ParseW1Temperature(b)
		} else if b, err2 := root.read(dir + "/w1_slave"); err2 == nil {
			r.c, r.err = periph.ParseW1Slave(b)
		} else if errors.Is(err, fs.ErrNotExist) && errors.Is(err2, fs.ErrNotExist) {
			r.err = errors.New("no temperature file: the w1_therm module is not loaded (sudo modprobe w1-therm)")
		} else {
			if errors.Is(err, fs.ErrNotExist) {
				err = err2
			}
			r.err = fmt.Errorf("%s (a read error is a CRC error or a sensor without power: check VDD and the 4.7 kΩ pull-up)", root.errText(err))
		}
		done <- r
	}()
	select {
	case r := <-done:
		if r.err != nil {
			d.Error = r.err.Error()
			return
		}
		c := r.c
		d.Celsius = &c
		if c == ds18b20PowerOn {
			d.Warning = "85 °C is the power-on value: the sensor did not convert (parasite power without a strong pull-up? wire VDD to 3.3 V)"
		}
	case <-time.After(timeout):
		d.Error = fmt.Sprintf("no reading within %s: the sensor does not answer", timeout)
	}
}

// ThermalSection lists the kernel's thermal zones.
type ThermalSection struct {
	Zones []Zone `json:"zones"`
	Note  string `json:"note,omitempty"`
}

// Zone is one /sys/class/thermal/thermal_zoneN.
type Zone struct {
	Name    string   `json:"name"`
	Number  int      `json:"number"`
	Type    string   `json:"type,omitempty"`
	Celsius *float64 `json:"celsius,omitempty"`
	Error   string   `json:"error,omitempty"`
}

func probeThermal(root rootFS) ThermalSection {
	s := ThermalSection{Zones: []Zone{}}
	for _, p := range root.glob("/sys/class/thermal/thermal_zone*") {
		name := path.Base(p)
		n, ok := parseDevNumber(name, "thermal_zone")
		if !ok {
			continue
		}
		z := Zone{Name: name, Number: n}
		if b, err := root.read(p + "/type"); err == nil {
			z.Type = strings.TrimSpace(string(b))
		}
		b, err := root.read(p + "/temp")
		if err == nil {
			var c float64
			if c, err = periph.ParseMilliCelsius(b); err == nil {
				z.Celsius = &c
			}
		}
		if err != nil {
			z.Error = root.errText(err)
		}
		s.Zones = append(s.Zones, z)
	}
	sort.Slice(s.Zones, func(i, j int) bool { return s.Zones[i].Number < s.Zones[j].Number })
	if len(s.Zones) == 0 {
		s.Note = "none found: no /sys/class/thermal/thermal_zone*: the kernel exposes no thermal zone here (a container or a VM; every Raspberry Pi has thermal_zone0, cpu-thermal)"
	}
	return s
}

// errText is an error with the path as it is on the probed machine, without the root.
func (r rootFS) errText(err error) string {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return fmt.Sprintf("%s %s: %v", pe.Op, r.rel(pe.Path), pe.Err)
	}
	return err.Error()
}

func readlink(root rootFS, p string) (string, error) { return os.Readlink(root.path(p)) }
