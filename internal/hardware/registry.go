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
	// SafeStates is the safe state of outputs by device name, as the component that drives
	// them configures it: the duty of a duty_output (0..1), a gpio_output is high from 0.5.
	// An output is driven to it as it opens and again when the session closes; an output
	// not listed is safe off (low, duty 0).
	SafeStates map[string]float64
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
	// pins and spiRef are what only one device may own on the periph backend, over every
	// session: a GPIO pin, an SPI port's MCP3008 reference voltage. They live as long as
	// the periph host that holds them.
	pins   map[string]string
	spiRef map[string]float64
}

// NewRegistry returns an empty registry reading time from clock (nil = wall clock). A
// process normally uses the default one through Open; tests make their own.
func NewRegistry(clock Clock) *Registry {
	if clock == nil {
		clock = wallClock{}
	}
	r := &Registry{clock: clock, slots: map[string]*faultSlot{}, opened: map[string]int{},
		pins: map[string]string{}, spiRef: map[string]float64{}}
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
// at rest with it; devices opened before keep their noise streams).
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
	s := &Session{reg: r, backend: backend, byName: map[string]Device{}, log: log}
	if err := r.openBackend(cfg, log, fresh); err != nil {
		if fresh {
			r.reset()
		}
		return nil, err
	}
	if err := r.claimShared(cfg.Devices); err != nil {
		if fresh {
			r.reset()
		}
		return nil, err
	}
	byIndex := make([]Device, len(cfg.Devices))
	for _, i := range openOrder(cfg.Devices) {
		dc := cfg.Devices[i]
		dc.safe = set.SafeStates[dc.Name]
		dev, err := r.openDevice(&dc, cfg.Timeout, s)
		if err != nil {
			// Drive what was already opened safe; the error is what the user must fix.
			if cerr := s.closeDevices(); cerr != nil {
				err = errors.Join(err, fmt.Errorf("releasing the devices opened so far: %w", cerr))
			}
			r.releaseShared(cfg.Devices)
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

// claimShared claims, on the periph backend, what only one device may own: a GPIO pin,
// and the reference voltage of the MCP3008 on an SPI port. A second claim, in devices or
// against an open session, is a configuration error that no retry could fix, so it fails
// Open before any device is opened. Callers hold mu.
func (r *Registry) claimShared(devices []DeviceConfig) error {
	if r.backend != BackendPeriph {
		return nil
	}
	pins := map[string]string{}
	spiRef := map[string]float64{}
	var errs []error
	for i := range devices {
		d := &devices[i]
		key := fmt.Sprintf("devices[%d] (%s)", i, d.Name)
		switch {
		case d.Kind.BusType() == BusGPIO:
			owner, taken := r.pins[d.Pin]
			if !taken {
				owner, taken = pins[d.Pin]
			}
			if taken {
				errs = append(errs, fmt.Errorf("%s.pin: pin %s is already used by another device (%q)", key, d.Pin, owner))
				continue
			}
			pins[d.Pin] = d.Name
		case d.Kind == KindMCP3008:
			port := busOr(d.Bus, "SPI0.0")
			vref := d.FullScale
			if vref == 0 {
				vref = 3.3
			}
			have, taken := r.spiRef[port]
			if !taken {
				have, taken = spiRef[port]
			}
			if taken && have != vref {
				errs = append(errs, fmt.Errorf("%s.full_scale: SPI port %q already has an MCP3008 with full_scale %g", key, port, have))
				continue
			}
			spiRef[port] = vref
		}
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	for pin, name := range pins {
		r.pins[pin] = name
	}
	for port, vref := range spiRef {
		r.spiRef[port] = vref
	}
	return nil
}

// releaseShared gives back the pins of devices that claimShared claimed, when Open fails
// after claiming. A reference voltage stays: the SPI port may already be open with it.
// Callers hold mu.
func (r *Registry) releaseShared(devices []DeviceConfig) {
	for i := range devices {
		if d := &devices[i]; d.Kind.BusType() == BusGPIO && r.pins[d.Pin] == d.Name {
			delete(r.pins, d.Pin)
		}
	}
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
	r.pins = map[string]string{}
	r.spiRef = map[string]float64{}
	if r.periph != nil {
		r.periph.close()
		r.periph = nil
	}
	r.backend = ""
}

// Session is one component's set of devices.
type Session struct {
	reg     *Registry
	backend Backend
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
