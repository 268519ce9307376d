package probe

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/confmap/confmaptest"
	"periph.io/x/conn/v3/i2c/i2ctest"

	"github.com/fieldcol/fieldcol/internal/hardware"
	"github.com/fieldcol/fieldcol/internal/hardware/gpiocdev"
	"github.com/fieldcol/fieldcol/internal/hardware/periph"
)

// Group ids of the fake Pi's device files.
const (
	gidGPIO = 990
	gidI2C  = 991
	gidSPI  = 992
)

// piTree is a Raspberry Pi 4 as the probe sees it: I2C, SPI and 1-Wire on, two DS18B20
// (one reading the power-on 85 °C), an EEPROM bound by the kernel on I2C1, spidev not
// loaded although its devices exist (a module loaded by hand), and the user pi in gpio only.
func piTree(t *testing.T) *tree {
	tr := newTree(t)
	tr.file("proc/device-tree/model", "Raspberry Pi 4 Model B Rev 1.4\x00")
	tr.file("etc/passwd", "root:x:0:0:root:/root:/bin/bash\npi:x:1000:1000::/home/pi:/bin/bash\n"+
		"fieldcol:x:999:996::/var/lib/fieldcol:/usr/sbin/nologin\n")
	tr.file("etc/group", fmt.Sprintf("root:x:0:\npi:x:1000:\ngpio:x:%d:pi,fieldcol\ni2c:x:%d:fieldcol\nspi:x:%d:\nfieldcol:x:996:\n",
		gidGPIO, gidI2C, gidSPI))
	tr.device("dev/gpiomem", gidGPIO, 0o660)
	tr.device("dev/gpiochip0", gidGPIO, 0o660)
	tr.device("dev/gpiochip1", gidGPIO, 0o660)
	tr.device("dev/i2c-1", gidI2C, 0o660)
	tr.device("dev/i2c-20", gidI2C, 0o660)
	tr.device("dev/spidev0.0", gidSPI, 0o660)
	tr.device("dev/spidev0.1", 0, 0o600)
	tr.file("sys/class/i2c-dev/i2c-1/name", "bcm2835 (i2c@7e804000)\n")
	tr.file("sys/bus/i2c/devices/1-0050/name", "24c32\n")
	tr.symlink("../../../bus/i2c/drivers/at24", "sys/bus/i2c/devices/1-0050/driver")
	tr.file("sys/bus/i2c/devices/20-0050/name", "hdmi-ddc\n") // another bus: not 1's
	tr.dir("sys/bus/w1/devices/w1_bus_master1")
	tr.file("sys/bus/w1/devices/28-0000075b4a2f/temperature", "21500\n")
	tr.file("sys/bus/w1/devices/28-000000000001/temperature", "85000\n")
	tr.file("sys/bus/w1/devices/10-000801b5a7c2/w1_slave", "2d 00 4b 46 ff ff 04 10 a5 : crc=a5 YES\n2d 00 4b 46 ff ff 04 10 a5 t=22625\n")
	tr.dir("sys/bus/w1/devices/29-0000001c2b3a") // a switch: no temperature
	tr.file("sys/class/thermal/thermal_zone0/type", "cpu-thermal\n")
	tr.file("sys/class/thermal/thermal_zone0/temp", "48312\n")
	tr.file("sys/class/thermal/thermal_zone1/temp", "garbage\n")
	tr.file("proc/modules", "i2c_dev 16384 0 - Live 0x0000000000000000\nw1_therm 28672 0 - Live 0x0000000000000000\n")
	tr.file("proc/sys/kernel/osrelease", "6.6.51+rpt-rpi-v8\n")
	tr.file("lib/modules/6.6.51+rpt-rpi-v8/modules.builtin", "kernel/drivers/w1/masters/w1-gpio.ko\n")
	return tr
}

// pi4Header are the line names of a Raspberry Pi 4's gpiochip0 (pinctrl-bcm2711) up to
// GPIO27, as its device tree gives them; the chip has 58 lines.
var pi4Header = []string{"ID_SDA", "ID_SCL", "GPIO2", "GPIO3", "GPIO4", "GPIO5", "GPIO6", "SPI_CE1_N",
	"SPI_CE0_N", "SPI_MISO", "SPI_MOSI", "SPI_SCLK", "GPIO12", "GPIO13", "TXD1", "RXD1", "GPIO16",
	"GPIO17", "GPIO18", "GPIO19", "GPIO20", "GPIO21", "GPIO22", "GPIO23", "GPIO24", "GPIO25",
	"GPIO26", "GPIO27"}

// piKernel is the GPIO character device of the fake Pi 4: the header chip with the 1-Wire
// overlay holding GPIO4 and a running fieldcol holding GPIO18 as an output, and the
// firmware's expander chip, whose lines switch the board's own LEDs and power.
func piKernel(t *testing.T, tr *tree) *gpiocdev.FakeKernel {
	k := gpiocdev.NewFakeKernel()
	chip0, chip1 := filepath.Join(tr.root, "dev/gpiochip0"), filepath.Join(tr.root, "dev/gpiochip1")
	k.AddChip(chip0, gpiocdev.FakeChip{Name: "gpiochip0", Label: "pinctrl-bcm2711", Lines: pi4Header})
	k.AddChip(chip1, gpiocdev.FakeChip{Name: "gpiochip1", Label: "raspberrypi-exp-gpio",
		Lines: []string{"BT_ON", "WL_ON", "PWR_LED_OFF", "GLOBAL_RESET", "VDD_SD_IO_SEL", "CAM_GPIO", "SD_PWR_ON", ""}})
	k.Claim(chip0, 4, "onewire@0")
	heater, err := gpiocdev.Host{Kernel: k}.Request(chip0, gpiocdev.LineConfig{Offset: 18, Output: true})
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, heater.Close()) })
	return k
}

func TestProbeFakePi(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("the fake device files need chown to the Pi's groups, which needs root")
	}
	tr := piTree(t)
	registerPins(t, "GPIO4", "GPIO17")
	bus := &chipBus{chips: map[uint16]*i2ctest.Playback{
		0x18: mcp9808(0x18, []byte{0x00, 0x54}, []byte{0x04, 0x00}),
		0x19: mcp9808(0x19, []byte{0x12, 0x34}, nil), // an accelerometer at an MCP9808 address
		0x48: answers(0x48),
		0x60: answers(0x60),
	}, fail: map[uint16]error{0x2a: fmt.Errorf("sysfs-i2c: %v", syscall.EIO)}}
	registerBus(t, 1, bus)
	drivers := func() (periph.DriverState, error) {
		return periph.DriverState{
			Loaded:  []string{"ioctl-gpio", "sysfs-i2c"},
			Skipped: []periph.DriverProblem{{Driver: "allwinner-gpio", Reason: "Allwinner CPU not detected"}},
			Failed:  []periph.DriverProblem{{Driver: "bcm283x-dma", Reason: "open /dev/mem: permission denied"}},
		}, nil
	}
	r := Run(context.Background(), Options{
		Root: tr.root + "/", Drivers: drivers, GPIOChips: gpiocdev.Host{Kernel: piKernel(t, tr)}.Chips,
		Identity: &Identity{UID: 1000, GIDs: []int{1000, gidGPIO}},
	})
	bus.done(t)

	assert.Equal(t, BoardSection{Model: "Raspberry Pi 4 Model B Rev 1.4", Source: "/proc/device-tree/model"}, r.Board)

	assert.Equal(t, []string{"ioctl-gpio", "sysfs-i2c"}, r.Periph.Loaded)
	assert.Equal(t, []DriverProblem{{Driver: "bcm283x-dma", Reason: "open /dev/mem: permission denied"}}, r.Periph.Failed)
	assert.Equal(t, []DriverProblem{{Driver: "allwinner-gpio", Reason: "Allwinner CPU not detected"}}, r.Periph.Skipped)
	assert.Contains(t, r.Periph.Pins, "GPIO17")
	assert.Contains(t, r.Periph.I2CBuses, "fake-i2c-1")
	assert.Contains(t, r.Periph.Note, "fix its reason first")

	require.Len(t, r.GPIO.Chips, 2)
	c := r.GPIO.Chips[0]
	assert.Equal(t, "/dev/gpiochip0", c.Path, "paths are shown as on the Pi")
	assert.Equal(t, "pinctrl-bcm2711", c.Label)
	assert.Equal(t, Line{Offset: 4, Name: "GPIO4", Consumer: "onewire@0", Used: true, Pin: "GPIO4", Header: true}, c.Lines[4])
	assert.Equal(t, Line{Offset: 7, Name: "SPI_CE1_N", Pin: "GPIO7", Header: true}, c.Lines[7], "the BCM name opens a line the device tree names otherwise")
	assert.Equal(t, Line{Offset: 18, Name: "GPIO18", Consumer: "fieldcol", Used: true, Output: true, Pin: "GPIO18", Header: true}, c.Lines[18])
	assert.Equal(t, Line{Offset: 2, Name: "PWR_LED_OFF", Pin: "PWR_LED_OFF"}, r.GPIO.Chips[1].Lines[2])
	assert.Equal(t, Line{Offset: 7}, r.GPIO.Chips[1].Lines[7], "an unnamed line off the header has no pin key")
	assert.Empty(t, r.GPIO.Note)

	require.Len(t, r.I2C.Buses, 2)
	b1, b20 := r.I2C.Buses[0], r.I2C.Buses[1]
	assert.Equal(t, "bcm2835 (i2c@7e804000)", b1.Adapter)
	assert.Equal(t, "1", b1.ConfigBus)
	assert.True(t, b1.Scanned)
	var addrs []string
	for _, d := range b1.Devices {
		addrs = append(addrs, hexAddr(d.Address))
	}
	assert.Equal(t, []string{"0x18", "0x19", "0x2a", "0x48", "0x50", "0x60"}, addrs)
	assert.Equal(t, I2CDevice{Address: 0x18, Chip: "MCP9808", Kind: hardware.KindMCP9808,
		Detail: "temperature sensor: manufacturer ID 0x0054, device ID 0x04, revision 0"}, b1.Devices[0])
	assert.Empty(t, b1.Devices[1].Chip)
	assert.Contains(t, b1.Devices[1].Detail, "is not one: manufacturer ID 0x1234 in register 0x06")
	assert.Equal(t, "sysfs-i2c: input/output error", b1.Devices[2].Error)
	assert.Equal(t, "ADS1x15", b1.Devices[3].Chip)
	assert.Equal(t, "24c32 (driver at24)", b1.Devices[4].KernelDriver)
	assert.False(t, bus.wasTouched(0x50), "an address the kernel holds is never read")
	assert.True(t, bus.wasTouched(0x08) && bus.wasTouched(0x77) && !bus.wasTouched(0x07) && !bus.wasTouched(0x78), "the scan covers 0x08..0x77")
	assert.Equal(t, "answers; not a chip fieldcol reads", b1.Devices[5].Detail)
	assert.False(t, b20.Scanned)
	assert.Contains(t, b20.Note, `not scanned: i2creg: can't open unknown bus: "20"`)
	assert.Equal(t, []I2CDevice{{Address: 0x50, KernelDriver: "hdmi-ddc"}}, b20.Devices)

	assert.Equal(t, []SPIPort{{Path: "/dev/spidev0.0", ConfigBus: "SPI0.0"}, {Path: "/dev/spidev0.1", ConfigBus: "SPI0.1"}}, r.SPI.Ports)

	assert.Equal(t, []string{"w1_bus_master1"}, r.OneWire.Masters)
	require.Len(t, r.OneWire.Devices, 4)
	w1 := map[string]W1Device{}
	for _, d := range r.OneWire.Devices {
		w1[d.Name] = d
	}
	assert.InDelta(t, 21.5, *w1["28-0000075b4a2f"].Celsius, 1e-9)
	assert.Equal(t, "DS18B20 (temperature)", w1["28-0000075b4a2f"].Chip)
	assert.Empty(t, w1["28-0000075b4a2f"].Warning)
	assert.Contains(t, w1["28-000000000001"].Warning, "85 °C is the power-on value")
	assert.InDelta(t, 22.625, *w1["10-000801b5a7c2"].Celsius, 1e-9, "read from w1_slave")
	assert.Nil(t, w1["29-0000001c2b3a"].Celsius, "a switch is not read")
	assert.Empty(t, w1["29-0000001c2b3a"].Error)

	require.Len(t, r.Thermal.Zones, 2)
	assert.InDelta(t, 48.312, *r.Thermal.Zones[0].Celsius, 1e-9)
	assert.Equal(t, "cpu-thermal", r.Thermal.Zones[0].Type)
	assert.Contains(t, r.Thermal.Zones[1].Error, `not a temperature in millidegrees Celsius: "garbage"`)

	a := r.Access
	assert.Equal(t, "pi", a.User)
	assert.Equal(t, []string{"pi", "gpio"}, a.Groups)
	assert.Equal(t, []string{"gpio", "i2c", "spi"}, a.Needed)
	assert.Equal(t, []string{"i2c", "spi"}, a.Lacking)
	files := map[string]DeviceFile{}
	for _, f := range a.Files {
		files[f.Path] = f
	}
	assert.True(t, files["/dev/gpiochip0"].Usable)
	assert.Equal(t, "gpio", files["/dev/gpiochip0"].Group)
	assert.False(t, files["/dev/i2c-1"].Usable)
	assert.Equal(t, "not in group i2c", files["/dev/i2c-1"].Problem)
	assert.Contains(t, files["/dev/spidev0.1"].Problem, "only root can open it: a udev rule is missing (Raspberry Pi OS gives it to group spi")
	assert.Equal(t, ServiceUserAccess{Name: "fieldcol", Exists: true, Groups: []string{"fieldcol", "gpio", "i2c"}, Lacking: []string{"spi"}}, a.ServiceUser)

	mods := map[string]string{}
	for _, m := range r.Modules.Modules {
		mods[m.Name] = m.State
	}
	assert.Equal(t, map[string]string{"i2c-dev": "loaded", "spidev": "not loaded", "w1-gpio": "built in", "w1-therm": "loaded"}, mods)
	assert.Contains(t, r.Modules.find("spidev").Hint, "sudo modprobe spidev")

	cfg := parseSuggested(t, r.Suggested)
	assert.Equal(t, hardware.BackendPeriph, cfg.Backend)
	assert.Equal(t, []hardware.DeviceConfig{
		{Name: "soc_temp", Kind: hardware.KindSoCThermal, Channel: 0},
		{Name: "mcp9808_i2c1_0x18", Kind: hardware.KindMCP9808, Bus: "1", Address: 0x18},
		{Name: "ads1115_i2c1_0x48_ch0", Kind: hardware.KindADS1115, Bus: "1", Address: 0x48, Channel: 0},
		{Name: "ds18b20_000000000001", Kind: hardware.KindDS18B20, ROM: "28-000000000001"},
		{Name: "ds18b20_0000075b4a2f", Kind: hardware.KindDS18B20, ROM: "28-0000075b4a2f"},
	}, cfg.Devices)
	assert.Contains(t, r.Suggested, "    # free GPIO lines (without the pins of enabled buses and of the HAT EEPROM): GPIO5,\n"+
		"    #   GPIO6, GPIO12, GPIO13, GPIO14, GPIO15, GPIO16, GPIO17, GPIO19, GPIO20, GPIO21,\n"+
		"    #   GPIO22, GPIO23, GPIO24, GPIO25, GPIO26, GPIO27\n",
		"GPIO0/1 are the HAT EEPROM's, GPIO2/3 carry I2C1 and GPIO7-11 SPI0, GPIO4 and GPIO18 are held, the expander's lines are the board's own")
	assert.Contains(t, r.Suggested, "# an MCP3008 on SPI0.0 cannot be detected")
	assert.Contains(t, r.Suggested, "e.g. - {name: door, kind: gpio_input, pin: GPIO5, pull: up}")

	var out bytes.Buffer
	require.NoError(t, r.WriteText(&out))
	text := out.String()
	assertSections(t, text)
	for _, want := range []string{
		"  Raspberry Pi 4 Model B Rev 1.4 (/proc/device-tree/model)\n",
		"  failed: bcm283x-dma: open /dev/mem: permission denied\n",
		"  gpiochip0 [pinctrl-bcm2711] /dev/gpiochip0: 28 lines, 2 in use\n",
		"      4  GPIO4            in use by \"onewire@0\", input\n",
		"      7  SPI_CE1_N        free; pin: GPIO7\n",
		"     18  GPIO18           in use by \"fieldcol\", output\n",
		"  gpiochip1 [raspberrypi-exp-gpio] /dev/gpiochip1: 8 lines, 0 in use\n",
		"      7  (unnamed)        free\n",
		"  /dev/spidev0.1     root:root 0600  you cannot open it: only root can open it",
		"  /dev/i2c-1 (bcm2835 (i2c@7e804000)), config bus: \"1\", scanned 0x08-0x77\n",
		"    0x18  MCP9808  temperature sensor: manufacturer ID 0x0054, device ID 0x04, revision 0\n",
		"    0x2a  error    sysfs-i2c: input/output error\n",
		"    0x50  UU       held by the kernel: 24c32 (driver at24) (not read)\n",
		"  /dev/spidev0.0, config bus: SPI0.0\n",
		"  28-0000075b4a2f  DS18B20 (temperature)  21.500 °C\n",
		"  thermal_zone0 (cpu-thermal): 48.3 °C\n",
		"  running as pi (uid 1000), groups: pi, gpio\n",
		"  you lack: i2c, spi: sudo adduser pi i2c, then log in again (or run the probe with sudo)\n",
		"  service user fieldcol is in fieldcol, gpio, i2c; it lacks spi: sudo adduser fieldcol spi; then sudo systemctl restart fieldcol\n",
		"  spidev    not loaded for /dev/spidev* (MCP3008): sudo modprobe spidev",
		"hardware:\n  backend: periph\n  devices:\n    - {name: soc_temp, kind: soc_thermal, channel: 0}\n",
	} {
		assert.Contains(t, text, want)
	}
	assert.Equal(t, 1, strings.Count(text, tr.root), "the fake root is named once, at the top, and leaks into no path")

	out.Reset()
	require.NoError(t, r.WriteJSON(&out))
	var back Report
	require.NoError(t, json.Unmarshal(out.Bytes(), &back))
	assert.Equal(t, *r, back, "the JSON report holds everything")
}

// assertSections checks that the text names every section, in order.
func assertSections(t *testing.T, text string) {
	t.Helper()
	at := 0
	for _, title := range Titles() {
		i := strings.Index(text[at:], "== "+title+"\n")
		if !assert.GreaterOrEqual(t, i, 0, "section %q missing or out of order", title) {
			return
		}
		at += i
	}
}

// parseSuggested loads a suggested block as the collector loads a config and validates it.
func parseSuggested(t *testing.T, block string) hardware.Config {
	t.Helper()
	p := filepath.Join(t.TempDir(), "suggested.yaml")
	require.NoError(t, os.WriteFile(p, []byte(block), 0o600))
	cm, err := confmaptest.LoadConf(p)
	require.NoError(t, err, block)
	sub, err := cm.Sub("hardware")
	require.NoError(t, err)
	var cfg hardware.Config
	require.NoError(t, sub.Unmarshal(&cfg), block)
	require.NoError(t, cfg.Validate(), block)
	return cfg
}

// TestProbeEmptyRoot is a machine with nothing: every section says so and why, and the
// suggested block is still a valid config.
func TestProbeEmptyRoot(t *testing.T) {
	tr := newTree(t)
	r := Run(context.Background(), Options{Root: tr.root, Drivers: noDrivers, GPIOChips: chipsOf(nil, errors.New("must not be called"), nil),
		Identity: &Identity{UID: 1000, GIDs: []int{1000}}})
	notes := map[string]string{
		TitleBoard: r.Board.Note, TitlePeriph: r.Periph.Note, TitleGPIO: r.GPIO.Note, TitleI2C: r.I2C.Note,
		TitleSPI: r.SPI.Note, TitleOneWire: r.OneWire.Note, TitleThermal: r.Thermal.Note,
		TitleAccess: r.Access.Note, TitleModules: r.Modules.Note,
	}
	for title, note := range notes {
		assert.NotEmpty(t, note, title)
	}
	assert.Equal(t, "not a device-tree board: no /proc/device-tree/model nor /sys/firmware/devicetree/base/model (a Raspberry Pi has both; this is a PC, a VM or a container)", r.Board.Note)
	assert.Equal(t, "none found: no /dev/gpiochip*: GPIO character device missing (not a Raspberry Pi, or the kernel lacks CONFIG_GPIO_CDEV)", r.GPIO.Note)
	assert.True(t, strings.HasPrefix(r.I2C.Note, "none found: no /dev/i2c-*: I2C is off (sudo raspi-config nonint do_i2c 0"), r.I2C.Note)
	assert.NotContains(t, r.I2C.Note, "modprobe", "without /proc/modules nothing is known of i2c-dev")
	assert.Contains(t, r.OneWire.Note, "dtoverlay=w1-gpio")
	assert.Equal(t, "cannot tell which modules are loaded: no /proc/modules (a container, or a kernel without module support)", r.Modules.Note)
	assert.False(t, r.Access.ServiceUser.Exists)
	assert.Equal(t, "hardware:\n  backend: periph\n  devices: []\n"+
		"    # nothing recognised: enable the buses and wire the chips (the sections above say what is missing), then probe again\n", r.Suggested)
	cfg := parseSuggested(t, r.Suggested)
	assert.Empty(t, cfg.Devices)

	var out bytes.Buffer
	require.NoError(t, r.WriteText(&out))
	assertSections(t, out.String())
	assert.Contains(t, out.String(), "  no user fieldcol: the fieldcol-edge package creates it")
}

// TestProbeHints covers the fixes each section offers for a half-configured Pi.
func TestProbeHints(t *testing.T) {
	t.Run("i2c-dev not loaded", func(t *testing.T) {
		tr := newTree(t)
		tr.file("proc/modules", "w1_gpio 16384 0 - Live 0x0\n")
		r := Run(context.Background(), Options{Root: tr.root, Drivers: noDrivers, Identity: &Identity{UID: 0}})
		assert.True(t, strings.HasSuffix(r.I2C.Note, ", or the i2c-dev module is not loaded (sudo modprobe i2c-dev)"), r.I2C.Note)
		assert.True(t, strings.HasSuffix(r.SPI.Note, ", or the spidev module is not loaded (sudo modprobe spidev)"), r.SPI.Note)
		assert.Equal(t, moduleLoaded, r.Modules.find("w1-gpio").State)
	})
	t.Run("module built in, seen in /sys/module", func(t *testing.T) {
		tr := newTree(t)
		tr.file("proc/modules", "")
		tr.dir("sys/module/i2c_dev")
		r := Run(context.Background(), Options{Root: tr.root, Drivers: noDrivers, Identity: &Identity{UID: 0}})
		assert.Equal(t, moduleBuiltin, r.Modules.find("i2c-dev").State)
		assert.Equal(t, moduleNotLoaded, r.Modules.find("spidev").State)
	})
	t.Run("w1 without bus master", func(t *testing.T) {
		tr := newTree(t)
		tr.dir("sys/bus/w1/devices")
		r := Run(context.Background(), Options{Root: tr.root, Drivers: noDrivers, Identity: &Identity{UID: 0}})
		assert.Contains(t, r.OneWire.Note, "there is no w1_bus_master")
	})
	t.Run("w1 master without sensors", func(t *testing.T) {
		tr := newTree(t)
		tr.dir("sys/bus/w1/devices/w1_bus_master1")
		r := Run(context.Background(), Options{Root: tr.root, Drivers: noDrivers, Identity: &Identity{UID: 0}})
		assert.Contains(t, r.OneWire.Note, "the bus master sees no sensor: check the wiring")
	})
	t.Run("w1_therm not loaded", func(t *testing.T) {
		tr := newTree(t)
		tr.dir("sys/bus/w1/devices/w1_bus_master1")
		tr.dir("sys/bus/w1/devices/28-0000075b4a2f")
		r := Run(context.Background(), Options{Root: tr.root, Drivers: noDrivers, Identity: &Identity{UID: 0}})
		require.Len(t, r.OneWire.Devices, 1)
		assert.Equal(t, "no temperature file: the w1_therm module is not loaded (sudo modprobe w1-therm)", r.OneWire.Devices[0].Error)
		assert.Contains(t, r.Suggested, "rom: 28-0000075b4a2f", "the sensor is suggested all the same")
	})
	t.Run("w1_slave with a bad CRC", func(t *testing.T) {
		tr := newTree(t)
		tr.dir("sys/bus/w1/devices/w1_bus_master1")
		tr.file("sys/bus/w1/devices/28-0000075b4a2f/w1_slave", "50 05 4b 46 7f ff 0c 10 1c : crc=1c NO\n50 05 4b 46 7f ff 0c 10 1c t=85000\n")
		r := Run(context.Background(), Options{Root: tr.root, Drivers: noDrivers, Identity: &Identity{UID: 0}})
		assert.Contains(t, r.OneWire.Devices[0].Error, "failed its CRC check")
	})
	t.Run("a gpio chip unreadable", func(t *testing.T) {
		tr := newTree(t)
		tr.file("dev/gpiochip0", "")
		tr.file("dev/gpiochip1", "")
		k := gpiocdev.NewFakeKernel()
		k.AddChip(filepath.Join(tr.root, "dev/gpiochip0"), gpiocdev.FakeChip{Name: "gpiochip0", Label: "pinctrl-rp1", OpenErr: syscall.EACCES})
		k.AddChip(filepath.Join(tr.root, "dev/gpiochip1"), gpiocdev.FakeChip{Name: "gpiochip1", Label: "other", Lines: []string{"LED"}})
		r := Run(context.Background(), Options{Root: tr.root, Drivers: noDrivers, GPIOChips: gpiocdev.Host{Kernel: k}.Chips, Identity: &Identity{UID: 1000}})
		require.Len(t, r.GPIO.Chips, 1, "the readable chip is listed")
		assert.Equal(t, "gpiochip1", r.GPIO.Chips[0].Name)
		assert.Contains(t, r.GPIO.Note, "permission denied: add the user to the group that owns /dev/gpiochip* (gpio on Raspberry Pi OS), or run with sudo")
		assert.NotContains(t, r.GPIO.Note, tr.root)
	})
	t.Run("periph failed", func(t *testing.T) {
		tr := newTree(t)
		r := Run(context.Background(), Options{Root: tr.root, Identity: &Identity{UID: 0},
			Drivers: func() (periph.DriverState, error) { return periph.DriverState{}, errors.New("boom") }})
		assert.Equal(t, "boom", r.Periph.Error)
		assert.Contains(t, r.Periph.Note, "could not initialise at all")
	})
	t.Run("no scan", func(t *testing.T) {
		tr := newTree(t)
		tr.file("dev/i2c-1", "")
		tr.file("sys/bus/w1/devices/28-0000075b4a2f/temperature", "21500\n")
		tr.dir("sys/bus/w1/devices/w1_bus_master1")
		bus := &chipBus{}
		registerBus(t, 1, bus)
		r := Run(context.Background(), Options{Root: tr.root, NoScan: true, Drivers: noDrivers, Identity: &Identity{UID: 0}})
		assert.Empty(t, bus.touched)
		assert.Equal(t, "not scanned (--no-scan)", r.I2C.Buses[0].Note)
		assert.Nil(t, r.OneWire.Devices[0].Celsius)
		assert.Equal(t, "temperatures not read (--no-scan)", r.OneWire.Note)
	})
}

// TestScanStops: a bus that times out is not scanned on (each timeout costs the kernel's
// adapter timeout), nor is one that fails with errors other than a NACK again and again.
func TestScanStops(t *testing.T) {
	tests := []struct {
		name     string
		fail     map[uint16]error
		wantNote string
		last     uint16
	}{
		{name: "timeout", fail: map[uint16]error{0x10: fmt.Errorf("sysfs-i2c: %v", syscall.ETIMEDOUT)},
			wantNote: "scan stopped at 0x10: the bus timed out", last: 0x10},
		{name: "errors", fail: map[uint16]error{
			0x09: fmt.Errorf("sysfs-i2c: %v", syscall.EIO), 0x0a: fmt.Errorf("sysfs-i2c: %v", syscall.EIO),
			0x20: fmt.Errorf("sysfs-i2c: %v", syscall.EIO),
		}, wantNote: "scan stopped at 0x20 after 3 errors that are not a NACK", last: 0x20},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tr := newTree(t)
			tr.file("dev/i2c-1", "")
			tr.file("sys/bus/i2c/devices/1-0068/name", "ds1307\n") // above the stop: still listed
			bus := &chipBus{fail: tt.fail}
			registerBus(t, 1, bus)
			r := Run(context.Background(), Options{Root: tr.root, Drivers: noDrivers, Identity: &Identity{UID: 0}})
			b := r.I2C.Buses[0]
			assert.Contains(t, b.Note, tt.wantNote)
			assert.Equal(t, tt.last, bus.touched[len(bus.touched)-1])
			assert.Equal(t, uint16(0x68), b.Devices[len(b.Devices)-1].Address)
		})
	}
	t.Run("interrupted", func(t *testing.T) {
		tr := newTree(t)
		tr.file("dev/i2c-1", "")
		bus := &chipBus{}
		registerBus(t, 1, bus)
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		r := Run(ctx, Options{Root: tr.root, Drivers: noDrivers, Identity: &Identity{UID: 0}})
		assert.Empty(t, bus.touched)
		assert.Equal(t, "not scanned: interrupted", r.I2C.Buses[0].Note)
	})
}

// TestOneWireReadTimeout: a sensor whose read hangs in the kernel costs the probe
// W1Timeout, not forever. A FIFO without a writer blocks its reader the way a hung w1
// read does.
func TestOneWireReadTimeout(t *testing.T) {
	tr := newTree(t)
	tr.dir("sys/bus/w1/devices/w1_bus_master1")
	tr.dir("sys/bus/w1/devices/28-0000075b4a2f")
	fifo := filepath.Join(tr.root, "sys/bus/w1/devices/28-0000075b4a2f/temperature")
	require.NoError(t, syscall.Mkfifo(fifo, 0o600))
	start := time.Now()
	r := Run(context.Background(), Options{Root: tr.root, Drivers: noDrivers, Identity: &Identity{UID: 0}, W1Timeout: 100 * time.Millisecond})
	assert.Less(t, time.Since(start), 5*time.Second)
	assert.Equal(t, "no reading within 100ms: the sensor does not answer", r.OneWire.Devices[0].Error)
	// Release the abandoned read so that no goroutine outlives the test.
	w, err := os.OpenFile(fifo, os.O_WRONLY, 0)
	require.NoError(t, err)
	_, err = w.WriteString("21500\n")
	require.NoError(t, err)
	require.NoError(t, w.Close())
}

// TestPinKey covers the names a pin key opens lines by, and the lines no name opens.
func TestPinKey(t *testing.T) {
	chips := []gpiocdev.ChipInfo{
		{Name: "gpiochip10", Label: "some-expander", Path: "/dev/gpiochip10", Lines: []gpiocdev.LineInfo{
			{Offset: 0, Name: "ID_SDA"}, {Offset: 1, Name: "LED"}, {Offset: 2, Name: ""}, {Offset: 3, Name: "GPIO1"},
		}},
		{Name: "gpiochip0", Label: "pinctrl-rp1", Path: "/dev/gpiochip0", Lines: []gpiocdev.LineInfo{
			{Offset: 0, Name: "ID_SDA"}, {Offset: 1, Name: ""}, {Offset: 2, Name: "SDA1"},
		}},
	}
	tests := []struct {
		chip, line int
		want       string
		why        string
	}{
		{1, 0, "GPIO0", "the BCM name of a header line"},
		{1, 2, "GPIO2", "the BCM name, not the device tree's"},
		{1, 1, "", "a line's name beats a BCM number: GPIO1 opens the expander's line 3"},
		{0, 3, "GPIO1", "its own name"},
		{0, 0, "", "the header chip is searched first: ID_SDA opens its line 0"},
		{0, 1, "LED", "its own name"},
		{0, 2, "", "unnamed, off the header"},
	}
	for _, tt := range tests {
		c := chips[tt.chip]
		assert.Equal(t, tt.want, pinKey(chips, c, c.Lines[tt.line]), "%s line %d: %s", c.Name, tt.line, tt.why)
	}
}
