package probe

import (
	"fmt"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/assert"
)

// The seeds of each target run as a unit test with `go test`; `go test -fuzz=FuzzX` looks
// for inputs that panic or break the stated property.

func FuzzParseModel(f *testing.F) {
	f.Add([]byte("Raspberry Pi 4 Model B Rev 1.4\x00"))
	f.Add([]byte("Raspberry Pi 5 Model B Rev 1.0\x00raspberrypi,5-model-b\x00"))
	f.Add([]byte("\xff\xfe\x00"))
	f.Add([]byte(""))
	f.Fuzz(func(t *testing.T, b []byte) {
		m := parseModel(b)
		if strings.ContainsRune(m, 0) || !utf8.ValidString(m) || m != strings.TrimSpace(m) {
			t.Fatalf("parseModel(%q) = %q: a NUL, invalid UTF-8 or untrimmed", b, m)
		}
	})
}

func TestParseModel(t *testing.T) {
	assert.Equal(t, "Raspberry Pi 5 Model B Rev 1.0", parseModel([]byte("Raspberry Pi 5 Model B Rev 1.0\x00raspberrypi,5-model-b\x00")))
	assert.Equal(t, "Raspberry Pi Zero 2 W Rev 1.0", parseModel([]byte("Raspberry Pi Zero 2 W Rev 1.0\n")))
}

func FuzzParseModules(f *testing.F) {
	f.Add([]byte("i2c_dev 16384 0 - Live 0xffffffc0009d3000\nspidev 20480 0 - Live 0x0\n"), []byte("kernel/drivers/i2c/i2c-dev.ko\n"))
	f.Add([]byte("\n\n  \n"), []byte("/\n.ko\n"))
	f.Fuzz(func(t *testing.T, proc, builtin []byte) {
		for name := range parseModules(proc) {
			if name == "" || strings.ContainsAny(name, " \t\n") {
				t.Fatalf("parseModules(%q): name %q", proc, name)
			}
		}
		for name := range parseBuiltinModules(builtin) {
			if name == "" || strings.ContainsAny(name, "/-\n") {
				t.Fatalf("parseBuiltinModules(%q): name %q", builtin, name)
			}
		}
	})
}

func TestParseModules(t *testing.T) {
	assert.Equal(t, map[string]bool{"i2c_dev": true, "spidev": true},
		parseModules([]byte("i2c_dev 16384 0 - Live 0xffffffc0009d3000\nspidev 20480 0 - Live 0x0\n")))
	assert.Equal(t, map[string]bool{"i2c_dev": true, "w1_gpio": true},
		parseBuiltinModules([]byte("kernel/drivers/i2c/i2c-dev.ko\nkernel/drivers/w1/masters/w1-gpio.ko\n")))
}

func FuzzParseGroups(f *testing.F) {
	f.Add([]byte("root:x:0:\ni2c:x:998:pi,fieldcol\n#c:x:1:\nbad\nneg:x:-1:\n"), []byte("fieldcol:x:999:996::/var/lib/fieldcol:/usr/sbin/nologin\n"))
	f.Fuzz(func(t *testing.T, group, passwd []byte) {
		for _, g := range parseGroups(group) {
			if g.Name == "" || g.GID < 0 || strings.ContainsAny(g.Name, ":\n") {
				t.Fatalf("parseGroups(%q): %+v", group, g)
			}
			for _, m := range g.Members {
				if m == "" || strings.ContainsAny(m, ",:\n") {
					t.Fatalf("parseGroups(%q): member %q", group, m)
				}
			}
		}
		for _, a := range parsePasswd(passwd) {
			if a.Name == "" || a.UID < 0 || a.GID < 0 || strings.ContainsAny(a.Name, ":\n") {
				t.Fatalf("parsePasswd(%q): %+v", passwd, a)
			}
		}
	})
}

func TestParseGroups(t *testing.T) {
	assert.Equal(t, []group{{Name: "root", GID: 0}, {Name: "i2c", GID: 998, Members: []string{"pi", "fieldcol"}}},
		parseGroups([]byte("root:x:0:\ni2c:x:998:pi,fieldcol\n#c:x:1:\nbad\nneg:x:-1:\n")))
	assert.Equal(t, []account{{Name: "fieldcol", UID: 999, GID: 996}},
		parsePasswd([]byte("fieldcol:x:999:996::/var/lib/fieldcol:/usr/sbin/nologin\nshort:x:1:1\n")))
}

func FuzzParseDeviceNames(f *testing.F) {
	for _, s := range []string{"1-0048", "20-0050", "1-048", "x-0048", "1-zzzz", "spidev0.1", "spidev10.0", "spidev.", "28-0000075b4a2f", "2-", "i2c-1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		if bus, addr, ok := parseI2CClient(name); ok {
			b2, a2, ok2 := parseI2CClient(fmt.Sprintf("%d-%04x", bus, addr))
			if !ok2 || b2 != bus || a2 != addr || addr > 0x3ff {
				t.Fatalf("parseI2CClient(%q) = %d, %#x does not round-trip", name, bus, addr)
			}
		}
		if bus, cs, ok := parseSpidev(name); ok {
			b2, c2, ok2 := parseSpidev(fmt.Sprintf("spidev%d.%d", bus, cs))
			if !ok2 || b2 != bus || c2 != cs || bus < 0 || cs < 0 {
				t.Fatalf("parseSpidev(%q) = %d, %d does not round-trip", name, bus, cs)
			}
		}
		if fam, ok := parseW1Family(name); ok && !strings.EqualFold(fmt.Sprintf("%02x", fam), name[:2]) {
			t.Fatalf("parseW1Family(%q) = %#x", name, fam)
		}
		if n, ok := parseDevNumber(name, "i2c-"); ok && n < 0 {
			t.Fatalf("parseDevNumber(%q) = %d", name, n)
		}
	})
}

func TestParseDeviceNames(t *testing.T) {
	bus, addr, ok := parseI2CClient("1-0048")
	assert.True(t, ok)
	assert.Equal(t, 1, bus)
	assert.Equal(t, uint16(0x48), addr)
	for _, bad := range []string{"1-048", "x-0048", "1-zzzz", "i2c-1", "1-0800"} {
		_, _, ok := parseI2CClient(bad)
		assert.False(t, ok, bad)
	}
	bus, cs, ok := parseSpidev("spidev0.1")
	assert.True(t, ok)
	assert.Equal(t, [2]int{0, 1}, [2]int{bus, cs})
	_, _, ok = parseSpidev("spidev0")
	assert.False(t, ok)
	fam, ok := parseW1Family("28-0000075b4a2f")
	assert.True(t, ok)
	assert.Equal(t, byte(0x28), fam)
	_, ok = parseW1Family("w1_bus_master1")
	assert.False(t, ok)
	n, ok := parseDevNumber("gpiochip4", "gpiochip")
	assert.True(t, ok)
	assert.Equal(t, 4, n)
	_, ok = parseDevNumber("gpiochip", "gpiochip")
	assert.False(t, ok)
}
