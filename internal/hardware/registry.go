package hardware

import (
	"errors"
	"fmt"
	"reflect"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/fieldcol/fieldcol/internal/hardware/plant"
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
}

// Registry owns the process-wide hardware state: the backend in use, the sim plant, the
// open buses and the fault table. Every session opened on it shares them, so the receiver
// and the control loop see the same plant and never talk on a bus at the same time. The
// state lives while at least one session is open.
type Registry struct {
	clock Clock

	mu       sync.Mutex
	sessions int
	backend  Backend
	plant    *plant.Plant
	simCfg   SimConfig // as configured (before defaults), to compare later sessions with
	simEff   SimConfig // with defaults
	simStart time.Time // when the plant started: scripted faults count from here
	// simLive is simEff for the sim devices, which read it on every read without taking mu:
	// a later session may still configure a plant that the first one started with defaults.
	simLive   atomic.Pointer[SimConfig]
	slots     map[string]*faultSlot
	opened    map[string]int // open devices per name, over all sessions
	periph    *periphHost
	gpioPaths *GPIOPaths // nil: periphGPIO's
	faultsAPI *Faults
}

// NewRegistry returns an empty registry reading time from clock (nil = wall clock). A
// process normally uses the default one through Open; tests make their own.
func NewRegistry(clock Clock) *Registry {
	if clock == nil {
		clock = wallClock{}
	}
	r := &Registry{clock: clock, slots: map[string]*faultSlot{}, opened: map[string]int{}}
	r.faultsAPI = &Faults{reg: r}
	return r
}

var defaultRegistry = NewRegistry(nil)

// Default returns the process-wide registry that Open uses.
func Default() *Registry { return defaultRegistry }

// Open opens cfg's devices on the process-wide registry; see Registry.Open.
func Open(cfg Config, set Settings) (*Session, error) { return defaultRegistry.Open(cfg, set) }

// Open validates cfg and opens its devices. The first session of a process fixes the
// backend (and, for sim, starts the plant with cfg.Sim); a later session must use the same
// backend and either the same sim section or an empty one, except that a later session may
// configure a plant that every earlier session left unconfigured (the plant starts over
// at rest with it; devices opened before keep their noise streams). A device that cannot
// be opened (no pin of that name, no bus, no chip answering) fails Open with an error
// naming the device and the bus. Close the session to release the devices.
func (r *Registry) Open(cfg Config, set Settings) (*Session, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	backend := cfg.Backend
	if backend == "" {
		backend = BackendSim
	}
	log := set.Logger
	if log == nil {
		log = zap.NewNop()
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.sessions > 0 && r.backend != backend {
		return nil, fmt.Errorf("backend: this process already uses backend %q; every component must use the same backend", r.backend)
	}
	fresh := r.sessions == 0
	if fresh {
		r.backend = backend
	}
	s := &Session{reg: r, backend: backend, byName: map[string]Device{}}
	if err := r.openBackend(cfg, log, fresh); err != nil {
		if fresh {
			r.reset()
		}
		return nil, err
	}
	for i := range cfg.Devices {
		dc := cfg.Devices[i]
		dev, err := r.openDevice(&dc, cfg.Timeout, s)
		if err != nil {
			// Drive what was already opened safe; the open error is what the user must fix.
			if cerr := s.closeDevices(); cerr != nil {
				err = errors.Join(err, fmt.Errorf("releasing the devices opened so far: %w", cerr))
			}
			if fresh {
				r.reset()
			}
			return nil, err
		}
		s.devices = append(s.devices, dev)
		s.byName[dc.Name] = dev
	}
	r.sessions++
	if backend == BackendSim {
		for _, f := range r.simEff.Faults {
			if r.opened[f.Device] == 0 {
				log.Warn("scripted fault names a device that no component has opened yet",
					zap.String("device", f.Device), zap.String("kind", string(f.Kind)))
			}
		}
	}
	return s, nil
}

// openBackend starts the plant or the periph host for the first session and checks that
// later sessions agree with it. Callers hold mu.
func (r *Registry) openBackend(cfg Config, log *zap.Logger, fresh bool) error {
	switch r.backend {
	case BackendSim:
		empty := reflect.DeepEqual(cfg.Sim, SimConfig{})
		switch {
		case fresh:
			r.simStart = r.clock.Now()
			r.plant = plant.New(plant.Params{}, r.simStart)
			r.configureSim(cfg.Sim, log, true)
		case empty || reflect.DeepEqual(cfg.Sim, r.simCfg):
		case reflect.DeepEqual(r.simCfg, SimConfig{}):
			// The plant was started by a component that left sim empty (extensions start
			// before receivers, moments earlier): this is the one configuration, so the
			// plant starts over at rest with it.
			r.configureSim(cfg.Sim, log, true)
		default:
			return errors.New("sim: the sim plant is already running with a different configuration; configure sim in one component only and leave it empty in the others")
		}
		return nil
	case BackendPeriph:
		if r.periph == nil {
			env := periphGPIO
			if r.gpioPaths != nil {
				env.GPIOPaths = *r.gpioPaths
			}
			h, err := newPeriphHost(env)
			if err != nil {
				return err
			}
			r.periph = h
			if len(h.drivers.Failed) > 0 {
				log.Warn("periph host initialised with failed drivers", zap.String("drivers", h.drivers.Summary()))
			} else {
				log.Info("periph host initialised", zap.String("drivers", h.drivers.Summary()))
			}
			if h.gpio.kernelLines() {
				log.Info(h.gpio.describe())
			} else {
				log.Warn(h.gpio.describe())
			}
		}
		return nil
	default:
		return fmt.Errorf("backend: unknown backend %q", r.backend)
	}
}

// configureSim applies a sim configuration to the running plant and schedules its
// scripted faults from the plant's start. Callers hold mu.
func (r *Registry) configureSim(sc SimConfig, log *zap.Logger, atRest bool) {
	r.simCfg = sc
	r.simEff = sc.withDefaults()
	eff := r.simEff
	r.simLive.Store(&eff)
	r.plant.Reconfigure(r.clock.Now(), r.simEff.plantParams(), atRest)
	for _, f := range r.simEff.Faults {
		a := activeFault{spec: f, from: r.simStart.Add(f.At)}
		if f.Duration > 0 {
			a.until = a.from.Add(f.Duration)
		}
		r.slot(f.Device).add(a)
	}
	log.Info("sim plant configured", zap.Int64("seed", r.simEff.Seed),
		zap.Float64("time_scale", r.simEff.TimeScale), zap.Int("scripted_faults", len(r.simEff.Faults)))
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

// reset forgets the plant, the buses and the faults once no session is left. Callers
// hold mu.
func (r *Registry) reset() {
	r.plant = nil
	r.simCfg = SimConfig{}
	r.simEff = SimConfig{}
	r.simLive.Store(nil)
	r.slots = map[string]*faultSlot{}
	r.opened = map[string]int{}
	if r.periph != nil {
		r.periph.close()
		r.periph = nil
	}
	r.backend = ""
}

// Session is one component's set of open devices.
type Session struct {
	reg     *Registry
	backend Backend
	devices []Device
	byName  map[string]Device
	closers []func() error
	closed  bool
}

// Backend returns the backend the session's devices run on.
func (s *Session) Backend() Backend { return s.backend }

// Devices returns the devices in configuration order.
func (s *Session) Devices() []Device { return s.devices }

// Device returns the named device.
func (s *Session) Device(name string) (Device, bool) {
	d, ok := s.byName[name]
	return d, ok
}

// Faults returns the fault injection API (process-wide, not limited to this session).
func (s *Session) Faults() *Faults { return s.reg.faultsAPI }

// Plant returns the sim plant, or nil on the periph backend. A demo or a test uses it to
// open the door or to look at the true temperature behind the noisy sensors.
func (s *Session) Plant() *plant.Plant {
	s.reg.mu.Lock()
	defer s.reg.mu.Unlock()
	return s.reg.plant
}

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

// Close drives the session's outputs to their safe state (low, duty 0), releases its
// devices and, when it is the last session, the plant and the buses. It is idempotent.
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
