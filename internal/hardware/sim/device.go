package sim

import (
	"context"
	"hash/fnv"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fieldcol/fieldcol/internal/hardware"
	"github.com/fieldcol/fieldcol/internal/hardware/sim/plant"
)

// defaultSignal is the signal of a sim device that names none.
func defaultSignal(k hardware.Kind) string {
	switch k.Role() {
	case hardware.RoleTemperatureInput:
		if k == hardware.KindSoCThermal {
			return hardware.SignalSoCTemperature
		}
		return hardware.SignalHeaterTemperature
	case hardware.RoleAnalogInput:
		return hardware.SignalSupplyVoltage
	case hardware.RoleDigitalInput:
		return hardware.SignalDoor
	case hardware.RoleDigitalOutput:
		return hardware.SignalMotorEnable
	default:
		return hardware.SignalHeater
	}
}

// device reads or drives one plant signal. Each device has its own noise stream,
// seeded from the plant seed and the device name, so that adding a device or reading in a
// different order does not change another device's series.
type device struct {
	plant  *plant.Plant
	clock  hardware.Clock
	signal string
	cfg    *atomic.Pointer[hardware.SimConfig] // the backend's live sim configuration
	edge   hardware.Edge
	safeV  float64 // the output's safe state (Settings.SafeStates)

	mu  sync.Mutex
	rng *rand.Rand
	lvl bool // indicator output level
}

func newDevice(pl *plant.Plant, clock hardware.Clock, cfg *atomic.Pointer[hardware.SimConfig], spec *hardware.Spec) *device {
	sig := spec.Signal
	if sig == "" {
		sig = defaultSignal(spec.Kind)
	}
	h := fnv.New64a()
	_, _ = h.Write([]byte(spec.Name))
	return &device{
		plant:  pl,
		clock:  clock,
		signal: sig,
		cfg:    cfg,
		edge:   spec.Edge,
		safeV:  spec.Safe,
		rng:    rand.New(rand.NewPCG(uint64(cfg.Load().Seed), h.Sum64())),
	}
}

func (d *device) noise(sigma float64) float64 {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.rng.NormFloat64() * sigma
}

// ReadRaw implements hardware.RawReader; the plant answers at once, so ctx and timeout
// never bite.
func (d *device) ReadRaw(context.Context, time.Duration) (float64, error) {
	now := d.clock.Now()
	cfg := d.cfg.Load()
	switch d.signal {
	case hardware.SignalHeaterTemperature:
		return d.plant.Temperature(now) + d.noise(cfg.Heater.Noise), nil
	case hardware.SignalAmbientTemperature:
		return d.plant.Ambient() + d.noise(cfg.Heater.Noise), nil
	case hardware.SignalSoCTemperature:
		return 42 + 6*d.plant.HeaterDuty() + d.noise(4*cfg.Heater.Noise), nil
	case hardware.SignalMotorTach:
		v := d.plant.Speed(now) / d.plant.MaxSpeed() * cfg.Motor.TachFullScale
		return v + d.noise(cfg.Motor.Noise), nil
	default: // SignalSupplyVoltage
		return 3.3 + d.noise(cfg.Motor.Noise), nil
	}
}

// ReadRawLevel implements hardware.RawLevelReader.
func (d *device) ReadRawLevel(context.Context, time.Duration) (bool, error) {
	now := d.clock.Now()
	if d.signal == hardware.SignalFlowMeter {
		_, high := d.plant.FlowPulses(now)
		return high, nil
	}
	return d.plant.Door(), nil
}

// RawEdges implements hardware.RawLevelReader: flow meter pulses, or door closings and openings.
func (d *device) RawEdges(context.Context, time.Duration) (uint64, error) {
	now := d.clock.Now()
	var rises, falls uint64
	if d.signal == hardware.SignalFlowMeter {
		rises, falls = d.plant.FlowEdges(now)
	} else {
		rises, falls = d.plant.DoorEdges()
	}
	switch d.edge {
	case hardware.EdgeFalling:
		return falls, nil
	case hardware.EdgeBoth:
		return rises + falls, nil
	default:
		return rises, nil
	}
}

// WriteRawLevel implements hardware.RawLevelWriter.
func (d *device) WriteRawLevel(_ context.Context, _ time.Duration, level bool) error {
	if d.signal == hardware.SignalMotorEnable {
		d.plant.SetMotorEnable(d.clock.Now(), level)
		return nil
	}
	d.mu.Lock()
	d.lvl = level
	d.mu.Unlock()
	return nil
}

// WriteRawDuty implements hardware.RawDutyWriter.
func (d *device) WriteRawDuty(_ context.Context, _ time.Duration, duty float64) error {
	if d.signal == hardware.SignalMotorSpeed {
		d.plant.SetMotorCommand(d.clock.Now(), duty)
		return nil
	}
	d.plant.SetHeaterDuty(d.clock.Now(), duty)
	return nil
}

// safe drives the device's output to its safe state.
func (d *device) safe() error {
	switch d.signal {
	case hardware.SignalMotorEnable:
		d.plant.SetMotorEnable(d.clock.Now(), d.safeV >= 0.5)
	case hardware.SignalMotorSpeed:
		d.plant.SetMotorCommand(d.clock.Now(), d.safeV)
	case hardware.SignalHeater:
		d.plant.SetHeaterDuty(d.clock.Now(), d.safeV)
	default:
		d.mu.Lock()
		d.lvl = d.safeV >= 0.5
		d.mu.Unlock()
	}
	return nil
}
