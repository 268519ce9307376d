package probe

import (
	"fmt"
	"math"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
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

func FuzzParseMillidegrees(f *testing.F) {
	for _, s := range []string{"48312\n", "-5250\n", "0", "95", "garbage", "", "99999999999", " 21500 "} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := parseMillidegrees(b)
		if err != nil {
			return
		}
		milli := c * 1000
		if math.IsNaN(c) || milli != math.Round(milli) || math.Abs(milli) > math.MaxInt32 {
			t.Fatalf("parseMillidegrees(%q) = %v: not a whole number of millidegrees in range", b, c)
		}
		back, err := parseMillidegrees([]byte(fmt.Sprint(int64(math.Round(milli)))))
		if err != nil || back != c {
			t.Fatalf("parseMillidegrees(%q) = %v does not round-trip: %v, %v", b, c, back, err)
		}
	})
}

func TestParseMillidegrees(t *testing.T) {
	tests := []struct {
		in   string
		want float64
		err  string
	}{
		{"48312\n", 48.312, ""},
		{"95\n", 0.095, ""}, // below 0.1 °C after a cold boot: still millidegrees
		{"-5250", -5.25, ""},
		{"", 0, "empty"},
		{"48.3", 0, `not a temperature in millidegrees: "48.3"`},
		{"99999999999", 0, "not a temperature in millidegrees"},
	}
	for _, tt := range tests {
		got, err := parseMillidegrees([]byte(tt.in))
		if tt.err != "" {
			assert.ErrorContains(t, err, tt.err, tt.in)
			continue
		}
		require.NoError(t, err, tt.in)
		assert.InDelta(t, tt.want, got, 1e-9, tt.in)
	}
}

func FuzzParseW1Slave(f *testing.F) {
	f.Add([]byte("72 01 4b 46 7f ff 0e 10 57 : crc=57 YES\n72 01 4b 46 7f ff 0e 10 57 t=23125\n"))
	f.Add([]byte("50 05 4b 46 7f ff 0c 10 1c : crc=1c NO\n50 05 4b 46 7f ff 0c 10 1c t=85000\n"))
	f.Add([]byte("t=\nt="))
	f.Fuzz(func(t *testing.T, b []byte) {
		milli, _, err := parseW1Slave(b)
		if err == nil && (milli > math.MaxInt32 || milli < math.MinInt32) {
			t.Fatalf("parseW1Slave(%q) = %d: out of range", b, milli)
		}
	})
}

func TestParseW1Slave(t *testing.T) {
	milli, ok, err := parseW1Slave([]byte("72 01 4b 46 7f ff 0e 10 57 : crc=57 YES\n72 01 4b 46 7f ff 0e 10 57 t=23125\n"))
	require.NoError(t, err)
	assert.True(t, ok)
	assert.Equal(t, 23125, milli)
	_, ok, err = parseW1Slave([]byte("50 05 4b 46 7f ff 0c 10 1c : crc=1c NO\n50 05 4b 46 7f ff 0c 10 1c t=85000\n"))
	require.NoError(t, err)
	assert.False(t, ok)
	_, _, err = parseW1Slave([]byte("72 01 4b 46 7f ff 0e 10 57 : crc=57 YES\n"))
	assert.ErrorContains(t, err, "want 2 lines, got 1")
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
