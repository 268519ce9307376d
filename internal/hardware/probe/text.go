package probe

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// Section titles of the text report, in order.
const (
	TitleBoard     = "Board"
	TitlePeriph    = "periph drivers"
	TitleGPIO      = "GPIO chips"
	TitleI2C       = "I2C buses"
	TitleSPI       = "SPI"
	TitleOneWire   = "1-Wire"
	TitleThermal   = "SoC temperature"
	TitleAccess    = "Device access"
	TitleModules   = "Kernel modules"
	TitleSuggested = "Suggested hardware block"
)

// Titles lists the section titles in the order WriteText prints them.
func Titles() []string {
	return []string{TitleBoard, TitlePeriph, TitleGPIO, TitleI2C, TitleSPI, TitleOneWire,
		TitleThermal, TitleAccess, TitleModules, TitleSuggested}
}

// WriteJSON writes the report as indented JSON.
func (r *Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// WriteText writes the report for an operator: a section per title, each saying what it
// found or why it found nothing.
func (r *Report) WriteText(w io.Writer) error {
	bw := bufio.NewWriter(w)
	p := &printer{w: bw}
	if r.Root != "/" {
		p.f("(every path below is read under %s)\n\n", r.Root)
	}
	r.textBoard(p)
	r.textPeriph(p)
	r.textGPIO(p)
	r.textI2C(p)
	r.textSPI(p)
	r.textOneWire(p)
	r.textThermal(p)
	r.textAccess(p)
	r.textModules(p)
	r.textSuggested(p)
	return bw.Flush()
}

type printer struct{ w io.Writer }

func (p *printer) f(format string, a ...any) { fmt.Fprintf(p.w, format, a...) }

func (p *printer) title(t string) { p.f("== %s\n", t) }

func (p *printer) note(n string) {
	if n != "" {
		p.f("  %s\n", n)
	}
}

func (p *printer) end() { p.f("\n") }

func (r *Report) textBoard(p *printer) {
	p.title(TitleBoard)
	if r.Board.Model != "" {
		p.f("  %s (%s)\n", r.Board.Model, r.Board.Source)
	}
	p.note(r.Board.Note)
	p.end()
}

func (r *Report) textPeriph(p *printer) {
	s := r.Periph
	p.title(TitlePeriph)
	if s.Error != "" {
		p.f("  host.Init failed: %s\n", s.Error)
	}
	p.f("  loaded: %s\n", listOr(s.Loaded, "none"))
	for _, d := range s.Failed {
		p.f("  failed: %s: %s\n", d.Driver, d.Reason)
	}
	for _, d := range s.Skipped {
		p.f("  skipped: %s: %s\n", d.Driver, d.Reason)
	}
	p.f("  GPIO pins periph registered: %d\n", len(s.Pins))
	p.f("  I2C buses periph registered: %s\n", listOr(s.I2CBuses, "none"))
	p.note(s.Note)
	p.end()
}

func (r *Report) textGPIO(p *printer) {
	s := r.GPIO
	p.title(TitleGPIO)
	for _, c := range s.Chips {
		p.f("  %s [%s] %s: %d lines, %d in use\n", c.Name, c.Label, c.Path, len(c.Lines), c.used())
		for _, l := range c.Lines {
			name := l.Name
			switch {
			case name == "":
				name = "(unnamed)"
			case !plainName(name):
				name = strconv.Quote(name)
			}
			state := "free"
			if l.Used {
				dir := "input"
				if l.Output {
					dir = "output"
				}
				state = fmt.Sprintf("in use by %q, %s", l.Consumer, dir)
			}
			switch {
			case l.Pin != "" && l.Pin != l.Name:
				state += "; pin: " + l.Pin
			case l.Pin == "" && l.Name != "":
				state += "; no pin key opens it (an earlier line has the same name)"
			}
			p.f("    %3d  %-16s %s\n", l.Offset, name, state)
		}
	}
	p.note(s.Note)
	p.end()
}

func (r *Report) textI2C(p *printer) {
	s := r.I2C
	p.title(TitleI2C)
	for _, b := range s.Buses {
		adapter := ""
		if b.Adapter != "" {
			adapter = " (" + b.Adapter + ")"
		}
		scanned := ""
		if b.Scanned {
			scanned = fmt.Sprintf(", scanned %s-%s", hexAddr(firstScanAddr), hexAddr(lastScanAddr))
		}
		p.f("  %s%s, config bus: %q%s\n", b.Path, adapter, b.ConfigBus, scanned)
		for _, d := range b.Devices {
			switch {
			case d.KernelDriver != "":
				p.f("    %s  UU       held by the kernel: %s (not read)\n", hexAddr(d.Address), d.KernelDriver)
			case d.Chip != "":
				p.f("    %s  %-8s %s\n", hexAddr(d.Address), d.Chip, d.Detail)
			case d.Error != "" && d.Detail == "":
				p.f("    %s  error    %s\n", hexAddr(d.Address), d.Error)
			default:
				line := d.Detail
				if d.Error != "" {
					line += ": " + d.Error
				}
				p.f("    %s  ?        %s\n", hexAddr(d.Address), line)
			}
		}
		if b.Scanned && len(b.Devices) == 0 {
			p.f("    no address answered: nothing is connected, or it is unpowered or miswired (SDA to GPIO2, SCL to GPIO3)\n")
		}
		if b.Note != "" {
			p.f("    %s\n", b.Note)
		}
	}
	p.note(s.Note)
	p.end()
}

func (r *Report) textSPI(p *printer) {
	s := r.SPI
	p.title(TitleSPI)
	for _, port := range s.Ports {
		p.f("  %s, config bus: %s\n", port.Path, port.ConfigBus)
	}
	p.note(s.Note)
	p.end()
}

func (r *Report) textOneWire(p *printer) {
	s := r.OneWire
	p.title(TitleOneWire)
	if len(s.Masters) > 0 {
		p.f("  bus masters: %s\n", strings.Join(s.Masters, ", "))
	}
	for _, d := range s.Devices {
		chip := d.Chip
		if chip == "" {
			chip = "family " + d.Family
		}
		p.f("  %s  %s", d.Name, chip)
		if d.Celsius != nil {
			p.f("  %.3f °C", *d.Celsius)
		}
		if d.Error != "" {
			p.f("  error: %s", d.Error)
		}
		p.f("\n")
		if d.Warning != "" {
			p.f("    %s\n", d.Warning)
		}
	}
	p.note(s.Note)
	p.end()
}

func (r *Report) textThermal(p *printer) {
	s := r.Thermal
	p.title(TitleThermal)
	for _, z := range s.Zones {
		p.f("  %s (%s): ", z.Name, orDash(z.Type))
		if z.Celsius != nil {
			p.f("%.1f °C\n", *z.Celsius)
		} else {
			p.f("unreadable: %s\n", z.Error)
		}
	}
	p.note(s.Note)
	p.end()
}

func (r *Report) textAccess(p *printer) {
	s := r.Access
	p.title(TitleAccess)
	p.f("  running as %s (uid %d), groups: %s\n", s.User, s.UID, listOr(s.Groups, "none"))
	for _, f := range s.Files {
		state := "you can open it"
		if !f.Usable {
			state = "you cannot open it"
		}
		if f.Problem != "" {
			state += ": " + f.Problem
		}
		p.f("  %-18s %s:%s %s  %s\n", f.Path, f.Owner, f.Group, f.Mode, state)
	}
	if len(s.Files) > 0 {
		p.f("  groups the service user needs: %s\n", listOr(s.Needed, "none (the files are open to everyone)"))
	}
	p.note(s.Note)
	switch {
	case s.UID == 0 && len(s.Files) > 0:
		p.f("  you are root: every device opens for this run, whatever its group\n")
	case len(s.Lacking) > 0:
		p.f("  you lack: %s: sudo adduser %s %s, then log in again (or run the probe with sudo)\n",
			strings.Join(s.Lacking, ", "), s.User, s.Lacking[0])
	}
	su := s.ServiceUser
	switch {
	case !su.Exists:
		p.f("  no user %s: the fieldcol-edge package creates it, in the groups gpio, i2c and spi where they exist\n", su.Name)
	case len(su.Lacking) > 0:
		p.f("  service user %s is in %s; it lacks %s:", su.Name, listOr(su.Groups, "no group"), strings.Join(su.Lacking, ", "))
		for _, g := range su.Lacking {
			p.f(" sudo adduser %s %s;", su.Name, g)
		}
		p.f(" then sudo systemctl restart fieldcol\n")
	case len(s.Files) == 0:
		p.f("  service user %s is in %s\n", su.Name, listOr(su.Groups, "no group"))
	default:
		p.f("  service user %s is in %s: it can open every device above\n", su.Name, listOr(su.Groups, "no group"))
	}
	p.end()
}

func (r *Report) textModules(p *printer) {
	s := r.Modules
	p.title(TitleModules)
	for _, m := range s.Modules {
		p.f("  %-9s %-10s for %s", m.Name, m.State, m.For)
		if m.Hint != "" {
			p.f(": %s", m.Hint)
		}
		p.f("\n")
	}
	p.note(s.Note)
	p.end()
}

func (r *Report) textSuggested(p *printer) {
	p.title(TitleSuggested)
	p.f("  Paste it under extensions.controlloop; for the hardware receiver, put its backend and\n" +
		"  devices keys directly under receivers.hardware. Rename the devices, then run\n" +
		"  fieldcol-edge validate. Only what the probe recognised is in it:\n\n")
	for _, line := range strings.Split(strings.TrimRight(r.Suggested, "\n"), "\n") {
		p.f("%s\n", line)
	}
}

func listOr(xs []string, none string) string {
	if len(xs) == 0 {
		return none
	}
	return strings.Join(xs, ", ")
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
