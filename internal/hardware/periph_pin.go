package hardware

import (
	"context"
	"fmt"
	"sync"
	"time"

	"periph.io/x/conn/v3/gpio"
	"periph.io/x/conn/v3/gpio/gpioreg"
	"periph.io/x/conn/v3/physic"
)

// periphPin is a GPIO pin opened by one device; a pin is never shared between devices
// because edge counting and output state belong to one owner.
type periphPin struct {
	pin       gpio.PinIO
	activeLow bool

	mu        sync.Mutex
	edgeCount uint64
	stop      chan struct{}
	done      chan struct{}
	duty      float64
	period    time.Duration
	pwm       physic.Frequency
}

func (h *periphHost) openPin(dc *DeviceConfig) (any, func() error, error) {
	if _, taken := h.pins[dc.Pin]; taken {
		return nil, nil, fmt.Errorf("pin %s is already used by another device", dc.Pin)
	}
	p := gpioreg.ByName(dc.Pin)
	if p == nil {
		return nil, nil, fmt.Errorf("no GPIO pin named %q on this host", dc.Pin)
	}
	pp := &periphPin{pin: p, activeLow: dc.ActiveLow}
	var closer func() error
	switch dc.Kind {
	case KindGPIOInput:
		pull := gpio.Float
		switch dc.Pull {
		case "up":
			pull = gpio.PullUp
		case "down":
			pull = gpio.PullDown
		}
		edge := gpio.RisingEdge
		switch dc.Edge {
		case "falling":
			edge = gpio.FallingEdge
		case "both":
			edge = gpio.BothEdges
		}
		// active_low swaps what a logical rising edge is on the wire.
		if dc.ActiveLow && edge != gpio.BothEdges {
			edge = map[gpio.Edge]gpio.Edge{gpio.RisingEdge: gpio.FallingEdge, gpio.FallingEdge: gpio.RisingEdge}[edge]
		}
		if err := p.In(pull, edge); err != nil {
			return nil, nil, fmt.Errorf("configuring %s as input: %w", dc.Pin, err)
		}
		pp.stop, pp.done = make(chan struct{}), make(chan struct{})
		go pp.countEdges()
		closer = pp.stopEdges
	case KindGPIOOutput:
		if err := p.Out(pp.wire(false)); err != nil {
			return nil, nil, fmt.Errorf("configuring %s as output: %w", dc.Pin, err)
		}
		closer = func() error { return p.Out(pp.wire(false)) }
	case KindDutyOutput:
		if err := p.Out(pp.wire(false)); err != nil {
			return nil, nil, fmt.Errorf("configuring %s as output: %w", dc.Pin, err)
		}
		pp.period = dc.Period
		if pp.period == 0 {
			pp.period = 2 * time.Second
		}
		if dc.PWMFrequency > 0 {
			pp.pwm = physic.Frequency(dc.PWMFrequency * float64(physic.Hertz))
		} else {
			pp.stop, pp.done = make(chan struct{}), make(chan struct{})
			go pp.timeProportional()
		}
		closer = func() error {
			if pp.stop != nil {
				_ = pp.stopEdges()
			}
			return p.Out(pp.wire(false))
		}
	}
	h.pins[dc.Pin] = pp
	// Host closers run under h.mu (see close).
	h.closers = append(h.closers, func() error { delete(h.pins, dc.Pin); return nil })
	return pp, closer, nil
}

// wire converts a logical level to the electrical one.
func (p *periphPin) wire(level bool) gpio.Level { return gpio.Level(level != p.activeLow) }

// countEdges counts the configured edges until stopped. WaitForEdge with a short timeout
// lets the goroutine notice stop without closing the pin under it.
func (p *periphPin) countEdges() {
	defer close(p.done)
	for {
		select {
		case <-p.stop:
			return
		default:
		}
		if p.pin.WaitForEdge(100 * time.Millisecond) {
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

// timeProportional switches the pin on for duty·period at the start of every period, the
// usual way to drive a zero-crossing SSR that cannot follow PWM.
func (p *periphPin) timeProportional() {
	defer close(p.done)
	t := time.NewTimer(0)
	defer t.Stop()
	on := false
	var onFor time.Duration
	for {
		select {
		case <-p.stop:
			return
		case <-t.C:
		}
		p.mu.Lock()
		duty, period := p.duty, p.period
		p.mu.Unlock()
		switch {
		case !on && duty > 0:
			onFor = time.Duration(duty * float64(period))
			if duty >= 1 {
				// Fully on: stay on a whole period without a pointless off edge.
				_ = p.pin.Out(p.wire(true))
				t.Reset(period)
				continue
			}
			_ = p.pin.Out(p.wire(true))
			on = true
			t.Reset(onFor)
		case on:
			_ = p.pin.Out(p.wire(false))
			on = false
			t.Reset(period - onFor)
		default:
			_ = p.pin.Out(p.wire(false))
			t.Reset(period)
		}
	}
}

func (p *periphPin) readLevel(context.Context, time.Duration) (bool, error) {
	return (p.pin.Read() == gpio.High) != p.activeLow, nil
}

func (p *periphPin) edges(context.Context, time.Duration) (uint64, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.edgeCount, nil
}

func (p *periphPin) writeLevel(_ context.Context, _ time.Duration, level bool) error {
	return p.pin.Out(p.wire(level))
}

func (p *periphPin) writeDuty(_ context.Context, _ time.Duration, duty float64) error {
	if p.pwm > 0 {
		d := gpio.Duty(duty * float64(gpio.DutyMax))
		if p.activeLow {
			d = gpio.DutyMax - d
		}
		if err := p.pin.PWM(d, p.pwm); err != nil {
			return fmt.Errorf("pin %s has no hardware PWM at %s (drop pwm_frequency for time-proportional switching): %w", p.pin.Name(), p.pwm, err)
		}
		return nil
	}
	p.mu.Lock()
	p.duty = duty
	p.mu.Unlock()
	return nil
}
