// Package sim is the simulated backend of internal/hardware: a seeded, deterministic plant
// (package plant: a heater with first-order dynamics and dead time, a motor with a
// first-order speed response, a door switch and a flow meter) whose actuators drive what
// its sensors read, so that closed-loop control works without hardware. Every session of a
// registry shares one plant.
package sim

import (
	"errors"
	"reflect"
	"sync/atomic"

	"go.uber.org/zap"

	"github.com/fieldcol/fieldcol/internal/hardware"
	"github.com/fieldcol/fieldcol/internal/hardware/sim/plant"
)

// Backend is the sim backend of one registry: one plant and its configuration.
type Backend struct {
	clock hardware.Clock
	plant *plant.Plant
	cfg   hardware.SimConfig // as configured (before defaults), to compare later sessions with
	// live is cfg with defaults for the devices, which read it on every read without the
	// registry's lock: a later session may still configure a plant that the first one
	// started with defaults.
	live atomic.Pointer[hardware.SimConfig]
}

var _ hardware.Backend = (*Backend)(nil)

// New starts the sim backend with a plant at rest; it is a hardware.BackendFactory.
func New(env hardware.BackendEnv) (hardware.Backend, error) {
	return &Backend{clock: env.Clock, plant: plant.New(plant.Params{}, env.Start)}, nil
}

// Plant returns the plant of the sim backend s runs on, or nil on another backend or once
// the last session of its registry closed. A demo or a test uses it to open the door or to
// look at the true temperature behind the noisy sensors.
func Plant(s *hardware.Session) *plant.Plant {
	if b, ok := s.Backend().(*Backend); ok {
		return b.plant
	}
	return nil
}

// Join configures the plant with the first session's sim section. A later session must
// have the same section or an empty one, except that it may configure a plant that every
// earlier session left unconfigured: the plant starts over at rest with it (devices
// opened before keep their noise streams).
func (b *Backend) Join(cfg *hardware.Config, log *zap.Logger, first bool) ([]hardware.FaultSpec, error) {
	switch {
	case first:
	case reflect.DeepEqual(cfg.Sim, hardware.SimConfig{}) || reflect.DeepEqual(cfg.Sim, b.cfg):
		return nil, nil
	case reflect.DeepEqual(b.cfg, hardware.SimConfig{}):
		// The plant was started by a component that left sim empty (extensions start
		// before receivers, moments earlier): this is the one configuration, so the
		// plant starts over at rest with it.
	default:
		return nil, errors.New("sim: the sim plant is already running with a different configuration; configure sim in one component only and leave it empty in the others")
	}
	b.cfg = cfg.Sim
	eff := withDefaults(cfg.Sim)
	b.live.Store(&eff)
	b.plant.Reconfigure(b.clock.Now(), plantParams(eff), true)
	log.Info("sim plant configured", zap.Int64("seed", eff.Seed),
		zap.Float64("time_scale", eff.TimeScale), zap.Int("scripted_faults", len(eff.Faults)))
	return eff.Faults, nil
}

// Claim claims nothing: a sim signal may be read by any number of devices.
func (b *Backend) Claim([]hardware.DeviceConfig) error { return nil }

// Release releases nothing.
func (b *Backend) Release([]hardware.DeviceConfig) {}

// Open opens a device on its plant signal; an output is driven to its safe state now and
// again by the returned closer.
func (b *Backend) Open(spec *hardware.Spec) (any, func() error, error) {
	d := newDevice(b.plant, b.clock, &b.live, spec)
	if r := spec.Kind.Role(); r != hardware.RoleDigitalOutput && r != hardware.RoleDutyOutput {
		return d, nil, nil
	}
	_ = d.safe()
	return d, d.safe, nil
}

// Close does nothing: the plant goes with the backend.
func (b *Backend) Close() {}
