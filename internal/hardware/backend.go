package hardware

import (
	"context"
	"time"

	"go.uber.org/zap"
)

// Backend implements the devices of a Registry: the sim plant (internal/hardware/sim),
// periph.io (internal/hardware/periph) or a test's own. A registry starts its backend for
// its first session and closes it after its last, and calls every method with its lock
// held, so that no two calls overlap. The registry puts faults, timeouts, scaling and
// validation in front of what Open returns, the same for every backend.
type Backend interface {
	// Join is called before the devices of every session open, first is true for the
	// session that started the backend. It checks cfg against the backend's own state
	// (one sim plant, one configuration) and applies it when it is the configuration that
	// takes effect; it returns the faults that configuration scripts, which the registry
	// schedules from the backend's start.
	Join(cfg *Config, log *zap.Logger, first bool) (scripted []FaultSpec, err error)
	// Claim reserves, over every session, what only one device may own (a GPIO pin); a
	// second claim is a configuration error that fails Open before any device opens.
	Claim(devices []DeviceConfig) error
	// Release gives back what Claim reserved for devices, when their Open failed after it.
	Release(devices []DeviceConfig)
	// Open opens one device and returns its implementation, which implements the Raw
	// interface of the device's role. An output is driven to spec.Safe as it opens, and
	// the returned closer drives it there again when the session closes (nil for an
	// input). An error that Refuse marked is a configuration error and fails Open; any
	// other error leaves the device failed, its reads and writes retrying the open.
	Open(spec *Spec) (impl any, closer func() error, err error)
	// Close releases everything once the last session closed.
	Close()
}

// BackendEnv is what a backend gets from its registry when it starts.
type BackendEnv struct {
	// Clock is the registry's clock, the time base of the plant and of faults.
	Clock Clock
	// Start is when the backend started: scripted faults count from here.
	Start time.Time
	// Log is the logger of the session that started the backend.
	Log *zap.Logger
}

// BackendFactory starts a backend for a registry's first session.
type BackendFactory func(env BackendEnv) (Backend, error)

// Backends are the backends a registry can start, by the name configurations give them.
type Backends map[BackendName]BackendFactory

// Spec is a device as its backend opens it.
type Spec struct {
	// DeviceConfig is the device's configuration.
	DeviceConfig
	// Info identifies the device (its hw.id is computed from the configuration).
	Info Info
	// Safe is an output's safe state from Settings.SafeStates: the duty of a duty_output
	// (0..1), and a gpio_output is on from 0.5. 0 for an input and an output not listed.
	Safe float64
}

// SafeLevel is a gpio_output's safe level: on from 0.5, as the control loop writes it.
func (s *Spec) SafeLevel() bool { return s.Safe >= 0.5 }

// The Raw interfaces are what a backend's device implements, one by role. Each call must
// give up when ctx is done or timeout has passed, whichever comes first.

// RawReader reads an analog input in volts or a temperature input in °C, before scale and
// offset.
type RawReader interface {
	ReadRaw(ctx context.Context, timeout time.Duration) (float64, error)
}

// RawLevelReader reads a digital input's logical level and its edge count.
type RawLevelReader interface {
	ReadRawLevel(ctx context.Context, timeout time.Duration) (bool, error)
	RawEdges(ctx context.Context, timeout time.Duration) (uint64, error)
}

// RawLevelWriter drives a digital output to a logical level.
type RawLevelWriter interface {
	WriteRawLevel(ctx context.Context, timeout time.Duration, level bool) error
}

// RawDutyWriter drives a duty output; duty is already clamped to [0, 1].
type RawDutyWriter interface {
	WriteRawDuty(ctx context.Context, timeout time.Duration, duty float64) error
}
