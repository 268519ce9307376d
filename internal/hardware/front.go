package hardware

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sync"
	"time"
)

var (
	errDisconnected = errors.New("device disconnected (injected fault)")
	errBusTimeout   = errors.New("bus timeout (injected fault)")
)

// front is the part common to every device: identity, faults, per-read timeout.
type front struct {
	info    Info
	cfg     DeviceConfig
	timeout time.Duration
	slot    *faultSlot
	clock   Clock
	// lazy is the stand-in of a device that failed to open, nil for one that opened.
	lazy *lazyDevice

	mu        sync.Mutex
	lastRaw   float64
	haveLast  bool
	sameCount int
	lastEdges uint64 // digital inputs: the edge count of the last good read
}

// Info implements Device.
func (f *front) Info() Info { return f.info }

// openErr returns why the device is not open, nil when it is.
func (f *front) openErr() error {
	if f.lazy == nil {
		return nil
	}
	return f.lazy.openErr()
}

// retryOpen retries the open of a device that failed to open, when the back-off allows.
func (f *front) retryOpen() error {
	if f.lazy == nil {
		return nil
	}
	_, err := f.lazy.get()
	return err
}

// RetryOpen retries opening d if it failed to open and the last attempt is old enough,
// and returns why it is still not open, nil once it is. Reads and writes retry on their
// own; this is for a device that is only looked at, such as an output whose level the
// receiver reports. Opening an output drives it safe, as at Open.
func RetryOpen(d Device) error {
	if o, ok := d.(interface{ retryOpen() error }); ok {
		return o.retryOpen()
	}
	return nil
}

// OpenError returns why d could not be opened, or nil while it is open. A device that
// failed to open is retried on its reads and writes, so the answer changes to nil once one
// of them opened it. Its errors wrap ErrNotOpen and the open error.
func OpenError(d Device) error {
	if o, ok := d.(interface{ openErr() error }); ok {
		return o.openErr()
	}
	return nil
}

// fault returns the fault in effect, if any.
func (f *front) fault() (FaultSpec, bool) { return f.slot.active(f.clock.Now()) }

// preOp applies the faults that act before the backend is touched: disconnected fails at
// once, bus_timeout hangs until the timeout, slow_read waits its delay first. It returns
// the fault in effect, and an error when the operation must not go on.
func (f *front) preOp(ctx context.Context) (FaultSpec, error) {
	spec, ok := f.fault()
	if !ok {
		return FaultSpec{}, nil
	}
	switch spec.Kind {
	case FaultDisconnected:
		typ := ErrorNack
		if f.info.BusType == BusGPIO || f.info.BusType == BusSysfs {
			typ = ErrorInvalid
		}
		return spec, &Error{Device: f.info.Name, Type: typ, Err: errDisconnected}
	case FaultBusTimeout:
		_ = wait(ctx, f.timeout, f.timeout)
		return spec, &Error{Device: f.info.Name, Type: ErrorTimeout, Err: errBusTimeout}
	case FaultSlowRead:
		delay := spec.Delay
		if delay == 0 {
			delay = DefaultSlowReadDelay
		}
		if err := wait(ctx, delay, f.timeout); err != nil {
			return spec, &Error{Device: f.info.Name, Type: ErrorTimeout,
				Err: fmt.Errorf("slow read of %s exceeded the %s timeout (injected fault): %w", delay, f.timeout, err)}
		}
	}
	return spec, nil
}

// wait sleeps d, bounded by ctx and by limit; it returns context.DeadlineExceeded when
// the limit or ctx ended it first. Only faulted operations call it, so its timer
// allocation is outside the steady state.
func wait(ctx context.Context, d, limit time.Duration) error {
	cut := d > limit
	if cut {
		d = limit
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return context.DeadlineExceeded
	case <-t.C:
		if cut {
			return context.DeadlineExceeded
		}
		return nil
	}
}

// readValue reads a raw value through faults and returns the engineering value.
func (f *front) readValue(ctx context.Context, raw RawReader) (float64, error) {
	spec, err := f.preOp(ctx)
	if err != nil {
		return math.NaN(), err
	}
	var v float64
	switch spec.Kind {
	case FaultNaN:
		v = math.NaN()
	case FaultStuck:
		f.mu.Lock()
		v, ok := f.lastRaw, f.haveLast
		f.mu.Unlock()
		if !ok {
			if v, err = raw.ReadRaw(ctx, f.timeout); err != nil {
				return math.NaN(), classify(f.info.Name, err)
			}
		}
		return f.check(v)
	case FaultOutOfRange:
		return f.check(f.outOfRangeRaw(spec))
	default:
		if v, err = raw.ReadRaw(ctx, f.timeout); err != nil {
			return math.NaN(), classify(f.info.Name, err)
		}
	}
	return f.check(v)
}

// outOfRangeRaw returns the raw value that makes the engineering value out of range.
func (f *front) outOfRangeRaw(spec FaultSpec) float64 {
	eng := spec.Value
	if eng == 0 {
		eng = 1e6
		if r := f.cfg.ValidRange; r != nil {
			eng = r.Max + 2*(r.Max-r.Min)
		}
	}
	return (eng - f.cfg.Offset) / f.cfg.scale()
}

// check scales raw and validates it: NaN/Inf, valid range, stuck detection.
func (f *front) check(raw float64) (float64, error) {
	v := raw*f.cfg.scale() + f.cfg.Offset
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return v, &Error{Device: f.info.Name, Type: ErrorInvalid, Err: fmt.Errorf("read %g", v)}
	}
	f.mu.Lock()
	if f.haveLast && raw == f.lastRaw {
		f.sameCount++
	} else {
		f.sameCount = 1
	}
	f.lastRaw, f.haveLast = raw, true
	stuck := f.cfg.StuckAfter > 0 && f.sameCount >= f.cfg.StuckAfter
	same := f.sameCount
	f.mu.Unlock()
	if stuck {
		return v, &Error{Device: f.info.Name, Type: ErrorStale,
			Err: fmt.Errorf("value %g unchanged for %d reads", v, same)}
	}
	if r := f.cfg.ValidRange; r != nil && !r.Contains(v) {
		return v, &Error{Device: f.info.Name, Type: ErrorOutOfRange,
			Err: fmt.Errorf("value %g outside [%g, %g]", v, r.Min, r.Max)}
	}
	return v, nil
}

// analogDev is an AnalogInput.
type analogDev struct {
	*front
	raw RawReader
}

func (d *analogDev) ReadVoltage(ctx context.Context) (float64, error) {
	return d.readValue(ctx, d.raw)
}

// tempDev is a TemperatureInput.
type tempDev struct {
	*front
	raw RawReader
}

func (d *tempDev) ReadTemperature(ctx context.Context) (float64, error) {
	return d.readValue(ctx, d.raw)
}

// inputDev is a DigitalInput.
type inputDev struct {
	*front
	raw RawLevelReader
}

func (d *inputDev) ReadLevel(ctx context.Context) (bool, error) {
	spec, err := d.preOp(ctx)
	if err != nil {
		return false, err
	}
	switch spec.Kind {
	case FaultNaN, FaultOutOfRange:
		// A digital line has no NaN or range: garbage on the line reads as an invalid level.
		return false, &Error{Device: d.info.Name, Type: ErrorInvalid, Err: fmt.Errorf("%s (injected fault)", spec.Kind)}
	case FaultStuck:
		d.mu.Lock()
		defer d.mu.Unlock()
		return d.lastRaw != 0, nil
	}
	level, err := d.raw.ReadRawLevel(ctx, d.timeout)
	if err != nil {
		return false, classify(d.info.Name, err)
	}
	d.mu.Lock()
	d.lastRaw = 0
	if level {
		d.lastRaw = 1
	}
	d.mu.Unlock()
	return level, nil
}

func (d *inputDev) Edges(ctx context.Context) (uint64, error) {
	spec, err := d.preOp(ctx)
	if err != nil {
		return 0, err
	}
	if spec.Kind == FaultStuck {
		// A stuck line makes no edges: report the count from before the fault.
		d.mu.Lock()
		defer d.mu.Unlock()
		return d.lastEdges, nil
	}
	n, err := d.raw.RawEdges(ctx, d.timeout)
	if err != nil {
		return 0, classify(d.info.Name, err)
	}
	d.mu.Lock()
	d.lastEdges = n
	d.mu.Unlock()
	return n, nil
}

// outputDev is a DigitalOutput.
type outputDev struct {
	*front
	raw   RawLevelWriter
	level bool
}

func (d *outputDev) WriteLevel(ctx context.Context, level bool) error {
	spec, err := d.preOp(ctx)
	if err != nil {
		return err
	}
	if spec.Kind == FaultStuck {
		return &Error{Device: d.info.Name, Type: ErrorStale, Err: errors.New("output stuck (injected fault)")}
	}
	if err := d.raw.WriteRawLevel(ctx, d.timeout, level); err != nil {
		return classify(d.info.Name, err)
	}
	d.mu.Lock()
	d.level = level
	d.mu.Unlock()
	return nil
}

func (d *outputDev) Level() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.level
}

// dutyDev is a DutyOutput.
type dutyDev struct {
	*front
	raw  RawDutyWriter
	duty float64
}

func (d *dutyDev) WriteDuty(ctx context.Context, duty float64) error {
	duty = clampDuty(duty)
	spec, err := d.preOp(ctx)
	if err != nil {
		return err
	}
	if spec.Kind == FaultStuck {
		return &Error{Device: d.info.Name, Type: ErrorStale, Err: errors.New("output stuck (injected fault)")}
	}
	if err := d.raw.WriteRawDuty(ctx, d.timeout, duty); err != nil {
		return classify(d.info.Name, err)
	}
	d.mu.Lock()
	d.duty = duty
	d.mu.Unlock()
	return nil
}

func (d *dutyDev) Duty() float64 {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.duty
}

func clampDuty(v float64) float64 {
	switch {
	case math.IsNaN(v) || v < 0:
		return 0
	case v > 1:
		return 1
	default:
		return v
	}
}

// wrap builds the role-specific device around a backend implementation.
func wrap(f *front, impl any) (Device, error) {
	switch f.cfg.Kind.Role() {
	case RoleAnalogInput:
		if r, ok := impl.(RawReader); ok {
			return &analogDev{front: f, raw: r}, nil
		}
	case RoleTemperatureInput:
		if r, ok := impl.(RawReader); ok {
			return &tempDev{front: f, raw: r}, nil
		}
	case RoleDigitalInput:
		if r, ok := impl.(RawLevelReader); ok {
			return &inputDev{front: f, raw: r}, nil
		}
	case RoleDigitalOutput:
		if w, ok := impl.(RawLevelWriter); ok {
			return &outputDev{front: f, raw: w}, nil
		}
	case RoleDutyOutput:
		if w, ok := impl.(RawDutyWriter); ok {
			return &dutyDev{front: f, raw: w}, nil
		}
	}
	return nil, fmt.Errorf("device %q: backend has no %s implementation", f.info.Name, f.cfg.Kind)
}
