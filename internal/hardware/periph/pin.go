package periph

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"
	"sync"
	"syscall"
	"time"

	"periph.io/x/conn/v3/gpio"
	"periph.io/x/conn/v3/gpio/gpioreg"
	"periph.io/x/conn/v3/physic"

	"github.com/fieldcol/fieldcol/internal/hardware"
	"github.com/fieldcol/fieldcol/internal/hardware/gpiocdev"
)

// GPIOPaths are the host files the periph backend's GPIO depends on. Tests, or a probe of
// a temporary root, point them elsewhere with Options.GPIO.
type GPIOPaths struct {
	// DevDir holds the gpiochipN character devices ("/dev").
	DevDir string
	// Model and Compatible are the device tree's board model and compatible strings
	// ("/proc/device-tree/model", "/proc/device-tree/compatible").
	Model, Compatible string
	// DevMem is the memory device hardware PWM opens read-write ("/dev/mem").
	DevMem string
}

// DefaultGPIOPaths are a Raspberry Pi's.
func DefaultGPIOPaths() GPIOPaths {
	return GPIOPaths{DevDir: "/dev", Model: "/proc/device-tree/model", Compatible: "/proc/device-tree/compatible", DevMem: "/dev/mem"}
}

// gpioEnv is where the periph backend finds the host's GPIO.
type gpioEnv struct {
	GPIOPaths
	// cdev is the GPIO character device API (the real kernel unless a test sets a fake).
	cdev gpiocdev.Host
	// clock times time-proportional switching.
	clock switchClock
}

// periphGPIO is the environment of a backend that was given no GPIOPaths; a variable so
// that this package's tests can put a fake kernel and a step clock under the backend.
var periphGPIO = gpioEnv{GPIOPaths: DefaultGPIOPaths(), clock: wallSwitchClock{}}

// gpioHost is how the periph backend reaches GPIO on this host: through kernel line
// requests on /dev/gpiochipN whenever the host has one (every Raspberry Pi, Pi 5 included),
// through periph's register pins (gpioreg) only when it has none.
type gpioHost struct {
	env gpioEnv
	// chips are the gpiochip devices found at start; none means register access.
	chips []string
	// listErr is why devDir could not be listed, reported when a pin is opened.
	listErr error
}

func newGPIOHost(env gpioEnv) *gpioHost {
	g := &gpioHost{env: env}
	g.chips, g.listErr = gpiocdev.ChipPaths(env.DevDir)
	return g
}

// kernelLines reports whether pins go through kernel line requests.
func (g *gpioHost) kernelLines() bool { return len(g.chips) > 0 }

// describe says how GPIO is driven here, for the start-up log.
func (g *gpioHost) describe() string {
	if g.kernelLines() {
		return fmt.Sprintf("GPIO through kernel line requests (consumer %q) on %s: outputs are held by the kernel while fieldcol runs", gpiocdev.Consumer, strings.Join(g.chips, ", "))
	}
	return fmt.Sprintf("no gpiochip in %s: GPIO through periph's register access; outputs are not held by the kernel and keep their last level if the process dies", g.env.DevDir)
}

// pinLine is the line a periphPin drives or reads, at the logical level.
type pinLine interface {
	set(on bool) error
	get() (bool, error)
	// release gives the line back; an output was driven off before.
	release() error
}

// cdevLine is a kernel line request: active low is applied by the kernel.
type cdevLine struct{ l *gpiocdev.Line }

func (c cdevLine) set(on bool) error  { return c.l.Set(on) }
func (c cdevLine) get() (bool, error) { return c.l.Value() }
func (c cdevLine) release() error     { return c.l.Close() }

// regLine is a periph register pin.
type regLine struct {
	p         gpio.PinIO
	activeLow bool
}

func (r regLine) wire(on bool) gpio.Level { return gpio.Level(on != r.activeLow) }
func (r regLine) set(on bool) error       { return r.p.Out(r.wire(on)) }
func (r regLine) get() (bool, error)      { return (r.p.Read() == gpio.High) != r.activeLow, nil }
func (r regLine) release() error          { return nil }

// periphPin is a GPIO pin opened by one device; a pin is never shared between devices
// because edge counting and output state belong to one owner.
type periphPin struct {
	name string
	line pinLine
	reg  gpio.PinIO // the register pin, for hardware PWM and register edges; nil on cdev
	pwm  physic.Frequency
	prop *proportioner
	safe float64 // the output's safe state: written at open, left at close

	mu        sync.Mutex
	edgeCount uint64
	lastSeqno uint32
	edgeErr   error
	stop      chan struct{}
	done      chan struct{}
}

func (b *Backend) openPin(spec *hardware.Spec) (any, func() error, error) {
	dc := &spec.DeviceConfig
	if _, taken := b.pins[dc.Pin]; taken {
		return nil, nil, fmt.Errorf("pin %s is already used by another device", dc.Pin)
	}
	g := b.gpio
	var (
		pp     *periphPin
		closer func() error
		err    error
	)
	switch {
	case dc.Kind == hardware.KindDutyOutput && dc.PWMFrequency > 0:
		pp, closer, err = g.openPWM(spec)
	case g.kernelLines():
		pp, closer, err = g.openLine(spec)
	case g.listErr != nil:
		err = g.listErr
	default:
		pp, closer, err = g.openRegister(spec)
	}
	if err != nil {
		return nil, nil, err
	}
	b.pins[dc.Pin] = pp
	// Backend closers run under b.mu (see Close).
	b.closers = append(b.closers, func() error { delete(b.pins, dc.Pin); return nil })
	return pp, closer, nil
}

// openLine requests the pin from the kernel. An output's request carries its off level,
// so the line is driven safe from the instant it is requested.
func (g *gpioHost) openLine(spec *hardware.Spec) (*periphPin, func() error, error) {
	dc := &spec.DeviceConfig
	chip, offset, err := g.env.cdev.Find(g.env.DevDir, dc.Pin)
	if err != nil {
		return nil, nil, permissionHint(err)
	}
	cfg := gpiocdev.LineConfig{Offset: offset, ActiveLow: dc.ActiveLow}
	if dc.Kind == hardware.KindGPIOInput {
		cfg.Bias = map[hardware.Pull]gpiocdev.Bias{hardware.PullUp: gpiocdev.BiasPullUp, hardware.PullDown: gpiocdev.BiasPullDown, hardware.PullOff: gpiocdev.BiasDisabled}[dc.Pull]
		cfg.Edge = map[hardware.Edge]gpiocdev.Edge{"": gpiocdev.EdgeRising, hardware.EdgeRising: gpiocdev.EdgeRising, hardware.EdgeFalling: gpiocdev.EdgeFalling, hardware.EdgeBoth: gpiocdev.EdgeBoth}[dc.Edge]
		cfg.Debounce = dc.Debounce
		// The largest buffer the kernel gives: events are counted from line_seqno, so a
		// full buffer loses no count, but a bigger one keeps more of the edges' timestamps.
		cfg.EventBufferSize = gpiocdev.MaxEventBuffer
	} else {
		// A gpio_output is requested at its safe level; a duty_output off, and its
		// proportioner then switches the safe duty.
		cfg.Output, cfg.Value = true, dc.Kind == hardware.KindGPIOOutput && spec.SafeLevel()
	}
	l, err := g.env.cdev.Request(chip, cfg)
	if err != nil {
		return nil, nil, permissionHint(inUseHint(err, dc.Pin))
	}
	pp := &periphPin{name: dc.Pin, line: cdevLine{l}, safe: spec.Safe}
	switch dc.Kind {
	case hardware.KindGPIOInput:
		pp.stop, pp.done = make(chan struct{}), make(chan struct{})
		go pp.countSeqno(l)
		return pp, func() error { err := l.Close(); <-pp.done; return err }, nil
	case hardware.KindDutyOutput:
		pp.prop = newProportioner(pp.line.set, g.env.clock, dc.DutyPeriod(), dc.MinSwitchTime())
		if err := pp.startSafe(); err != nil {
			_ = pp.closeOutput()
			return nil, nil, err
		}
	}
	return pp, pp.closeOutput, nil
}

// openRegister opens the pin through periph's registry (register access), for a host
// without GPIO character devices.
func (g *gpioHost) openRegister(spec *hardware.Spec) (*periphPin, func() error, error) {
	dc := &spec.DeviceConfig
	p := gpioreg.ByName(dc.Pin)
	if p == nil {
		return nil, nil, fmt.Errorf("no GPIO pin named %q on this host", dc.Pin)
	}
	pp := &periphPin{name: dc.Pin, line: regLine{p: p, activeLow: dc.ActiveLow}, reg: p, safe: spec.Safe}
	switch dc.Kind {
	case hardware.KindGPIOInput:
		if dc.Debounce != 0 {
			return nil, nil, hardware.Refuse(fmt.Errorf("debounce: needs the kernel's GPIO character device, and %s has no gpiochip; drop debounce", g.env.DevDir))
		}
		pull := map[hardware.Pull]gpio.Pull{hardware.PullNone: gpio.PullNoChange, hardware.PullUp: gpio.PullUp, hardware.PullDown: gpio.PullDown, hardware.PullOff: gpio.Float}[dc.Pull]
		edge := map[hardware.Edge]gpio.Edge{"": gpio.RisingEdge, hardware.EdgeRising: gpio.RisingEdge, hardware.EdgeFalling: gpio.FallingEdge, hardware.EdgeBoth: gpio.BothEdges}[dc.Edge]
		// active_low swaps what a logical rising edge is on the wire.
		if dc.ActiveLow && edge != gpio.BothEdges {
			edge = map[gpio.Edge]gpio.Edge{gpio.RisingEdge: gpio.FallingEdge, gpio.FallingEdge: gpio.RisingEdge}[edge]
		}
		if err := p.In(pull, edge); err != nil {
			return nil, nil, fmt.Errorf("configuring %s as input: %w", dc.Pin, err)
		}
		pp.stop, pp.done = make(chan struct{}), make(chan struct{})
		go pp.countEdges()
		return pp, pp.stopEdges, nil
	}
	if err := pp.line.set(dc.Kind == hardware.KindGPIOOutput && spec.SafeLevel()); err != nil {
		return nil, nil, fmt.Errorf("configuring %s as output: %w", dc.Pin, err)
	}
	if dc.Kind == hardware.KindDutyOutput {
		pp.prop = newProportioner(pp.line.set, g.env.clock, dc.DutyPeriod(), dc.MinSwitchTime())
		if err := pp.startSafe(); err != nil {
			_ = pp.closeOutput()
			return nil, nil, err
		}
	}
	return pp, pp.closeOutput, nil
}

// openPWM opens a duty_output with pwm_frequency: hardware PWM is periph's register
// access to the PWM block, which needs /dev/mem and does not exist on a Pi 5's RP1 as
// periph knows it. It is refused where it cannot work rather than failing at the first
// write.
func (g *gpioHost) openPWM(spec *hardware.Spec) (*periphPin, func() error, error) {
	dc := &spec.DeviceConfig
	if board, ok := g.pi5(); ok {
		return nil, nil, hardware.Refuse(fmt.Errorf("pwm_frequency: hardware PWM is not supported on this board (%s): periph drives the BCM283x PWM block, which a Raspberry Pi 5 does not have; drop pwm_frequency to switch time-proportionally", board))
	}
	f, err := os.OpenFile(g.env.DevMem, os.O_RDWR, 0)
	if err != nil {
		return nil, nil, hardware.Refuse(fmt.Errorf("pwm_frequency: hardware PWM needs %s opened read-write, which only root can do (never under the shipped unit): %w; drop pwm_frequency to switch time-proportionally", g.env.DevMem, err))
	}
	_ = f.Close()
	p := gpioreg.ByName(dc.Pin)
	if p == nil {
		return nil, nil, fmt.Errorf("no GPIO pin named %q on this host", dc.Pin)
	}
	pp := &periphPin{name: dc.Pin, line: regLine{p: p, activeLow: dc.ActiveLow}, reg: p,
		pwm: physic.Frequency(dc.PWMFrequency * float64(physic.Hertz)), safe: spec.Safe}
	if err := pp.line.set(false); err != nil {
		return nil, nil, fmt.Errorf("configuring %s as output: %w", dc.Pin, err)
	}
	if err := pp.startSafe(); err != nil {
		_ = pp.closeOutput()
		return nil, nil, err
	}
	return pp, pp.closeOutput, nil
}

// pi5 reports whether the board is a BCM2712 one (Pi 5, Pi 500, CM5), from the device tree.
func (g *gpioHost) pi5() (string, bool) {
	model, _ := os.ReadFile(g.env.Model)
	model = bytes.TrimRight(model, "\x00\n")
	compat, _ := os.ReadFile(g.env.Compatible)
	for _, c := range bytes.Split(compat, []byte{0}) {
		if string(c) == "brcm,bcm2712" {
			return string(model) + " (brcm,bcm2712)", true
		}
	}
	for _, m := range []string{"Raspberry Pi 5", "Raspberry Pi 500", "Raspberry Pi Compute Module 5"} {
		if bytes.HasPrefix(model, []byte(m)) {
			return string(model), true
		}
	}
	return "", false
}

// permissionHint adds what to do to a permission error on /dev/gpiochip*.
func permissionHint(err error) error {
	if errors.Is(err, fs.ErrPermission) {
		return fmt.Errorf("%w (the /dev/gpiochip* devices belong to group gpio on Raspberry Pi OS: the service user must be in it)", err)
	}
	return err
}

// inUseHint says who to look for when the kernel refuses a line that is in use.
func inUseHint(err error, pin string) error {
	if errors.Is(err, syscall.EBUSY) {
		return fmt.Errorf("%w (%s is in use by a kernel driver or another process: see gpioinfo for its consumer, and the overlays in /boot/firmware/config.txt)", err, pin)
	}
	return err
}

// startSafe switches a duty_output to its safe duty as it opens (nothing for duty 0).
func (p *periphPin) startSafe() error {
	if p.safe == 0 {
		return nil
	}
	if err := p.WriteRawDuty(context.Background(), 0, p.safe); err != nil {
		return fmt.Errorf("writing the safe duty %g: %w", p.safe, err)
	}
	return nil
}

// closeOutput drives an output to its safe state and gives its line back. Hardware PWM
// runs on without the process, so it is left at the safe duty; no process switches a
// time-proportioned duty_output any more, so it is left at the level nearer its safe duty
// (off for every duty below 0.5).
func (p *periphPin) closeOutput() error {
	var err error
	switch {
	case p.pwm > 0:
		err = p.WriteRawDuty(context.Background(), 0, p.safe)
	case p.prop != nil:
		err = p.prop.close()
		if p.safe >= 0.5 {
			err = errors.Join(err, p.line.set(true))
		}
	default:
		err = p.line.set(p.safe >= 0.5)
	}
	return errors.Join(err, p.line.release())
}

// countSeqno counts edges from the kernel's line_seqno: exact even when the kernel's event
// buffer overflowed and dropped events, since every event carries the line's running
// number. It ends when the line is closed; another read error is kept for edges to report.
func (p *periphPin) countSeqno(l *gpiocdev.Line) {
	defer close(p.done)
	for {
		ev, err := l.ReadEvent(0)
		if err != nil {
			if !errors.Is(err, gpiocdev.ErrClosed) {
				p.mu.Lock()
				p.edgeErr = err
				p.mu.Unlock()
			}
			return
		}
		p.mu.Lock()
		// uint32 arithmetic: the difference is right across the kernel counter's wrap.
		p.edgeCount += uint64(ev.LineSeqno - p.lastSeqno)
		p.lastSeqno = ev.LineSeqno
		p.mu.Unlock()
	}
}

// countEdges counts the configured edges of a register pin until stopped, one per
// WaitForEdge return (periph has no sequence numbers). The short timeout lets the
// goroutine notice stop without closing the pin under it.
func (p *periphPin) countEdges() {
	defer close(p.done)
	for {
		select {
		case <-p.stop:
			return
		default:
		}
		if p.reg.WaitForEdge(100 * time.Millisecond) {
			p.mu.Lock()
			p.edgeCount++
			p.mu.Unlock()
		}
	}
}

func (p *periphPin) stopEdges() error {
	close(p.stop)
	<-p.done
	return nil
}

func (p *periphPin) ReadRawLevel(context.Context, time.Duration) (bool, error) {
	return p.line.get()
}

func (p *periphPin) RawEdges(context.Context, time.Duration) (uint64, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.edgeErr != nil {
		return p.edgeCount, fmt.Errorf("edge events of %s stopped: %w", p.name, p.edgeErr)
	}
	return p.edgeCount, nil
}

func (p *periphPin) WriteRawLevel(_ context.Context, _ time.Duration, level bool) error {
	return p.line.set(level)
}

func (p *periphPin) WriteRawDuty(_ context.Context, _ time.Duration, duty float64) error {
	if p.pwm > 0 {
		d := gpio.Duty(duty * float64(gpio.DutyMax))
		if p.line.(regLine).activeLow {
			d = gpio.DutyMax - d
		}
		if err := p.reg.PWM(d, p.pwm); err != nil {
			return fmt.Errorf("pin %s has no hardware PWM at %s (drop pwm_frequency for time-proportional switching): %w", p.name, p.pwm, err)
		}
		return nil
	}
	return p.prop.setDuty(duty)
}
