// Package backends makes hardware registries with every backend of the build, the sim
// plant and periph. It is the one package that imports both, so that internal/hardware
// imports neither and a component names no backend.
package backends

import (
	"github.com/fieldcol/fieldcol/internal/hardware"
	"github.com/fieldcol/fieldcol/internal/hardware/periph"
	"github.com/fieldcol/fieldcol/internal/hardware/sim"
)

// NewRegistry returns a registry with the sim and the periph backend, periph on this
// host's own GPIO files; clock nil is the wall clock.
func NewRegistry(clock hardware.Clock) *hardware.Registry {
	return NewRegistryWith(clock, periph.Options{})
}

// NewRegistryWith is NewRegistry with the periph backend's options: a test points GPIO at
// files without gpiochips, so that periph's gpiotest pins are what opens, also on a Pi.
func NewRegistryWith(clock hardware.Clock, o periph.Options) *hardware.Registry {
	return hardware.NewRegistry(clock, hardware.Backends{
		hardware.BackendSim:    sim.New,
		hardware.BackendPeriph: periph.New(o),
	})
}
