package periph

import (
	"errors"
	"sync"
	"time"
)

// switchRetry is how soon a failed switch is tried again.
const switchRetry = 50 * time.Millisecond

// switchClock is the time source of time-proportional switching, so that tests step time
// and fire timers by hand instead of sleeping.
type switchClock interface {
	Now() time.Time
	// Timer returns a channel that receives once d has passed, and a function that stops it.
	Timer(d time.Duration) (<-chan time.Time, func() bool)
}

type wallSwitchClock struct{}

func (wallSwitchClock) Now() time.Time { return time.Now() }

func (wallSwitchClock) Timer(d time.Duration) (<-chan time.Time, func() bool) {
	t := time.NewTimer(d)
	return t.C, t.Stop
}

// proportioner drives an output on for duty·period at the start of every window, the usual
// way to drive a zero-crossing SSR that cannot follow PWM. Window k starts at t0 + k·period
// whenever the goroutine wakes, so lateness never accumulates. A duty change is applied by
// the caller's own goroutine before setDuty returns: a duty whose on-time in the current
// window has already passed switches the output off at once. The goroutine only switches
// at the planned instants.
//
// On-times shorter than minOn are not made (the output stays off), off-times shorter than
// minOn neither (the output stays on the whole window), and a duty raised mid-window
// switches on only when at least minOn of its on-time is left.
type proportioner struct {
	out    func(on bool) error // drives the output (logical level)
	clock  switchClock
	period time.Duration
	minOn  time.Duration
	t0     time.Time

	mu       sync.Mutex
	duty     float64
	on       bool      // the level last written successfully
	next     time.Time // the next planned switch instant
	asyncErr error     // a write the goroutine failed, reported by the next setDuty

	wake chan struct{}
	stop chan struct{}
	done chan struct{}
}

// newProportioner starts switching an output that is off now.
func newProportioner(out func(bool) error, clock switchClock, period, minOn time.Duration) *proportioner {
	p := &proportioner{
		out: out, clock: clock, period: period, minOn: minOn, t0: clock.Now(),
		wake: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{}),
	}
	p.next = p.t0.Add(period)
	go p.run()
	return p
}

// onTime is how long the output is on in a window at duty d, after the minimum rule.
func (p *proportioner) onTime(d float64) time.Duration {
	on := time.Duration(d * float64(p.period))
	switch {
	case on <= 0 || on < p.minOn:
		return 0
	case on >= p.period || p.period-on < p.minOn:
		return p.period
	}
	return on
}

// apply drives the output to what the duty asks for at now and plans the next switch.
// planned is true when the goroutine's timer woke it at a planned instant: then a late
// wake-up still makes the planned pulse; a duty change (planned false) switches on only
// when at least minOn of the on-time is left. Callers hold mu.
func (p *proportioner) apply(now time.Time, planned bool) error {
	start := p.t0
	if now.After(p.t0) {
		start = p.t0.Add(now.Sub(p.t0) / p.period * p.period)
	}
	into := now.Sub(start)
	onFor := p.onTime(p.duty)
	want := into < onFor
	if want && !p.on && !planned && onFor-into < p.minOn {
		want = false
	}
	p.next = start.Add(p.period)
	if want && onFor < p.period {
		p.next = start.Add(onFor)
	}
	if want == p.on {
		return nil
	}
	if err := p.out(want); err != nil {
		// Try again soon rather than at the next planned instant: a failed switch-off
		// must not leave the heater on for the rest of the window.
		if retry := now.Add(switchRetry); retry.Before(p.next) {
			p.next = retry
		}
		return err
	}
	p.on = want
	return nil
}

// setDuty applies a new duty now and wakes the goroutine to plan from it.
func (p *proportioner) setDuty(d float64) error {
	p.mu.Lock()
	p.duty = d
	err := p.apply(p.clock.Now(), false)
	prev := p.asyncErr
	p.asyncErr = nil
	p.mu.Unlock()
	select {
	case p.wake <- struct{}{}:
	default: // a wake is already pending; it reads the newest plan
	}
	return errors.Join(prev, err)
}

func (p *proportioner) run() {
	defer close(p.done)
	p.mu.Lock()
	next := p.next
	p.mu.Unlock()
	for {
		c, stop := p.clock.Timer(next.Sub(p.clock.Now()))
		select {
		case <-p.stop:
			stop()
			return
		case <-p.wake:
			stop()
		case <-c:
			p.mu.Lock()
			if err := p.apply(p.clock.Now(), true); err != nil {
				p.asyncErr = err
			}
			p.mu.Unlock()
		}
		p.mu.Lock()
		next = p.next
		p.mu.Unlock()
	}
}

// close stops switching and drives the output off.
func (p *proportioner) close() error {
	close(p.stop)
	<-p.done
	p.mu.Lock()
	defer p.mu.Unlock()
	p.duty = 0
	if err := p.out(false); err != nil {
		return err
	}
	p.on = false
	return nil
}
