package hardware

import (
	"context"
	"hash/fnv"
	"math/rand/v2"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fieldcol/fieldcol/internal/hardware/plant"
)

// Sim signals: what a sim device reads or drives in the plant.
const (
	// SignalHeaterTemperature is the heater's temperature (°C) plus noise.
	SignalHeaterTemperature = "heater_temperature"
	// SignalAmbientTemperature is the ambient temperature (°C) plus noise.
	SignalAmbientTemperature = "ambient_temperature"
	// SignalSoCTemperature is a SoC temperature (°C) that follows the heater's duty a little.
	SignalSoCTemperature = "soc_temperature"
	// SignalMotorTach is the motor tachometer voltage: 0..tach_full_scale V over 0..max_speed.
	SignalMotorTach = "motor_tach"
	// SignalSupplyVoltage is a 3.3 V supply rail plus noise.
	SignalSupplyVoltage = "supply_voltage"
	// SignalDoor is the door switch: high when closed.
	SignalDoor = "door"
	// SignalFlowMeter is the flow meter's pulse train, whose rate follows the motor speed.
	SignalFlowMeter = "flow_meter"
	// SignalHeater is the heater's SSR duty (0..1).
	SignalHeater = "heater"
	// SignalMotorSpeed is the motor's speed command (0..1 of max_speed).
	SignalMotorSpeed = "motor_speed"
	// SignalMotorEnable switches the motor on.
	SignalMotorEnable = "motor_enable"
	// SignalIndicator is a lamp or buzzer output that drives nothing in the plant.
	SignalIndicator = "indicator"
)

type signalInfo struct {
	name string
	role Role
}

var signals = []signalInfo{
	{SignalHeaterTemperature, RoleTemperatureInput},
	{SignalAmbientTemperature, RoleTemperatureInput},
	{SignalSoCTemperature, RoleTemperatureInput},
	{SignalMotorTach, RoleAnalogInput},
	{SignalSupplyVoltage, RoleAnalogInput},
	{SignalDoor, RoleDigitalInput},
	{SignalFlowMeter, RoleDigitalInput},
	{SignalHeater, RoleDutyOutput},
	{SignalMotorSpeed, RoleDutyOutput},
	{SignalMotorEnable, RoleDigitalOutput},
	{SignalIndicator, RoleDigitalOutput},
}

func signalByName(name string) (signalInfo, bool) {
	for _, s := range signals {
		if s.name == name {
			return s, true
		}
	}
	return signalInfo{}, false
}

// SignalNames lists the sim signals, sorted.
func SignalNames() []string {
	out := make([]string, 0, len(signals))
	for _, s := range signals {
		out = append(out, s.name)
	}
	sort.Strings(out)
	return out
}

// defaultSignal is the signal of a sim device that names none.
func defaultSignal(k Kind) string {
	switch k.Role() {
	case RoleTemperatureInput:
		if k == KindSoCThermal {
			return SignalSoCTemperature
		}
		return SignalHeaterTemperature
	case RoleAnalogInput:
		return SignalSupplyVoltage
	case RoleDigitalInput:
		return SignalDoor
	case RoleDigitalOutput:
		return SignalMotorEnable
	default:
		return SignalHeater
	}
}

// simDevice reads or drives one plant signal. Each device has its own noise stream,
// seeded from the plant seed and the device name, so that adding a device or reading in a
// different order does not change another device's series.
type simDevice struct {
	plant  *plant.Plant
	clock  Clock
	signal string
	cfg    *atomic.Pointer[SimConfig] // the registry's live sim configuration
	edge   string
	safeV  float64 // the output's safe state (Settings.SafeStates)

	mu  sync.Mutex
	rng *rand.Rand
	lvl bool // indicator output level
}

func newSimDevice(pl *plant.Plant, clock Clock, cfg *atomic.Pointer[SimConfig], dc *DeviceConfig) *simDevice {
	sig := dc.Signal
	if sig == "" {
		sig = defaultSignal(dc.Kind)
	}
	h := fnv.New64a()
	_, _ = h.Write([]byte(dc.Name))
	return &simDevice{
		plant:  pl,
		clock:  clock,
		signal: sig,
		cfg:    cfg,
		edge:   dc.Edge,
		safeV:  dc.safe,
		rng:    rand.New(rand.NewPCG(uint64(cfg.Load().Seed), h.Sum64())),
	}
}

func (d *simDevice) noise(sigma float64) float64 {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.rng.NormFloat64() * sigma
}

// read implements rawReader; the plant answers at once, so ctx and timeout never bite.
func (d *simDevice) read(context.Context, time.Duration) (float64, error) {
	now := d.clock.Now()
	cfg := d.cfg.Load()
	switch d.signal {
	case SignalHeaterTemperature:
		return d.plant.Temperature(now) + d.noise(cfg.Heater.Noise), nil
	case SignalAmbientTemperature:
		return d.plant.Ambient() + d.noise(cfg.Heater.Noise), nil
	case SignalSoCTemperature:
		return 42 + 6*d.plant.HeaterDuty() + d.noise(4*cfg.Heater.Noise), nil
	case SignalMotorTach:
		v := d.plant.Speed(now) / d.plant.MaxSpeed() * cfg.Motor.TachFullScale
		return v + d.noise(cfg.Motor.Noise), nil
	default: // SignalSupplyVoltage
		return 3.3 + d.noise(cfg.Motor.Noise), nil
	}
}

// readLevel implements rawLevelReader.
func (d *simDevice) readLevel(context.Context, time.Duration) (bool, error) {
	now := d.clock.Now()
	if d.signal == SignalFlowMeter {
		_, high := d.plant.FlowPulses(now)
		return high, nil
	}
	return d.plant.Door(), nil
}

// edges implements rawLevelReader: flow meter pulses, or door closings and openings.
func (d *simDevice) edges(context.Context, time.Duration) (uint64, error) {
	now := d.clock.Now()
	var rises, falls uint64
	if d.signal == SignalFlowMeter {
		rises, falls = d.plant.FlowEdges(now)
	} else {
		rises, falls = d.plant.DoorEdges()
	}
	switch d.edge {
	case "falling":
		return falls, nil
	case "both":
		return rises + falls, nil
	default:
		return rises, nil
	}
}

// writeLevel implements rawLevelWriter.
func (d *simDevice) writeLevel(_ context.Context, _ time.Duration, level bool) error {
	if d.signal == SignalMotorEnable {
		d.plant.SetMotorEnable(d.clock.Now(), level)
		return nil
	}
	d.mu.Lock()
	d.lvl = level
	d.mu.Unlock()
	return nil
}

// writeDuty implements rawDutyWriter.
func (d *simDevice) writeDuty(_ context.Context, _ time.Duration, duty float64) error {
	if d.signal == SignalMotorSpeed {
		d.plant.SetMotorCommand(d.clock.Now(), duty)
		return nil
	}
	d.plant.SetHeaterDuty(d.clock.Now(), duty)
	return nil
}

// safe drives the device's output to its safe state.
func (d *simDevice) safe() error {
	switch d.signal {
	case SignalMotorEnable:
		d.plant.SetMotorEnable(d.clock.Now(), d.safeV >= 0.5)
	case SignalMotorSpeed:
		d.plant.SetMotorCommand(d.clock.Now(), d.safeV)
	case SignalHeater:
		d.plant.SetHeaterDuty(d.clock.Now(), d.safeV)
	default:
		d.mu.Lock()
		d.lvl = d.safeV >= 0.5
		d.mu.Unlock()
	}
	return nil
}
