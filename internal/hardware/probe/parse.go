package probe

import (
	"bytes"
	"strconv"
	"strings"
)

// The parsers below read kernel files (device tree, sysfs, procfs) and /etc/group and
// /etc/passwd. None of them trusts its input: a truncated read, a file of another kernel
// version or a corrupted image yields an error or nothing, never a panic (fuzz_test.go).

// parseModel reads a device-tree string property such as /proc/device-tree/model: one or
// more NUL-terminated strings; the first one is the model.
func parseModel(b []byte) string {
	if i := bytes.IndexByte(b, 0); i >= 0 {
		b = b[:i]
	}
	return strings.TrimSpace(strings.ToValidUTF8(string(b), "?"))
}

// parseModules reads /proc/modules, a line per loaded module whose first field is its name
// (with underscores: "i2c_dev", never "i2c-dev").
func parseModules(b []byte) map[string]bool {
	out := map[string]bool{}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) > 0 {
			out[f[0]] = true
		}
	}
	return out
}

// parseBuiltinModules reads /lib/modules/<release>/modules.builtin, a path per built-in
// module ("kernel/drivers/i2c/i2c-dev.ko"), and returns their names as /proc/modules
// spells them.
func parseBuiltinModules(b []byte) map[string]bool {
	out := map[string]bool{}
	for _, line := range strings.Split(string(b), "\n") {
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		name := line[strings.LastIndexByte(line, '/')+1:]
		name = strings.TrimSuffix(name, ".ko")
		if name != "" {
			out[moduleName(name)] = true
		}
	}
	return out
}

// moduleName is a module's name as the kernel lists it: modprobe accepts dashes and
// underscores alike, /proc/modules and /sys/module use underscores.
func moduleName(s string) string { return strings.ReplaceAll(s, "-", "_") }

// group is one line of /etc/group.
type group struct {
	Name    string
	GID     int
	Members []string
}

// parseGroups reads /etc/group ("i2c:x:998:pi,fieldcol"); malformed lines are skipped.
func parseGroups(b []byte) []group {
	var out []group
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Split(strings.TrimSpace(line), ":")
		if len(f) != 4 || f[0] == "" || strings.HasPrefix(f[0], "#") {
			continue
		}
		gid, err := strconv.Atoi(f[2])
		if err != nil || gid < 0 {
			continue
		}
		g := group{Name: f[0], GID: gid}
		for _, m := range strings.Split(f[3], ",") {
			if m = strings.TrimSpace(m); m != "" {
				g.Members = append(g.Members, m)
			}
		}
		out = append(out, g)
	}
	return out
}

// account is one line of /etc/passwd, the fields the probe needs.
type account struct {
	Name string
	UID  int
	GID  int
}

// parsePasswd reads /etc/passwd ("fieldcol:x:999:996::/var/lib/fieldcol:/usr/sbin/nologin");
// malformed lines are skipped.
func parsePasswd(b []byte) []account {
	var out []account
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Split(strings.TrimSpace(line), ":")
		if len(f) != 7 || f[0] == "" || strings.HasPrefix(f[0], "#") {
			continue
		}
		uid, err1 := strconv.Atoi(f[2])
		gid, err2 := strconv.Atoi(f[3])
		if err1 != nil || err2 != nil || uid < 0 || gid < 0 {
			continue
		}
		out = append(out, account{Name: f[0], UID: uid, GID: gid})
	}
	return out
}

// parseDevNumber returns N of a device name prefix+N ("i2c-1", "gpiochip4",
// "thermal_zone0", "w1_bus_master1").
func parseDevNumber(name, prefix string) (int, bool) {
	rest, ok := strings.CutPrefix(name, prefix)
	if !ok || rest == "" || len(rest) > 6 {
		return 0, false
	}
	for _, c := range rest {
		if c < '0' || c > '9' {
			return 0, false
		}
	}
	n, err := strconv.Atoi(rest)
	return n, err == nil
}

// parseSpidev returns the bus and chip select of "spidev0.1"; periph calls that port
// "SPI0.1", the name a config's bus key takes.
func parseSpidev(name string) (bus, cs int, ok bool) {
	rest, found := strings.CutPrefix(name, "spidev")
	if !found {
		return 0, 0, false
	}
	b, c, found := strings.Cut(rest, ".")
	if !found {
		return 0, 0, false
	}
	bus, ok1 := parseDevNumber(b, "")
	cs, ok2 := parseDevNumber(c, "")
	return bus, cs, ok1 && ok2
}

// parseI2CClient reads the name of a kernel I2C client under /sys/bus/i2c/devices,
// "<bus>-<address as 4 hex digits>" ("1-0048"): an address the kernel has bound to a
// driver, which i2cdetect shows as UU and the probe does not touch.
func parseI2CClient(name string) (bus int, addr uint16, ok bool) {
	b, a, found := strings.Cut(name, "-")
	if !found || len(a) != 4 {
		return 0, 0, false
	}
	bus, ok = parseDevNumber(b, "")
	if !ok {
		return 0, 0, false
	}
	v, err := strconv.ParseUint(a, 16, 16)
	if err != nil || v > 0x3ff { // 10-bit addresses at most
		return 0, 0, false
	}
	return bus, uint16(v), true
}

// parseW1Family returns the family code of a 1-Wire slave's name under
// /sys/bus/w1/devices ("28-0000075b4a2f" -> 0x28).
func parseW1Family(name string) (byte, bool) {
	if len(name) < 4 || name[2] != '-' {
		return 0, false
	}
	v, err := strconv.ParseUint(name[:2], 16, 8)
	if err != nil {
		return 0, false
	}
	for _, c := range name[3:] {
		if !strings.ContainsRune("0123456789abcdefABCDEF", c) {
			return 0, false
		}
	}
	return byte(v), true
}

// w1Families names the 1-Wire families an operator is likely to find; the kernel's
// w1_therm driver reads the temperature of 10, 22, 28, 3b and 42.
var w1Families = map[byte]string{
	0x01: "DS2401 (serial number)",
	0x10: "DS18S20 (temperature)",
	0x22: "DS1822 (temperature)",
	0x26: "DS2438 (battery monitor)",
	0x28: "DS18B20 (temperature)",
	0x29: "DS2408 (8-channel switch)",
	0x2d: "DS2431 (EEPROM)",
	0x3a: "DS2413 (2-channel switch)",
	0x3b: "DS1825/MAX31850 (temperature)",
	0x42: "DS28EA00 (temperature)",
}
