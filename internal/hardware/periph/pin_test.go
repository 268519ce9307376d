package periph

import (
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"
	"periph.io/x/conn/v3/gpio"
	"periph.io/x/conn/v3/gpio/gpiotest"

	"github.com/fieldcol/fieldcol/internal/hardware"
	"github.com/fieldcol/fieldcol/internal/hardware/gpiocdev"
)

// The package's tests see a host without gpiochips, without a device tree and without
// /dev/mem unless a test says otherwise, so that the gpiotest doubles in gpioreg are what
// the periph backend opens, also when the tests run on a Pi.
func init() {
	periphGPIO.GPIOPaths = GPIOPaths{DevDir: "testdata/no-such-dev", Model: "testdata/no-such-model",
		Compatible: "testdata/no-such-compatible", DevMem: "testdata/no-such-mem"}
}

// withGPIO replaces the periph backend's GPIO environment for one test.
func withGPIO(t *testing.T, edit func(*gpioEnv)) {
	t.Helper()
	orig := periphGPIO
	t.Cleanup(func() { periphGPIO = orig })
	edit(&periphGPIO)
}

// kernelPi puts a fake kernel with one header chip (label) at devDir/chipName under the
// periph backend and returns the kernel and the chip's path.
func kernelPi(t *testing.T, chipName, label string, lines int) (*gpiocdev.FakeKernel, string) {
	t.Helper()
	dev := t.TempDir()
	chip := filepath.Join(dev, chipName)
	require.NoError(t, os.WriteFile(chip, nil, 0o600))
	k := gpiocdev.NewFakeKernel()
	names := make([]string, lines)
	for i := range names {
		names[i] = fmt.Sprintf("GPIO%d", i)
	}
	k.AddChip(chip, gpiocdev.FakeChip{Name: chipName, Label: label, Lines: names})
	withGPIO(t, func(e *gpioEnv) {
		e.DevDir = dev
		e.cdev = gpiocdev.Host{Kernel: k}
	})
	return k, chip
}

// On a host with gpiochips every output is a kernel line request whose initial value is
// the off level: the first level the line is ever driven to is off.
func TestPeriphOutputsAreKernelLineRequests(t *testing.T) {
	k, chip := kernelPi(t, "gpiochip0", "pinctrl-bcm2711", 58)
	s, err := newRegistry(nil).Open(hardware.Config{Backend: hardware.BackendPeriph, Devices: []hardware.DeviceConfig{
		{Name: "motor_on", Kind: hardware.KindGPIOOutput, Pin: "GPIO22"},
		{Name: "alarm", Kind: hardware.KindGPIOOutput, Pin: "GPIO23", ActiveLow: true},
		{Name: "heater", Kind: hardware.KindDutyOutput, Pin: "GPIO27"},
	}}, hardware.Settings{})
	require.NoError(t, err)
	for _, off := range []int{22, 23, 27} {
		r := k.Request(chip, off)
		assert.True(t, r.Requested && r.Output, "line %d", off)
		assert.Equal(t, "fieldcol", r.Consumer)
	}
	assert.Equal(t, []bool{false}, k.History(chip, 22), "driven low by the request itself")
	assert.Equal(t, []bool{true}, k.History(chip, 23), "an active-low output starts electrically high")
	assert.True(t, k.Request(chip, 23).ActiveLow, "the kernel inverts it")
	assert.Equal(t, []bool{false}, k.History(chip, 27))

	on, err := s.DigitalOutput("motor_on")
	require.NoError(t, err)
	require.NoError(t, on.WriteLevel(ctx, true))
	alarm, err := s.DigitalOutput("alarm")
	require.NoError(t, err)
	require.NoError(t, alarm.WriteLevel(ctx, true))
	assert.True(t, k.Level(chip, 22))
	assert.False(t, k.Level(chip, 23))

	require.NoError(t, s.Close())
	assert.False(t, k.Level(chip, 22), "Close drives outputs off")
	assert.True(t, k.Level(chip, 23))
	for _, off := range []int{22, 23, 27} {
		assert.False(t, k.Request(chip, off).Requested, "line %d released", off)
	}
}

// An output whose safe state is on (a brake that holds when energized, from the loop's
// enable_safe_state) is requested on and left on when the session closes; a duty_output
// with a safe duty switches it from the start.
func TestPeriphOutputsStartAndEndAtTheirSafeState(t *testing.T) {
	k, chip := kernelPi(t, "gpiochip0", "pinctrl-bcm2711", 58)
	s, err := newRegistry(nil).Open(hardware.Config{Backend: hardware.BackendPeriph, Devices: []hardware.DeviceConfig{
		{Name: "brake", Kind: hardware.KindGPIOOutput, Pin: "GPIO22"},
		{Name: "heater", Kind: hardware.KindGPIOOutput, Pin: "GPIO23"},
		{Name: "damper", Kind: hardware.KindDutyOutput, Pin: "GPIO27", MinOnTime: time.Millisecond},
	}}, hardware.Settings{SafeStates: map[string]float64{"brake": 1, "damper": 0.75}})
	require.NoError(t, err)
	assert.Equal(t, []bool{true}, k.History(chip, 22), "the brake is on from the request")
	assert.Equal(t, []bool{false}, k.History(chip, 23), "an output not listed is safe off")
	assert.True(t, k.Level(chip, 27), "the damper's safe duty is switched at once")
	brake, err := s.DigitalOutput("brake")
	require.NoError(t, err)
	require.NoError(t, brake.WriteLevel(ctx, false))
	require.NoError(t, s.Close())
	assert.True(t, k.Level(chip, 22), "Close drives the brake back to its safe state")
	assert.False(t, k.Level(chip, 23))
	assert.True(t, k.Level(chip, 27), "a time-proportioned output is left at the level nearer its safe duty")
}

// What safe-outputs does after a crash: the crashed process left the heater's line on (the
// Raspberry Pi kernel keeps a released output's level); opening the actuator alone
// through the registry, as DriveSafe does, drives it off by the request itself.
func TestPeriphReopenAfterCrashDrivesOffAtRequest(t *testing.T) {
	k, chip := kernelPi(t, "gpiochip0", "pinctrl-rp1", 54)
	crashed, err := gpiocdev.Host{Kernel: k}.Request(chip, gpiocdev.LineConfig{Offset: 17, Output: true, Value: true})
	require.NoError(t, err)
	require.NoError(t, crashed.Close()) // the process died: its fd is closed, the level stays
	require.True(t, k.Level(chip, 17))

	s, err := newRegistry(nil).Open(hardware.Config{Backend: hardware.BackendPeriph, Devices: []hardware.DeviceConfig{
		{Name: "heater_ssr", Kind: hardware.KindDutyOutput, Pin: "GPIO17"},
	}}, hardware.Settings{})
	require.NoError(t, err)
	assert.Equal(t, []bool{true, false}, k.History(chip, 17), "off at the request, before any write")
	h, err := s.DutyOutput("heater_ssr")
	require.NoError(t, err)
	require.NoError(t, h.WriteDuty(ctx, 0))
	require.NoError(t, s.Close())
	assert.False(t, k.Level(chip, 17))
}

// A duty of 0 written through the device switches the SSR off before WriteDuty returns.
func TestPeriphDutyZeroIsOffWhenWriteDutyReturns(t *testing.T) {
	k, chip := kernelPi(t, "gpiochip0", "pinctrl-bcm2711", 58)
	c := newStepClock()
	withGPIO(t, func(e *gpioEnv) { e.clock = c })
	s := openPeriph(t, hardware.DeviceConfig{Name: "heater", Kind: hardware.KindDutyOutput, Pin: "GPIO27", Period: 2 * time.Second})
	h, err := s.DutyOutput("heater")
	require.NoError(t, err)
	require.NoError(t, h.WriteDuty(ctx, 1))
	assert.True(t, k.Level(chip, 27))
	c.Advance(700 * time.Millisecond)
	require.NoError(t, h.WriteDuty(ctx, 0))
	assert.False(t, k.Level(chip, 27))
	assert.Equal(t, []bool{false, true, false}, k.History(chip, 27))
	assert.Zero(t, c.Fired())
}

func TestPeriphInputLineRequest(t *testing.T) {
	tests := []struct {
		dev  hardware.DeviceConfig
		want gpiocdev.FakeRequestInfo
	}{
		{hardware.DeviceConfig{Pull: "up", Edge: "both", ActiveLow: true, Debounce: 5 * time.Millisecond},
			gpiocdev.FakeRequestInfo{PullUp: true, Rising: true, Falling: true, ActiveLow: true, DebounceMicros: 5000}},
		{hardware.DeviceConfig{Pull: "down"}, gpiocdev.FakeRequestInfo{PullDown: true, Rising: true}},
		{hardware.DeviceConfig{Pull: "off", Edge: "falling"}, gpiocdev.FakeRequestInfo{BiasDisabled: true, Falling: true}},
		{hardware.DeviceConfig{Pull: "none"}, gpiocdev.FakeRequestInfo{Rising: true}}, // no bias flag: left as it is
	}
	for i, tt := range tests {
		t.Run(string(tt.dev.Pull), func(t *testing.T) {
			k, chip := kernelPi(t, "gpiochip0", "pinctrl-bcm2711", 58)
			dc := tt.dev
			dc.Name, dc.Kind, dc.Pin = "in", hardware.KindGPIOInput, "GPIO5"
			openPeriph(t, dc)
			want := tt.want
			want.Requested, want.Consumer, want.EventBuffer = true, "fieldcol", gpiocdev.MaxEventBuffer
			assert.Equal(t, want, k.Request(chip, 5), "case %d", i)
		})
	}
}

// Edges are counted from line_seqno: every edge the kernel numbered is counted, and the
// level follows the line.
func TestPeriphEdgesFromKernelSeqno(t *testing.T) {
	k, chip := kernelPi(t, "gpiochip0", "pinctrl-rp1", 54)
	s := openPeriph(t, hardware.DeviceConfig{Name: "flow", Kind: hardware.KindGPIOInput, Pin: "GPIO6", Pull: "down", Edge: "rising"})
	flow, err := s.DigitalInput("flow")
	require.NoError(t, err)
	for range 3000 {
		k.SetInput(chip, 6, true)
		k.SetInput(chip, 6, false)
	}
	assert.Eventually(t, func() bool {
		n, err := flow.Edges(ctx)
		return err == nil && n == 3000
	}, 5*time.Second, 5*time.Millisecond)
	k.SetInput(chip, 6, true)
	lvl, err := flow.ReadLevel(ctx)
	require.NoError(t, err)
	assert.True(t, lvl)
}

// When the kernel's buffer overflowed, the events read are fewer than the edges, and the
// count still is the number of edges.
func TestCountSeqnoAcrossOverflow(t *testing.T) {
	k, chip := kernelPi(t, "gpiochip0", "pinctrl-rp1", 54)
	l, err := gpiocdev.Host{Kernel: k}.Request(chip, gpiocdev.LineConfig{Offset: 6, Edge: gpiocdev.EdgeRising, EventBufferSize: 4})
	require.NoError(t, err)
	for range 10 {
		k.SetInput(chip, 6, true)
		k.SetInput(chip, 6, false)
	}
	p := &periphPin{name: "GPIO6", done: make(chan struct{})}
	go p.countSeqno(l)
	assert.Eventually(t, func() bool { n, _ := p.RawEdges(ctx, 0); return n == 10 }, 2*time.Second, time.Millisecond,
		"4 events read, 10 edges counted")
	require.NoError(t, l.Close())
	<-p.done
	n, err := p.RawEdges(ctx, 0)
	require.NoError(t, err, "a closed line is not an error")
	assert.Equal(t, uint64(10), n)
}

// The line_seqno counter is 32 bits: the count goes on across its wrap.
func TestCountSeqnoWraps(t *testing.T) {
	p := &periphPin{lastSeqno: 0xfffffffe, edgeCount: 0xfffffffe}
	p.mu.Lock()
	for _, seq := range []uint32{0xffffffff, 0, 3} {
		p.edgeCount += uint64(seq - p.lastSeqno)
		p.lastSeqno = seq
	}
	p.mu.Unlock()
	assert.Equal(t, uint64(0xffffffff)+4, p.edgeCount)
}

// On a Pi 5 with an older kernel the header is gpiochip4, labelled pinctrl-rp1.
func TestPeriphPi5HeaderChip(t *testing.T) {
	dev := t.TempDir()
	k := gpiocdev.NewFakeKernel()
	for _, c := range []struct{ name, label string }{{"gpiochip0", "gpio-brcmstb@107d508500"}, {"gpiochip4", "pinctrl-rp1"}} {
		p := filepath.Join(dev, c.name)
		require.NoError(t, os.WriteFile(p, nil, 0o600))
		names := make([]string, 54)
		for i := range names {
			names[i] = fmt.Sprintf("GPIO%d", i)
		}
		k.AddChip(p, gpiocdev.FakeChip{Name: c.name, Label: c.label, Lines: names})
	}
	withGPIO(t, func(e *gpioEnv) { e.DevDir, e.cdev = dev, gpiocdev.Host{Kernel: k} })
	openPeriph(t, hardware.DeviceConfig{Name: "ssr", Kind: hardware.KindGPIOOutput, Pin: "GPIO17"})
	assert.True(t, k.Request(filepath.Join(dev, "gpiochip4"), 17).Requested)
	assert.False(t, k.Request(filepath.Join(dev, "gpiochip0"), 17).Requested)
}

func TestPeriphLineOpenErrors(t *testing.T) {
	t.Run("permission", func(t *testing.T) {
		dev := t.TempDir()
		chip := filepath.Join(dev, "gpiochip0")
		require.NoError(t, os.WriteFile(chip, nil, 0o600))
		k := gpiocdev.NewFakeKernel()
		k.AddChip(chip, gpiocdev.FakeChip{Name: "gpiochip0", Label: "pinctrl-bcm2711", Lines: []string{"GPIO0"}, OpenErr: syscall.EACCES})
		withGPIO(t, func(e *gpioEnv) { e.DevDir, e.cdev = dev, gpiocdev.Host{Kernel: k} })
		err := openError(t, hardware.Config{Backend: hardware.BackendPeriph, Devices: []hardware.DeviceConfig{{Name: "ssr", Kind: hardware.KindGPIOOutput, Pin: "GPIO17"}}})
		require.Error(t, err)
		assert.Contains(t, err.Error(), `device "ssr"`)
		assert.Contains(t, err.Error(), "permission denied")
		assert.Contains(t, err.Error(), "group gpio")
	})
	t.Run("in use", func(t *testing.T) {
		k, chip := kernelPi(t, "gpiochip0", "pinctrl-bcm2711", 58)
		k.Claim(chip, 14, "serial0")
		err := openError(t, hardware.Config{Backend: hardware.BackendPeriph, Devices: []hardware.DeviceConfig{{Name: "ssr", Kind: hardware.KindGPIOOutput, Pin: "GPIO14"}}})
		require.Error(t, err)
		assert.ErrorIs(t, err, syscall.EBUSY)
		assert.Contains(t, err.Error(), "GPIO14 is in use by a kernel driver or another process: see gpioinfo")
	})
	t.Run("no such line", func(t *testing.T) {
		kernelPi(t, "gpiochip0", "pinctrl-bcm2711", 58)
		err := openError(t, hardware.Config{Backend: hardware.BackendPeriph, Devices: []hardware.DeviceConfig{{Name: "ssr", Kind: hardware.KindGPIOOutput, Pin: "P1_11"}}})
		require.ErrorContains(t, err, `no GPIO line named "P1_11" on gpiochip0 (pinctrl-bcm2711, 58 lines)`)
	})
}

// Without gpiochips, debounce cannot be had: refused at open, naming the key.
func TestPeriphDebounceNeedsTheKernel(t *testing.T) {
	registerPin(t, &gpiotest.Pin{N: "FCT06", Num: 9006})
	_, err := newRegistry(nil).Open(hardware.Config{Backend: hardware.BackendPeriph, Devices: []hardware.DeviceConfig{
		{Name: "reed", Kind: hardware.KindGPIOInput, Pin: "FCT06", Pull: "up", Debounce: 5 * time.Millisecond},
	}}, hardware.Settings{})
	require.ErrorContains(t, err, "debounce: needs the kernel's GPIO character device")
}

// On register pins, pull none asks periph to leave the pull as it is (PullNoChange, which
// periph's bcm283x driver honours), off disables it (Float).
func TestPeriphRegisterPull(t *testing.T) {
	for _, tt := range []struct {
		pull string
		want gpio.Pull
	}{{"none", gpio.PullNoChange}, {"off", gpio.Float}, {"up", gpio.PullUp}, {"down", gpio.PullDown}} {
		t.Run(tt.pull, func(t *testing.T) {
			pin := &gpiotest.Pin{N: "FCT07", Num: 9007, EdgesChan: make(chan gpio.Level)}
			registerPin(t, pin)
			openPeriph(t, hardware.DeviceConfig{Name: "in", Kind: hardware.KindGPIOInput, Pin: "FCT07", Pull: hardware.Pull(tt.pull)})
			pin.Lock()
			got := pin.P
			pin.Unlock()
			assert.Equal(t, tt.want, got)
		})
	}
}

func TestPeriphPWMRefusals(t *testing.T) {
	pin := &gpiotest.Pin{N: "FCT18", Num: 9018}
	registerPin(t, pin)
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		require.NoError(t, os.WriteFile(p, []byte(content), 0o600))
		return p
	}
	mem := write("mem", "")
	tests := []struct {
		name       string
		model      string
		compatible string
		devMem     string
		want       string
	}{
		{"pi 5 by compatible", "Raspberry Pi 5 Model B Rev 1.0\x00", "raspberrypi,5-model-b\x00brcm,bcm2712\x00", mem,
			"pwm_frequency: hardware PWM is not supported on this board (Raspberry Pi 5 Model B Rev 1.0 (brcm,bcm2712))"},
		{"cm5 by model", "Raspberry Pi Compute Module 5 Rev 1.0\x00", "", mem,
			"pwm_frequency: hardware PWM is not supported on this board (Raspberry Pi Compute Module 5 Rev 1.0)"},
		{"no /dev/mem", "Raspberry Pi 4 Model B Rev 1.5\x00", "raspberrypi,4-model-b\x00brcm,bcm2711\x00", filepath.Join(dir, "absent-mem"),
			"pwm_frequency: hardware PWM needs " + filepath.Join(dir, "absent-mem") + " opened read-write"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			withGPIO(t, func(e *gpioEnv) {
				e.Model, e.Compatible, e.DevMem = write("model", tt.model), write("compatible", tt.compatible), tt.devMem
			})
			_, err := newRegistry(nil).Open(hardware.Config{Backend: hardware.BackendPeriph, Devices: []hardware.DeviceConfig{
				{Name: "fan", Kind: hardware.KindDutyOutput, Pin: "FCT18", PWMFrequency: 25000},
			}}, hardware.Settings{})
			require.Error(t, err)
			assert.Contains(t, err.Error(), `device "fan"`)
			assert.Contains(t, err.Error(), tt.want)
		})
	}
}

// Options.GPIO points one registry's backend at another host's files; the others keep
// theirs.
func TestOptionsGPIOPaths(t *testing.T) {
	registerPin(t, &gpiotest.Pin{N: "FCT19", Num: 9019})
	dir := t.TempDir()
	model := filepath.Join(dir, "model")
	require.NoError(t, os.WriteFile(model, []byte("Raspberry Pi 500 Rev 1.0\x00"), 0o600))
	mem := filepath.Join(dir, "mem")
	require.NoError(t, os.WriteFile(mem, nil, 0o600))
	fan := hardware.Config{Backend: hardware.BackendPeriph, Devices: []hardware.DeviceConfig{{Name: "fan", Kind: hardware.KindDutyOutput, Pin: "FCT19", PWMFrequency: 100}}}

	pi500 := registryOn(GPIOPaths{DevDir: dir, Model: model, Compatible: filepath.Join(dir, "none"), DevMem: mem})
	_, err := pi500.Open(fan, hardware.Settings{})
	require.ErrorContains(t, err, "pwm_frequency: hardware PWM is not supported on this board (Raspberry Pi 500 Rev 1.0)")

	pi4 := registryOn(GPIOPaths{DevDir: dir, Model: filepath.Join(dir, "none"), Compatible: filepath.Join(dir, "none"), DevMem: mem})
	s, err := pi4.Open(fan, hardware.Settings{})
	require.NoError(t, err)
	require.NoError(t, s.Close())

	_, err = newRegistry(nil).Open(fan, hardware.Settings{})
	require.ErrorContains(t, err, "pwm_frequency: hardware PWM needs testdata/no-such-mem opened read-write")
}

// registryOn is a registry whose periph backend finds the host's GPIO files at paths.
func registryOn(paths GPIOPaths) *hardware.Registry {
	return hardware.NewRegistry(nil, hardware.Backends{hardware.BackendPeriph: New(Options{GPIO: paths})})
}

// The start-up log says whether outputs are held by the kernel.
func TestPeriphLogsHowGPIOIsDriven(t *testing.T) {
	core, logs := observer.New(zap.InfoLevel)
	s, err := newRegistry(nil).Open(hardware.Config{Backend: hardware.BackendPeriph}, hardware.Settings{Logger: zap.New(core)})
	require.NoError(t, err)
	require.NoError(t, s.Close())
	warn := logs.FilterMessageSnippet("outputs are not held by the kernel").All()
	require.Len(t, warn, 1)
	assert.Equal(t, zap.WarnLevel, warn[0].Level)

	kernelPi(t, "gpiochip0", "pinctrl-bcm2711", 58)
	core, logs = observer.New(zap.InfoLevel)
	s, err = newRegistry(nil).Open(hardware.Config{Backend: hardware.BackendPeriph}, hardware.Settings{Logger: zap.New(core)})
	require.NoError(t, err)
	require.NoError(t, s.Close())
	assert.Len(t, logs.FilterMessageSnippet(`GPIO through kernel line requests (consumer "fieldcol")`).All(), 1)
}
