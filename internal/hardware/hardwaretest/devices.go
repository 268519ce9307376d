package hardwaretest

import (
	"context"
	"sync"
	"time"

	"github.com/fieldcol/fieldcol/internal/hardware"
)

// The doubles below implement one hardware device interface each, as the devices of a
// session do, so that a type switch on them finds their role. They are safe for concurrent
// use: a loop's thread reads and writes them while the test scripts and inspects them.
// Unlike the registry's devices they apply no faults, scaling or clamping: a read returns
// what the test set, and a write is recorded as the caller asked it.

// device is what every double has: identity, clock and lock.
type device struct {
	info  hardware.Info
	clock hardware.Clock

	mu sync.Mutex
}

// Info implements hardware.Device.
func (d *device) Info() hardware.Info { return d.info }

// SetClock makes the double stamp writes with c instead of the wall clock.
func (d *device) SetClock(c hardware.Clock) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.clock = c
}

// now is the time of a write. Callers hold mu.
func (d *device) now() time.Time {
	if d.clock == nil {
		return time.Now()
	}
	return d.clock.Now()
}

// value is the scripted reading of an analog or temperature input.
type value struct {
	device
	v      float64
	err    error
	onRead func(ctx context.Context) (float64, error)
	reads  int
}

// Set makes the following reads return v.
func (s *value) Set(v float64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.v = v
}

// SetErr makes the following reads return err with the value set (nil: no error).
func (s *value) SetErr(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.err = err
}

// OnRead makes the following reads call fn instead (nil: back to Set and SetErr); fn runs
// without the double's lock, so it may block, or panic as a broken driver would.
func (s *value) OnRead(fn func(ctx context.Context) (float64, error)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.onRead = fn
}

// Reads returns how many reads there were.
func (s *value) Reads() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.reads
}

func (s *value) read(ctx context.Context) (float64, error) {
	s.mu.Lock()
	s.reads++
	fn, v, err := s.onRead, s.v, s.err
	s.mu.Unlock()
	if fn != nil {
		return fn(ctx)
	}
	return v, err
}

// AnalogInput is a hardware.AnalogInput that reads what the test set.
type AnalogInput struct{ value }

var _ hardware.AnalogInput = (*AnalogInput)(nil)

// NewAnalogInput returns an analog input identified by info that reads 0.
func NewAnalogInput(info hardware.Info) *AnalogInput {
	return &AnalogInput{value{device: device{info: info}}}
}

// ReadVoltage implements hardware.AnalogInput.
func (a *AnalogInput) ReadVoltage(ctx context.Context) (float64, error) { return a.read(ctx) }

// TemperatureInput is a hardware.TemperatureInput that reads what the test set.
type TemperatureInput struct{ value }

var _ hardware.TemperatureInput = (*TemperatureInput)(nil)

// NewTemperatureInput returns a temperature input identified by info that reads 0.
func NewTemperatureInput(info hardware.Info) *TemperatureInput {
	return &TemperatureInput{value{device: device{info: info}}}
}

// ReadTemperature implements hardware.TemperatureInput.
func (t *TemperatureInput) ReadTemperature(ctx context.Context) (float64, error) {
	return t.read(ctx)
}

// DigitalInput is a hardware.DigitalInput whose level and edge count the test sets.
type DigitalInput struct {
	device
	level bool
	edges uint64
	err   error
}

var _ hardware.DigitalInput = (*DigitalInput)(nil)

// NewDigitalInput returns a digital input identified by info, low, with no edges.
func NewDigitalInput(info hardware.Info) *DigitalInput {
	return &DigitalInput{device: device{info: info}}
}

// SetLevel makes the following reads return level.
func (d *DigitalInput) SetLevel(level bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.level = level
}

// SetEdges makes Edges return n.
func (d *DigitalInput) SetEdges(n uint64) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.edges = n
}

// SetErr makes the following reads fail with err (nil: no error).
func (d *DigitalInput) SetErr(err error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.err = err
}

// ReadLevel implements hardware.DigitalInput.
func (d *DigitalInput) ReadLevel(context.Context) (bool, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.err != nil {
		return false, d.err
	}
	return d.level, nil
}

// Edges implements hardware.DigitalInput.
func (d *DigitalInput) Edges(context.Context) (uint64, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.err != nil {
		return 0, d.err
	}
	return d.edges, nil
}

// Write is one write to an output double: the level of a DigitalOutput or the duty of a
// DutyOutput, when it came, and the error it was answered with.
type Write struct {
	At    time.Time
	Level bool
	Duty  float64
	Err   error
}

// output is what both output doubles record: T is a level or a duty.
type output[T any] struct {
	device
	v      T
	writes []Write
	err    error
	// written is the Write of a value, in its field (by value: a pointer handed to the
	// func would escape, and a loop's cycle must not allocate).
	written func(v T) Write
}

// FailWrites makes the following writes fail with err (nil: succeed); failed writes are
// recorded too, and leave the output as it was.
func (o *output[T]) FailWrites(err error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.err = err
}

// Writes returns every write so far, failed ones included, oldest first.
func (o *output[T]) Writes() []Write {
	o.mu.Lock()
	defer o.mu.Unlock()
	return append([]Write(nil), o.writes...)
}

// Preset puts the output at v without recording a write, as a process before this one
// left it.
func (o *output[T]) Preset(v T) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.v = v
}

// write records a write of v stamped now and applies it unless it is to fail.
func (o *output[T]) write(v T) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	w := o.written(v)
	w.At, w.Err = o.now(), o.err
	o.writes = append(o.writes, w)
	if o.err != nil {
		return o.err
	}
	o.v = v
	return nil
}

// current is the last value written successfully, or preset.
func (o *output[T]) current() T {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.v
}

// DigitalOutput is a hardware.DigitalOutput that records every write.
type DigitalOutput struct{ output[bool] }

var _ hardware.DigitalOutput = (*DigitalOutput)(nil)

// NewDigitalOutput returns a digital output identified by info, low.
func NewDigitalOutput(info hardware.Info) *DigitalOutput {
	return &DigitalOutput{output[bool]{device: device{info: info}, written: func(v bool) Write { return Write{Level: v} }}}
}

// WriteLevel implements hardware.DigitalOutput.
func (d *DigitalOutput) WriteLevel(_ context.Context, level bool) error { return d.write(level) }

// Level implements hardware.DigitalOutput.
func (d *DigitalOutput) Level() bool { return d.current() }

// DutyOutput is a hardware.DutyOutput that records every write; a duty is recorded
// unclamped, as asked.
type DutyOutput struct{ output[float64] }

var _ hardware.DutyOutput = (*DutyOutput)(nil)

// NewDutyOutput returns a duty output identified by info, at duty 0.
func NewDutyOutput(info hardware.Info) *DutyOutput {
	return &DutyOutput{output[float64]{device: device{info: info}, written: func(v float64) Write { return Write{Duty: v} }}}
}

// WriteDuty implements hardware.DutyOutput.
func (d *DutyOutput) WriteDuty(_ context.Context, duty float64) error { return d.write(duty) }

// Duty implements hardware.DutyOutput.
func (d *DutyOutput) Duty() float64 { return d.current() }
