package periph

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// serialBus runs every transfer on one bus, one at a time, on one worker goroutine. A
// caller waits for its transfer at most its per-read timeout; a transfer that hangs in the
// kernel keeps the worker until it returns, and meanwhile every caller on that bus times
// out instead of stalling. Each device brings its own reusable busOp, so a transfer costs
// no goroutine, channel or timer allocation: the control loop reads through here on every
// cycle.
type serialBus struct {
	name string
	reqs chan *busOp
	stop chan struct{}
}

func newSerialBus(name string) *serialBus {
	b := &serialBus{name: name, reqs: make(chan *busOp), stop: make(chan struct{})}
	go b.work()
	return b
}

func (b *serialBus) work() {
	for {
		select {
		case op := <-b.reqs:
			op.done <- op.run()
		case <-b.stop:
			return
		}
	}
}

// close stops the worker once its current transfer, if any, returns.
func (b *serialBus) close() error {
	close(b.stop)
	return nil
}

// busOp is one device's transfer: run does the I/O and leaves its result in the device.
type busOp struct {
	// mu makes concurrent callers of one device take turns; a control loop owns its
	// devices alone, so its thread never waits here for another goroutine.
	mu       sync.Mutex
	bus      *serialBus
	run      func() error
	done     chan error
	timer    *time.Timer
	inFlight atomic.Bool // an abandoned transfer has not finished yet
}

func newBusOp(b *serialBus, run func() error) *busOp {
	t := time.NewTimer(time.Hour)
	t.Stop()
	return &busOp{bus: b, run: run, done: make(chan error, 1), timer: t}
}

// do runs the transfer on the bus, giving up after timeout or when ctx is done. The
// device's result is valid only when do returns nil.
func (o *busOp) do(ctx context.Context, timeout time.Duration) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.inFlight.Load() {
		// The last transfer timed out and still holds the bus: take its late result if it
		// has come, otherwise the bus is still hung.
		select {
		case late := <-o.done:
			// Its caller was already told "timeout"; the outcome no longer matters.
			_ = late
			o.inFlight.Store(false)
		default:
			return fmt.Errorf("bus %s: the previous transfer is still running: %w", o.bus.name, context.DeadlineExceeded)
		}
	}
	o.timer.Reset(timeout)
	defer o.timer.Stop()
	select {
	case o.bus.reqs <- o:
	case <-ctx.Done():
		return fmt.Errorf("waiting for bus %s: %w", o.bus.name, context.DeadlineExceeded)
	case <-o.timer.C:
		return fmt.Errorf("waiting for bus %s: %w", o.bus.name, context.DeadlineExceeded)
	}
	select {
	case err := <-o.done:
		return err
	case <-ctx.Done():
	case <-o.timer.C:
	}
	o.inFlight.Store(true)
	return fmt.Errorf("transfer on bus %s: %w", o.bus.name, context.DeadlineExceeded)
}

// once runs fn on the bus a single time (device set-up at open).
func (b *serialBus) once(timeout time.Duration, fn func() error) error {
	return newBusOp(b, fn).do(context.Background(), timeout)
}
