package probe

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/fieldcol/fieldcol/internal/hardware"
)

// suggest writes a `hardware` block with a device for every chip the probe recognised:
// the SoC thermal zone, each MCP9808 and ADS1x15 (channel 0), each DS18B20. What a probe
// cannot see (an MCP3008 on SPI, what is wired to a GPIO) is left to comments, because a
// guessed output pin could drive whatever hangs on it.
func suggest(r *Report) string {
	var devs, notes []string
	if z := socZone(r.Thermal); z != nil {
		devs = append(devs, fmt.Sprintf("{name: soc_temp, kind: soc_thermal, channel: %d}", z.Number))
	}
	for _, bus := range r.I2C.Buses {
		for _, d := range bus.Devices {
			switch d.Kind {
			case hardware.KindMCP9808:
				devs = append(devs, fmt.Sprintf(`{name: mcp9808_i2c%d_%s, kind: mcp9808, bus: "%d", address: %s}`,
					bus.Number, hexAddr(d.Address), bus.Number, hexAddr(d.Address)))
			case hardware.KindADS1115:
				devs = append(devs, fmt.Sprintf(`{name: ads1115_i2c%d_%s_ch0, kind: ads1115, bus: "%d", address: %s, channel: 0}`,
					bus.Number, hexAddr(d.Address), bus.Number, hexAddr(d.Address)))
				notes = append(notes, fmt.Sprintf("%s on I2C bus %d is an ADS1115 or an ADS1015 (kind: ads1015): check the board; copy the entry for channel 1, 2 and 3",
					hexAddr(d.Address), bus.Number))
			}
		}
	}
	for _, d := range r.OneWire.Devices {
		if d.Family != "28" {
			continue
		}
		if _, err := hardware.ParseROM(d.Name); err != nil {
			notes = append(notes, fmt.Sprintf("1-Wire device %q is a DS18B20 by its family, but its name is not a ROM code the rom key takes", d.Name))
			continue
		}
		devs = append(devs, fmt.Sprintf("{name: ds18b20_%s, kind: ds18b20, rom: %s}", d.Name[3:], d.Name))
	}
	for _, p := range r.SPI.Ports {
		notes = append(notes, fmt.Sprintf("an MCP3008 on %s cannot be detected; if one is wired: - {name: adc_%s_ch0, kind: mcp3008, bus: %s, channel: 0}",
			p.ConfigBus, strings.ToLower(strings.ReplaceAll(p.ConfigBus, ".", "_")), p.ConfigBus))
	}
	if free := freeLines(r); len(free) > 0 {
		notes = append(notes, fmt.Sprintf("inputs and outputs are not guessed; e.g. - {name: door, kind: gpio_input, pin: %s, pull: up}", free[0]))
		notes = append(notes, wrap("free GPIO lines (without the pins of enabled buses and of the HAT EEPROM): "+strings.Join(free, ", "), 86)...)
	}

	var b strings.Builder
	b.WriteString("hardware:\n  backend: periph\n")
	if len(devs) == 0 {
		notes = append([]string{"nothing recognised: enable the buses and wire the chips (the sections above say what is missing), then probe again"}, notes...)
		b.WriteString("  devices: []\n")
	} else {
		b.WriteString("  devices:\n")
	}
	for _, d := range devs {
		b.WriteString("    - " + d + "\n")
	}
	for _, n := range notes {
		b.WriteString("    # " + n + "\n")
	}
	return b.String()
}

// socZone is the zone to read the SoC temperature from: the one the kernel calls
// cpu-thermal on a Raspberry Pi, else the first one that reads.
func socZone(t ThermalSection) *Zone {
	var first *Zone
	for i := range t.Zones {
		z := &t.Zones[i]
		if z.Celsius == nil {
			continue
		}
		if strings.Contains(z.Type, "cpu") {
			return z
		}
		if first == nil {
			first = z
		}
	}
	return first
}

// freeLines are the pin keys of the lines no one holds: on the header chip when there is
// one (the other chips switch the board's own LEDs and power rails), without the pins of the
// buses the probe found on, which the kernel does not mark as used.
func freeLines(r *Report) []string {
	header := false
	for _, c := range r.GPIO.Chips {
		for _, l := range c.Lines {
			header = header || l.Header
		}
	}
	busy := busPins(r)
	var out []string
	for _, c := range r.GPIO.Chips {
		for _, l := range c.Lines {
			if l.Used || !plainName(l.Pin) || (header && !l.Header) || (l.Header && busy[l.Pin]) {
				continue
			}
			out = append(out, l.Pin)
		}
	}
	return out
}

// busPins are the header pins of a Raspberry Pi's buses that are on: I2C1 on GPIO2 and 3,
// SPI0 on GPIO7 to 11, SPI1 on GPIO16 to 21 (1-Wire's GPIO4 is held by its kernel driver),
// and GPIO0 and 1, which the Pi keeps for a HAT's ID EEPROM.
func busPins(r *Report) map[string]bool {
	busy := map[string]bool{}
	mark := func(from, to int) {
		for n := from; n <= to; n++ {
			busy["GPIO"+strconv.Itoa(n)] = true
		}
	}
	mark(0, 1)
	for _, b := range r.I2C.Buses {
		if b.Number == 1 {
			mark(2, 3)
		}
	}
	for _, p := range r.SPI.Ports {
		switch {
		case strings.HasPrefix(p.ConfigBus, "SPI0."):
			mark(7, 11)
		case strings.HasPrefix(p.ConfigBus, "SPI1."):
			mark(16, 21)
		}
	}
	return busy
}

// wrap breaks a long comment into lines of at most width characters, at spaces.
func wrap(s string, width int) []string {
	var out []string
	line := ""
	for _, w := range strings.Fields(s) {
		if line != "" && len(line)+1+len(w) > width {
			out = append(out, line)
			line = "  " + w
			continue
		}
		if line == "" {
			line = w
		} else {
			line += " " + w
		}
	}
	if line != "" {
		out = append(out, line)
	}
	return out
}

// plainName reports a line name that can stand in YAML as it is: the kernel copies line
// names from the device tree, and a comment must not be ended by a stray newline.
func plainName(s string) bool {
	if s == "" || len(s) > 32 {
		return false
	}
	for _, c := range s {
		letter := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
		if !letter && (c < '0' || c > '9') && c != '_' && c != '-' && c != '.' {
			return false
		}
	}
	return true
}
