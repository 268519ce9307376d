package hardware

import (
	"errors"
	"fmt"
	"sort"
	"sync"
	"time"
)

// FaultKind is a kind of injected fault.
type FaultKind string

const (
	// FaultStuck freezes the value at the last good reading (detected with stuck_after).
	FaultStuck FaultKind = "stuck"
	// FaultNaN makes reads return NaN (error.type invalid).
	FaultNaN FaultKind = "nan"
	// FaultOutOfRange makes reads return a value outside the valid range (error.type
	// out_of_range; the device needs valid_range, or the fault's value is returned as is).
	FaultOutOfRange FaultKind = "out_of_range"
	// FaultBusTimeout makes reads and writes hang until the per-read timeout (error.type
	// timeout).
	FaultBusTimeout FaultKind = "bus_timeout"
	// FaultSlowRead delays reads by the fault's delay; beyond the per-read timeout they fail
	// with error.type timeout.
	FaultSlowRead FaultKind = "slow_read"
	// FaultDisconnected makes reads and writes fail at once (error.type nack).
	FaultDisconnected FaultKind = "disconnected"
)

// FaultKinds lists every FaultKind.
func FaultKinds() []FaultKind {
	return []FaultKind{FaultStuck, FaultNaN, FaultOutOfRange, FaultBusTimeout, FaultSlowRead, FaultDisconnected}
}

// UnmarshalText refuses an unknown fault kind while the configuration is decoded.
func (k *FaultKind) UnmarshalText(text []byte) error {
	return unmarshalListed(k, text, FaultKinds())
}

// DefaultSlowReadDelay is the delay of a slow_read fault that sets none.
const DefaultSlowReadDelay = time.Second

// FaultSpec describes a fault, scripted in SimConfig.Faults or injected with Faults.Inject.
type FaultSpec struct {
	// At is when a scripted fault starts, from the moment the plant starts (wall time, not
	// scaled by time_scale). Inject ignores it: an injected fault starts at once.
	At time.Duration `mapstructure:"at"`
	// Duration is how long the fault lasts; 0 means until cleared (Inject) or forever
	// (scripted).
	Duration time.Duration `mapstructure:"duration"`
	// Device is the device's name.
	Device string `mapstructure:"device"`
	// Kind is the fault.
	Kind FaultKind `mapstructure:"kind"`
	// Delay is a slow_read's added latency (default 1s).
	Delay time.Duration `mapstructure:"delay"`
	// Value is what an out_of_range fault returns; 0 means "twice the valid range above its
	// maximum" (or 1e6 without a valid range).
	Value float64 `mapstructure:"value"`
}

func (f *FaultSpec) validate(scripted bool) error {
	if f.Device == "" {
		return errors.New("device: must name a device")
	}
	known := false
	for _, k := range FaultKinds() {
		known = known || k == f.Kind
	}
	if !known {
		return fmt.Errorf("kind: %q is not one of stuck, nan, out_of_range, bus_timeout, slow_read, disconnected", f.Kind)
	}
	if scripted && f.At < 0 {
		return fmt.Errorf("at: must not be negative, got %s", f.At)
	}
	if f.Duration < 0 {
		return fmt.Errorf("duration: must not be negative, got %s", f.Duration)
	}
	if f.Delay < 0 {
		return fmt.Errorf("delay: must not be negative, got %s", f.Delay)
	}
	return nil
}

// activeFault is a fault with absolute wall-clock bounds; a zero until means no end.
type activeFault struct {
	spec  FaultSpec
	from  time.Time
	until time.Time
}

func (a *activeFault) activeAt(now time.Time) bool {
	return !now.Before(a.from) && (a.until.IsZero() || now.Before(a.until))
}

// faultSlot holds the faults of one device name. Devices keep a pointer to their slot so
// that the check on every read is a mutex and a short slice scan, without allocation.
type faultSlot struct {
	mu     sync.Mutex
	faults []activeFault
}

// active returns the fault active at now (the most recently started one wins).
func (s *faultSlot) active(now time.Time) (FaultSpec, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var best *activeFault
	for i := range s.faults {
		f := &s.faults[i]
		if f.activeAt(now) && (best == nil || !f.from.Before(best.from)) {
			best = f
		}
	}
	if best == nil {
		return FaultSpec{}, false
	}
	return best.spec, true
}

func (s *faultSlot) add(f activeFault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = append(s.faults, f)
}

// clear ends every fault active at now and drops the ones that already ended; scripted
// faults still to come stay. It reports whether a fault was active.
func (s *faultSlot) clear(now time.Time) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	kept := s.faults[:0]
	was := false
	for _, f := range s.faults {
		switch {
		case f.activeAt(now):
			was = true
		case now.Before(f.from):
			kept = append(kept, f)
		}
	}
	s.faults = kept
	return was
}

// ActiveFault is a fault in effect, as Faults.Active reports it.
type ActiveFault struct {
	// Device is the device's name.
	Device string
	// Kind is the fault.
	Kind FaultKind
	// Until is when the fault ends; zero means until cleared.
	Until time.Time
}

// Faults is the run-time fault injection API of a registry's devices, shared by every
// session of a Registry (the control loop's command API exposes it in sim mode). It works
// on both backends: the fault is applied in front of the device.
type Faults struct {
	reg *Registry
}

// Inject starts a fault on the named device now; it lasts spec.Duration (0 = until Clear).
// It fails when no open session has a device of that name or the spec is invalid.
func (f *Faults) Inject(spec FaultSpec) error {
	if err := spec.validate(false); err != nil {
		return fmt.Errorf("fault: %w", err)
	}
	slot, now, err := f.reg.slotFor(spec.Device)
	if err != nil {
		return err
	}
	a := activeFault{spec: spec, from: now}
	if spec.Duration > 0 {
		a.until = now.Add(spec.Duration)
	}
	slot.add(a)
	return nil
}

// Clear ends every fault in effect on the named device (injected or scripted; scripted
// faults still to come stay scheduled) and reports whether one was in effect.
func (f *Faults) Clear(device string) (bool, error) {
	slot, now, err := f.reg.slotFor(device)
	if err != nil {
		return false, err
	}
	return slot.clear(now), nil
}

// Active lists the faults in effect now, sorted by device name.
func (f *Faults) Active() []ActiveFault {
	now := f.reg.clock.Now()
	f.reg.mu.Lock()
	defer f.reg.mu.Unlock()
	var out []ActiveFault
	for name, slot := range f.reg.slots {
		slot.mu.Lock()
		for i := range slot.faults {
			if a := &slot.faults[i]; a.activeAt(now) {
				out = append(out, ActiveFault{Device: name, Kind: a.spec.Kind, Until: a.until})
			}
		}
		slot.mu.Unlock()
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Device < out[j].Device })
	return out
}
