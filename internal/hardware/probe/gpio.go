package probe

import (
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"strconv"
	"strings"

	"periph.io/x/conn/v3/gpio/gpioreg"
	"periph.io/x/conn/v3/i2c/i2creg"

	"github.com/fieldcol/fieldcol/internal/hardware/gpiocdev"
	"github.com/fieldcol/fieldcol/internal/hardware/periph"
)

// PeriphSection is what periph's host.Init did, and the GPIO pins and I2C buses it
// registered (a device's bus key opens one of those buses).
type PeriphSection struct {
	Loaded   []string        `json:"loaded"`
	Skipped  []DriverProblem `json:"skipped"`
	Failed   []DriverProblem `json:"failed"`
	Pins     []string        `json:"gpio_pins"`
	I2CBuses []string        `json:"i2c_buses"`
	Error    string          `json:"error,omitempty"`
	Note     string          `json:"note,omitempty"`
}

// DriverProblem is a skipped or failed periph driver with periph's reason.
type DriverProblem struct {
	Driver string `json:"driver"`
	Reason string `json:"reason"`
}

func probePeriph(drivers func() (periph.DriverState, error)) PeriphSection {
	s := PeriphSection{Skipped: []DriverProblem{}, Failed: []DriverProblem{}, Pins: []string{}, I2CBuses: []string{}}
	d, err := drivers()
	if err != nil {
		s.Error = err.Error()
	}
	s.Loaded = append([]string{}, d.Loaded...)
	for _, p := range d.Skipped {
		s.Skipped = append(s.Skipped, DriverProblem{Driver: p.Driver, Reason: p.Reason})
	}
	for _, p := range d.Failed {
		s.Failed = append(s.Failed, DriverProblem{Driver: p.Driver, Reason: p.Reason})
	}
	for _, p := range gpioreg.All() {
		s.Pins = append(s.Pins, p.Name())
	}
	for _, b := range i2creg.All() {
		s.I2CBuses = append(s.I2CBuses, b.Name)
	}
	switch {
	case err != nil:
		s.Note = "periph could not initialise at all: backend periph cannot work on this host"
	case len(s.Loaded) == 0:
		s.Note = "periph loaded no driver: backend periph would find no pin and no bus here (each skipped or failed driver says why)"
	case len(s.Failed) > 0:
		s.Note = "a failed driver is a missing pin or bus for backend periph: fix its reason first"
	}
	return s
}

// GPIOSection lists the GPIO character devices and their lines.
type GPIOSection struct {
	Chips []Chip `json:"chips"`
	Note  string `json:"note,omitempty"`
}

// Chip is one /dev/gpiochipN.
type Chip struct {
	Name  string `json:"name"`
	Label string `json:"label"`
	Path  string `json:"path"`
	Lines []Line `json:"lines"`
}

// Line is one GPIO line of a chip.
type Line struct {
	Offset int    `json:"offset"`
	Name   string `json:"name"`
	// Consumer is who holds the line (a kernel driver's name, or a process's consumer
	// label such as "fieldcol"), when Used.
	Consumer string `json:"consumer,omitempty"`
	Used     bool   `json:"used"`
	Output   bool   `json:"output"`
	// Pin is what a device's pin key says to open this line: "GPIOn" on a Raspberry Pi's
	// header chip (the BCM number), else the line's name; empty when no name opens it (an
	// unnamed line, or one whose name an earlier line also has).
	Pin string `json:"pin,omitempty"`
	// Header is true for a line of a Raspberry Pi's 40-pin header chip.
	Header bool `json:"header"`
}

// used counts the lines of the chip in use.
func (c Chip) used() int {
	n := 0
	for _, l := range c.Lines {
		if l.Used {
			n++
		}
	}
	return n
}

func probeGPIO(root rootFS, chips func(string) ([]gpiocdev.ChipInfo, error)) GPIOSection {
	s := GPIOSection{Chips: []Chip{}}
	if len(root.glob("/dev/gpiochip*")) == 0 {
		s.Note = "none found: no /dev/gpiochip*: GPIO character device missing (not a Raspberry Pi, or the kernel lacks CONFIG_GPIO_CDEV)"
		return s
	}
	infos, err := chips(root.path("/dev"))
	for _, ci := range infos {
		c := Chip{Name: ci.Name, Label: ci.Label, Path: root.rel(ci.Path), Lines: []Line{}}
		for _, l := range ci.Lines {
			c.Lines = append(c.Lines, Line{
				Offset: l.Offset, Name: l.Name, Consumer: l.Consumer, Used: l.Used, Output: l.Output,
				Pin: pinKey(infos, ci, l), Header: gpiocdev.IsHeaderChip(ci.Label),
			})
		}
		s.Chips = append(s.Chips, c)
	}
	switch {
	case err != nil && errors.Is(err, fs.ErrPermission):
		s.Note = fmt.Sprintf("reading the GPIO chips: %s: add the user to the group that owns /dev/gpiochip* (gpio on Raspberry Pi OS), or run with sudo", root.scrub(err.Error()))
	case err != nil:
		s.Note = "reading the GPIO chips: " + root.scrub(err.Error())
	case len(s.Chips) == 0:
		s.Note = "none found: /dev/gpiochip* exist but none reported its lines"
	}
	return s
}

// pinKey is the name that opens line l of chip c the way the periph backend resolves a pin
// key (gpiocdev.FindIn): the BCM name GPIOn on a header chip, which wiring diagrams use and
// which also opens lines the device tree names otherwise (GPIO7 is "SPI_CE1_N" on a Pi 4),
// else the line's own name.
func pinKey(chips []gpiocdev.ChipInfo, c gpiocdev.ChipInfo, l gpiocdev.LineInfo) string {
	opens := func(name string) bool {
		p, off, ok := gpiocdev.FindIn(chips, name)
		return ok && p == c.Path && off == l.Offset
	}
	if gpiocdev.IsHeaderChip(c.Label) {
		if bcm := "GPIO" + strconv.Itoa(l.Offset); opens(bcm) {
			return bcm
		}
	}
	if l.Name != "" && opens(l.Name) {
		return l.Name
	}
	return ""
}

// scrub removes the root from a message about paths under it.
func (r rootFS) scrub(msg string) string {
	if string(r) == "/" {
		return msg
	}
	return strings.ReplaceAll(msg, string(r), "")
}

// rel turns a path under the root back into the path on the probed machine.
func (r rootFS) rel(p string) string {
	if string(r) == "/" || !filepath.IsAbs(p) {
		return p
	}
	rel, err := filepath.Rel(string(r), p)
	if err != nil || strings.HasPrefix(rel, "..") {
		return p
	}
	return "/" + filepath.ToSlash(rel)
}
