package hardware

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"go.uber.org/zap"
)

// deviceID returns the hw.id of a device: its hardware address.
func deviceID(dc *DeviceConfig) string {
	switch dc.Kind {
	case KindADS1115, KindADS1015:
		return fmt.Sprintf("i2c%s/%#02x/ch%d", dc.I2CBus(), dc.I2CAddress(), dc.Channel)
	case KindMCP9808:
		return fmt.Sprintf("i2c%s/%#02x", dc.I2CBus(), dc.I2CAddress())
	case KindMCP3008:
		return fmt.Sprintf("%s/ch%d", spiPortID(dc.SPIPort()), dc.Channel)
	case KindDS18B20:
		return fmt.Sprintf("onewire%s/%s", busOr(dc.Bus, "1"), FormatROM(dc.OneWireAddress()))
	case KindSoCThermal:
		return fmt.Sprintf("thermal_zone%d", dc.Channel)
	default:
		if dc.Pin == "" {
			return dc.Name
		}
		return dc.Pin
	}
}

// spiPortID is an SPI port's name lower-cased for hw.id ("spi0.0").
func spiPortID(port string) string {
	out := []byte(port)
	for i, c := range out {
		if c >= 'A' && c <= 'Z' {
			out[i] = c + 'a' - 'A'
		}
	}
	return string(out)
}

// openDevice opens one device on the registry's backend. A device whose hardware cannot be
// opened (no pin of that name, no bus, no chip answering) is still returned: its reads and
// writes fail with the open error and retry the open (see lazyDevice). Only what the host
// can never do (a configError) and a device the backend has no implementation for are
// errors. Callers hold r.mu.
func (r *Registry) openDevice(spec *Spec, defTimeout time.Duration, s *Session) (Device, error) {
	f := &front{
		info:    spec.Info,
		cfg:     spec.DeviceConfig,
		timeout: deviceTimeout(&spec.DeviceConfig, defTimeout),
		slot:    r.slot(spec.Name),
		clock:   r.clock,
	}
	impl, err := r.openImpl(spec, s)
	if errors.As(err, new(configError)) {
		return nil, err
	}
	if err != nil {
		s.log.Warn("device could not be opened; its reads and writes fail and retry the open",
			zap.String("device", spec.Name), zap.String("kind", string(spec.Kind)), zap.String("id", spec.Info.ID), zap.Error(err))
		f.lazy = newLazyDevice(r, s, spec, f.timeout, err)
		impl = f.lazy
	}
	dev, err := wrap(f, impl)
	if err != nil {
		return nil, err
	}
	r.opened[spec.Name]++
	return dev, nil
}

// openImpl opens a device's backend implementation and registers the closer that drives
// an output safe when the session closes. Callers hold r.mu.
func (r *Registry) openImpl(spec *Spec, s *Session) (any, error) {
	impl, closer, err := r.backend.Open(spec)
	if err != nil {
		return nil, err
	}
	if closer != nil {
		s.closers = append(s.closers, closer)
	}
	return impl, nil
}

// configError marks an open error that is the configuration's, not the hardware's: what
// the device entry asks cannot be done on this host (hardware PWM on a Pi 5, debounce
// without the GPIO character device), so no retry would ever open it. Open fails for it
// as for any configuration error.
type configError struct{ error }

func (e configError) Unwrap() error { return e.error }

// Refuse marks an error of Backend.Open as a configuration error: Open fails for it
// instead of retrying the device.
func Refuse(err error) error { return configError{err} }

// isOutput reports whether devices of kind k are actuators, which open first and safe.
func isOutput(k Kind) bool { return k.Role() == RoleDigitalOutput || k.Role() == RoleDutyOutput }

// ErrNotOpen is in the chain of every error of a device that could not be opened
// (errors.Is): the device exists in the configuration but not, or not yet, on the host.
var ErrNotOpen = errors.New("not open")

// OpenRetryInterval is the least time between two attempts to open a device that failed
// to open; a device with a longer per-read timeout waits that long instead.
const OpenRetryInterval = time.Second

// lazyDevice stands in for the backend implementation of a device that failed to open.
// Every read or write first retries the open, at most once per OpenRetryInterval, and
// fails with the last open error until it succeeds; from then on it passes through to the
// opened implementation. So a sensor plugged in after start works without a restart, and
// an actuator that appears is driven safe as it opens, like any output.
type lazyDevice struct {
	reg   *Registry
	sess  *Session
	spec  *Spec
	info  Info
	retry time.Duration
	log   *zap.Logger

	impl atomic.Pointer[openedImpl] // set once the open succeeded

	mu       sync.Mutex
	err      error     // the classified error of the last failed open
	lastTry  time.Time // registry clock
	failedAt time.Time
	trying   bool
}

type openedImpl struct{ v any }

func newLazyDevice(r *Registry, s *Session, spec *Spec, timeout time.Duration, err error) *lazyDevice {
	now := r.clock.Now()
	l := &lazyDevice{reg: r, sess: s, spec: spec, info: spec.Info, retry: max(OpenRetryInterval, timeout),
		log: s.log, lastTry: now, failedAt: now}
	l.err = l.classify(err)
	return l
}

// classify wraps an open error as the device error its reads and writes return.
func (l *lazyDevice) classify(err error) error {
	return &Error{Device: l.info.Name, Type: openErrorType(err), Err: fmt.Errorf("%w: %w", ErrNotOpen, err)}
}

// openErrorType classifies an open error: by the class it carries (a device error, a
// timeout, an errno the kernel returned), and as nack, an absent device, when it carries
// none (no such bus or pin, whose errors periph words itself).
func openErrorType(err error) ErrorType {
	var he *Error
	if errors.As(err, &he) {
		return he.Type
	}
	if t := ErrorTypeOf(err); t != ErrorIO || errnoOf(err) == syscall.EIO {
		return t
	}
	return ErrorNack
}

// openErr returns the last open error, nil once the device is open.
func (l *lazyDevice) openErr() error {
	if l.impl.Load() != nil {
		return nil
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.err
}

// get returns the opened implementation, retrying the open when the last attempt is at
// least the retry interval old. A caller that comes while another one is trying gets the
// last error at once instead of waiting for the attempt.
func (l *lazyDevice) get() (any, error) {
	if o := l.impl.Load(); o != nil {
		return o.v, nil
	}
	l.mu.Lock()
	now := l.reg.clock.Now()
	if l.trying || now.Sub(l.lastTry) < l.retry {
		err := l.err
		l.mu.Unlock()
		return nil, err
	}
	l.trying, l.lastTry = true, now
	l.mu.Unlock()

	impl, err := l.reg.retryOpen(l.sess, l.spec)

	l.mu.Lock()
	defer l.mu.Unlock()
	l.trying = false
	if err != nil {
		l.err = l.classify(err)
		l.log.Debug("device still cannot be opened", zap.String("device", l.info.Name), zap.Error(err))
		return nil, l.err
	}
	l.impl.Store(&openedImpl{v: impl})
	l.err = nil
	l.log.Info("device opened after failing to open", zap.String("device", l.info.Name),
		zap.String("id", l.info.ID), zap.Duration("unavailable_for", now.Sub(l.failedAt)))
	return impl, nil
}

// retryOpen opens a device that failed to open before, for a session that is still open.
func (r *Registry) retryOpen(s *Session, spec *Spec) (any, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if s.closed {
		return nil, errors.New("the hardware session is closed")
	}
	return r.openImpl(spec, s)
}

func (l *lazyDevice) ReadRaw(ctx context.Context, timeout time.Duration) (float64, error) {
	impl, err := l.get()
	if err != nil {
		return 0, err
	}
	r, ok := impl.(RawReader)
	if !ok {
		return 0, l.mismatch(impl)
	}
	return r.ReadRaw(ctx, timeout)
}

func (l *lazyDevice) ReadRawLevel(ctx context.Context, timeout time.Duration) (bool, error) {
	impl, err := l.get()
	if err != nil {
		return false, err
	}
	r, ok := impl.(RawLevelReader)
	if !ok {
		return false, l.mismatch(impl)
	}
	return r.ReadRawLevel(ctx, timeout)
}

func (l *lazyDevice) RawEdges(ctx context.Context, timeout time.Duration) (uint64, error) {
	impl, err := l.get()
	if err != nil {
		return 0, err
	}
	r, ok := impl.(RawLevelReader)
	if !ok {
		return 0, l.mismatch(impl)
	}
	return r.RawEdges(ctx, timeout)
}

func (l *lazyDevice) WriteRawLevel(ctx context.Context, timeout time.Duration, level bool) error {
	impl, err := l.get()
	if err != nil {
		return err
	}
	w, ok := impl.(RawLevelWriter)
	if !ok {
		return l.mismatch(impl)
	}
	return w.WriteRawLevel(ctx, timeout, level)
}

func (l *lazyDevice) WriteRawDuty(ctx context.Context, timeout time.Duration, duty float64) error {
	impl, err := l.get()
	if err != nil {
		return err
	}
	w, ok := impl.(RawDutyWriter)
	if !ok {
		return l.mismatch(impl)
	}
	return w.WriteRawDuty(ctx, timeout, duty)
}

// mismatch is the error of a backend that opened a device as something its role cannot
// use; wrap refuses the same at Open.
func (l *lazyDevice) mismatch(impl any) error {
	return fmt.Errorf("device %q: backend opened a %T, which has no %s implementation", l.info.Name, impl, l.spec.Kind)
}

// deviceTimeout is the per-read timeout of a device: its own, or the component default
// raised to what a 1-wire read needs (its conversion plus W1ReadMargin).
func deviceTimeout(dc *DeviceConfig, def time.Duration) time.Duration {
	t := dc.timeout(def)
	if dc.Timeout == 0 {
		t = max(t, w1ReadTimeout(dc))
	}
	return t
}

// ReadTimeout is the per-read timeout dc gets in a component whose default timeout is def
// (0 = DefaultTimeout): its own timeout, or def raised to a 1-wire sensor's conversion
// plus 100ms for the bus.
func ReadTimeout(dc DeviceConfig, def time.Duration) time.Duration { return deviceTimeout(&dc, def) }
