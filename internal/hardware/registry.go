package hardware

import (
	"errors"
	"fmt"
	"sync"
	"time"

	"go.uber.org/zap"
)

// Clock tells the time; tests substitute a manual clock to make the plant deterministic.
type Clock interface {
	// Now returns the current time.
	Now() time.Time
}

type wallClock struct{}

func (wallClock) Now() time.Time { return time.Now() }

// Settings are what a component passes to Open besides its configuration.
type Settings struct {
	// Logger receives start-up warnings; nil means no logging.
	Logger *zap.Logger
	// SafeStates is the safe state of outputs by device name, as the component that drives
	// them configures it: the duty of a duty_output (0..1), a gpio_output is high from 0.5.
	// An output is driven to it as it opens and again when the session closes; an output
	// not listed is safe off (low, duty 0).
	SafeStates map[string]float64
}

// Registry owns the hardware state that sessions share: the running backend (with the
// sim plant or the periph buses), the devices open over every session and the fault
// table. Every session opened on it shares them, so the receiver and the control loop see
// the same plant and never talk on a bus at the same time. A component instance owns a
// registry (the controlloop extension lends its own to the hardware receiver); the state
// lives while at least one session is open.
type Registry struct {
	clock    Clock
	backends Backends

	mu        sync.Mutex
	sessions  int
	name      BackendName
	backend   Backend     // nil while no session is open
	started   time.Time   // when backend started: scripted faults count from here
	scripted  []FaultSpec // the backend's scripted faults, to warn about unopened devices
	slots     map[string]*faultSlot
	opened    map[string]int // open devices per name, over all sessions
	faultsAPI *Faults
}

// NewRegistry returns an empty registry that reads time from clock (nil = wall clock) and
// starts the named backends that configurations ask for.
func NewRegistry(clock Clock, backends Backends) *Registry {
	if clock == nil {
		clock = wallClock{}
	}
	r := &Registry{clock: clock, backends: backends, slots: map[string]*faultSlot{}, opened: map[string]int{}}
	r.faultsAPI = &Faults{reg: r}
	return r
}

// Open validates cfg and opens its devices. The first session of a registry starts the
// backend cfg names (for sim, the plant with cfg.Sim); a later session must name the same
// backend, and the backend checks that its configuration agrees (see Backend.Join: on
// sim, the same sim section or an empty one, except that a later session may configure a
// plant that every earlier session left unconfigured).
//
// Actuators (gpio_output, duty_output) open first, each driven to its safe state as it
// opens, and sensors after them, so that nothing a sensor does can keep an output from
// going safe. A device that cannot be opened (no pin of that name, no bus, no chip
// answering) does not fail Open: it is logged at Warn and returned as a device whose
// reads and writes fail with an *Error wrapping ErrNotOpen and the open error (which names
// the device and its bus), and which retries the open on them, at most once a second; a
// sensor plugged in later then works without a restart. Session.Status and OpenError say
// which devices are open. Open fails for configuration errors (including a pin or an SPI
// reference voltage claimed twice, and what this host cannot do, such as pwm_frequency on
// a Pi 5) and when the backend cannot start at all. Close the session to release the
// devices.
func (r *Registry) Open(cfg Config, set Settings) (*Session, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	name := cfg.Backend
	if name == "" {
		name = BackendSim
	}
	log := set.Logger
	if log == nil {
		log = zap.NewNop()
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.sessions > 0 && r.name != name {
		return nil, fmt.Errorf("backend: this process already uses backend %q; every component must use the same backend", r.name)
	}
	fresh := r.sessions == 0
	if fresh {
		if err := r.start(name, log); err != nil {
			return nil, err
		}
	}
	s := &Session{reg: r, backend: name, byName: map[string]Device{}, log: log}
	scripted, err := r.backend.Join(&cfg, log, fresh)
	if err == nil {
		err = r.backend.Claim(cfg.Devices)
	}
	if err != nil {
		if fresh {
			r.reset()
		}
		return nil, err
	}
	r.schedule(scripted)
	byIndex := make([]Device, len(cfg.Devices))
	for _, i := range openOrder(cfg.Devices) {
		dc := cfg.Devices[i]
		spec := &Spec{DeviceConfig: dc, Info: Info{Name: dc.Name, ID: deviceID(&dc), Kind: dc.Kind, BusType: dc.Kind.BusType()},
			Safe: set.SafeStates[dc.Name]}
		dev, err := r.openDevice(spec, cfg.Timeout, s)
		if err != nil {
			// Drive what was already opened safe; the error is what the user must fix.
			if cerr := s.closeDevices(); cerr != nil {
				err = errors.Join(err, fmt.Errorf("releasing the devices opened so far: %w", cerr))
			}
			r.backend.Release(cfg.Devices)
			if fresh {
				r.reset()
			}
			return nil, err
		}
		s.devices = append(s.devices, dev)
		s.byName[dc.Name] = dev
		byIndex[i] = dev
	}
	s.devices = byIndex
	r.sessions++
	for _, f := range r.scripted {
		if r.opened[f.Device] == 0 {
			log.Warn("scripted fault names a device that no component has opened yet",
				zap.String("device", f.Device), zap.String("kind", string(f.Kind)))
		}
	}
	return s, nil
}

// start starts the named backend for the first session. Callers hold mu.
func (r *Registry) start(name BackendName, log *zap.Logger) error {
	factory, ok := r.backends[name]
	if !ok {
		return fmt.Errorf("backend: unknown backend %q", name)
	}
	now := r.clock.Now()
	b, err := factory(BackendEnv{Clock: r.clock, Start: now, Log: log})
	if err != nil {
		return err
	}
	r.name, r.backend, r.started = name, b, now
	return nil
}

// schedule adds a backend's scripted faults, timed from its start. Callers hold mu.
func (r *Registry) schedule(scripted []FaultSpec) {
	for _, f := range scripted {
		a := activeFault{spec: f, from: r.started.Add(f.At)}
		if f.Duration > 0 {
			a.until = a.from.Add(f.Duration)
		}
		r.slot(f.Device).add(a)
	}
	r.scripted = append(r.scripted, scripted...)
}

// openOrder returns the indices of devices with every actuator before every sensor, each
// group in configuration order.
func openOrder(devices []DeviceConfig) []int {
	order := make([]int, 0, len(devices))
	for i := range devices {
		if isOutput(devices[i].Kind) {
			order = append(order, i)
		}
	}
	for i := range devices {
		if !isOutput(devices[i].Kind) {
			order = append(order, i)
		}
	}
	return order
}

// slot returns the fault slot of a device name, creating it. Callers hold mu.
func (r *Registry) slot(name string) *faultSlot {
	s, ok := r.slots[name]
	if !ok {
		s = &faultSlot{}
		r.slots[name] = s
	}
	return s
}

// slotFor returns the slot of an opened device, for the fault API.
func (r *Registry) slotFor(device string) (*faultSlot, time.Time, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.sessions == 0 {
		return nil, time.Time{}, errors.New("fault: no hardware session is open")
	}
	s, ok := r.opened[device]
	if !ok || s == 0 {
		return nil, time.Time{}, fmt.Errorf("fault: no open device is named %q", device)
	}
	return r.slots[device], r.clock.Now(), nil
}

// reset closes the backend and forgets the faults once no session is left. Callers hold
// mu.
func (r *Registry) reset() {
	if r.backend != nil {
		r.backend.Close()
	}
	r.backend, r.name = nil, ""
	r.scripted = nil
	r.slots = map[string]*faultSlot{}
	r.opened = map[string]int{}
}

// Session is one component's set of devices.
type Session struct {
	reg     *Registry
	backend BackendName
	log     *zap.Logger
	devices []Device
	byName  map[string]Device
	closers []func() error
	closed  bool
}

// DeviceStatus says whether one device of a session is open.
type DeviceStatus struct {
	// Info identifies the device.
	Info Info
	// Open is true once the device is open: at Open, or at a later read or write that
	// retried the open.
	Open bool
	// Err is the last open error while the device is not open; it wraps ErrNotOpen.
	Err error
}

// Status returns whether each device is open, in configuration order.
func (s *Session) Status() []DeviceStatus {
	out := make([]DeviceStatus, len(s.devices))
	for i, d := range s.devices {
		err := OpenError(d)
		out[i] = DeviceStatus{Info: d.Info(), Open: err == nil, Err: err}
	}
	return out
}

// BackendName returns the name of the backend the session's devices run on.
func (s *Session) BackendName() BackendName { return s.backend }

// Backend returns the backend the session's devices run on, nil once the last session of
// its registry closed. A backend package reaches its own state through it (sim.Plant).
func (s *Session) Backend() Backend {
	s.reg.mu.Lock()
	defer s.reg.mu.Unlock()
	return s.reg.backend
}

// Devices returns the devices in configuration order.
func (s *Session) Devices() []Device { return s.devices }

// Device returns the named device.
func (s *Session) Device(name string) (Device, bool) {
	d, ok := s.byName[name]
	return d, ok
}

// Faults returns the fault injection API of the registry (every session, not only this one).
func (s *Session) Faults() *Faults { return s.reg.faultsAPI }

// Now returns the registry clock's time, the time base of the plant and of faults.
func (s *Session) Now() time.Time { return s.reg.clock.Now() }

// AnalogInput returns the named device as an AnalogInput.
func (s *Session) AnalogInput(name string) (AnalogInput, error) { return as[AnalogInput](s, name) }

// TemperatureInput returns the named device as a TemperatureInput.
func (s *Session) TemperatureInput(name string) (TemperatureInput, error) {
	return as[TemperatureInput](s, name)
}

// DigitalInput returns the named device as a DigitalInput.
func (s *Session) DigitalInput(name string) (DigitalInput, error) { return as[DigitalInput](s, name) }

// DigitalOutput returns the named device as a DigitalOutput.
func (s *Session) DigitalOutput(name string) (DigitalOutput, error) {
	return as[DigitalOutput](s, name)
}

// DutyOutput returns the named device as a DutyOutput.
func (s *Session) DutyOutput(name string) (DutyOutput, error) { return as[DutyOutput](s, name) }

func as[T Device](s *Session, name string) (T, error) {
	var zero T
	d, ok := s.byName[name]
	if !ok {
		return zero, fmt.Errorf("no device named %q in this configuration", name)
	}
	t, ok := d.(T)
	if !ok {
		return zero, fmt.Errorf("device %q is a %s, which is not a %T", name, d.Info().Kind, (*T)(nil))
	}
	return t, nil
}

// Close drives the session's outputs to their safe state (Settings.SafeStates), releases
// its devices and, when it is the last session, the backend with its plant or buses. It
// is idempotent.
func (s *Session) Close() error {
	r := s.reg
	r.mu.Lock()
	defer r.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	err := s.closeDevices()
	r.sessions--
	if r.sessions == 0 {
		r.reset()
	}
	return err
}

// closeDevices runs the device closers. Callers hold the registry's mu.
func (s *Session) closeDevices() error {
	var errs []error
	for i := len(s.closers) - 1; i >= 0; i-- {
		errs = append(errs, s.closers[i]())
	}
	s.closers = nil
	for _, d := range s.devices {
		s.reg.opened[d.Info().Name]--
	}
	return errors.Join(errs...)
}
