// Package plant is the physics of the simulated plant behind the hardware sim backend: a
// heater with first-order dynamics and dead time, a motor with a first-order speed
// response, a flow meter driven by the motor and a door switch. It integrates on a fixed
// step in plant time, so the same actuator history gives the same trajectory however often
// it is observed. It knows nothing of devices, noise or faults.
package plant

import (
	"math"
	"sync"
	"time"
)

// Step is the fixed integration step in plant time.
const Step = 50 * time.Millisecond

// HeaterParams are the heater's physical parameters: C·dT/dt = u(t−dead)·Pmax − (T−Ta)/R.
type HeaterParams struct {
	// Ambient is Ta in °C, also the initial temperature.
	Ambient float64
	// MaxPower is Pmax in W at duty 1.
	MaxPower float64
	// ThermalResistance is R in K/W; the steady-state rise at duty u is u·Pmax·R.
	ThermalResistance float64
	// TimeConstant is R·C.
	TimeConstant time.Duration
	// DeadTime delays the duty before it heats (transport delay of the heat path).
	DeadTime time.Duration
}

// MotorParams are the motor's parameters: τ·dω/dt = enable·command·MaxSpeed − ω.
type MotorParams struct {
	// MaxSpeed is the speed in rpm at command 1.
	MaxSpeed float64
	// TimeConstant is τ.
	TimeConstant time.Duration
	// FlowPulsesPerRev is how many flow meter pulses one motor revolution gives.
	FlowPulsesPerRev float64
}

// Params configure a Plant.
type Params struct {
	// Heater is the heater.
	Heater HeaterParams
	// Motor is the motor.
	Motor MotorParams
	// TimeScale is plant seconds per wall second (1 = real time).
	TimeScale float64
	// DoorClosed is the door switch's initial state.
	DoorClosed bool
}

// Plant is the simulated process. It is safe for concurrent use.
type Plant struct {
	mu     sync.Mutex
	p      Params
	start  time.Time
	steps  int64 // integration steps done since start
	dt     float64
	temp   float64
	speed  float64
	pulses float64 // flow meter pulses, fractional
	duty   float64
	enable bool
	cmd    float64
	door   bool
	closes uint64    // door transitions to closed (rising edges of the switch)
	opens  uint64    // door transitions to open (falling edges)
	delay  []float64 // ring of past duties, len = dead time in steps (+1)
	alphaH float64   // 1 − e^(−dt/τ) of the heater
	alphaM float64   // 1 − e^(−dt/τ) of the motor
	head   int
}

// New returns a plant at rest at ambient temperature whose time starts at start.
func New(p Params, start time.Time) *Plant {
	if p.TimeScale <= 0 {
		p.TimeScale = 1
	}
	n := int(p.Heater.DeadTime/Step) + 1
	return &Plant{
		p:      p,
		start:  start,
		dt:     Step.Seconds(),
		alphaH: stepGain(p.Heater.TimeConstant),
		alphaM: stepGain(p.Motor.TimeConstant),
		temp:   p.Heater.Ambient,
		door:   p.DoorClosed,
		delay:  make([]float64, n),
	}
}

// Reconfigure gives the running plant new parameters from wall time now on. The actuators,
// pulse count and door edges carry over; the dead-time history is refilled with the current
// duty; plant time restarts at now, so a new time scale applies from here without a jump.
// With atRest the heater starts over at the new ambient and the door in its configured
// state (the plant had no real parameters yet); otherwise temperature and door carry over.
func (pl *Plant) Reconfigure(now time.Time, p Params, atRest bool) {
	pl.mu.Lock()
	defer pl.mu.Unlock()
	pl.advance(now)
	if p.TimeScale <= 0 {
		p.TimeScale = 1
	}
	pl.p = p
	pl.start, pl.steps = now, 0
	pl.alphaH, pl.alphaM = stepGain(p.Heater.TimeConstant), stepGain(p.Motor.TimeConstant)
	pl.delay = make([]float64, int(p.Heater.DeadTime/Step)+1)
	for i := range pl.delay {
		pl.delay[i] = pl.duty
	}
	pl.head = 0
	if atRest {
		pl.temp = p.Heater.Ambient
		pl.door = p.DoorClosed
	}
}

// Start returns the wall time plant time counts from (the last Reconfigure, or New).
func (pl *Plant) Start() time.Time { return pl.start }

// advance integrates up to wall time now. Callers hold mu.
func (pl *Plant) advance(now time.Time) {
	elapsed := now.Sub(pl.start).Seconds() * pl.p.TimeScale
	target := int64(elapsed / pl.dt)
	h := pl.p.Heater
	m := pl.p.Motor
	for ; pl.steps < target; pl.steps++ {
		// The ring holds the last len(delay) duties; the oldest one is what heats now.
		pl.delay[pl.head] = pl.duty
		pl.head = (pl.head + 1) % len(pl.delay)
		u := pl.delay[pl.head]
		// C·dT/dt = u·Pmax − (T−Ta)/R with C = τ/R is first order towards Ta + u·Pmax·R;
		// the exact step response over dt (alphaH = 1 − e^(−dt/τ)) keeps it accurate and
		// stable whatever the time constant.
		pl.temp += (h.Ambient + u*h.MaxPower*h.ThermalResistance - pl.temp) * pl.alphaH
		want := 0.0
		if pl.enable {
			want = pl.cmd * m.MaxSpeed
		}
		pl.speed += (want - pl.speed) * pl.alphaM
		pl.pulses += pl.dt * pl.speed / 60 * m.FlowPulsesPerRev
	}
}

// Temperature returns the heater temperature in °C at wall time now.
func (pl *Plant) Temperature(now time.Time) float64 {
	pl.mu.Lock()
	defer pl.mu.Unlock()
	pl.advance(now)
	return pl.temp
}

// Ambient returns the ambient temperature in °C.
func (pl *Plant) Ambient() float64 { return pl.p.Heater.Ambient }

// Speed returns the motor speed in rpm at wall time now.
func (pl *Plant) Speed(now time.Time) float64 {
	pl.mu.Lock()
	defer pl.mu.Unlock()
	pl.advance(now)
	return pl.speed
}

// MaxSpeed returns the motor's speed at command 1 in rpm.
func (pl *Plant) MaxSpeed() float64 { return pl.p.Motor.MaxSpeed }

// FlowPulses returns the whole flow meter pulses counted since start and the level of the
// pulse train (high during the first half of each pulse) at wall time now.
func (pl *Plant) FlowPulses(now time.Time) (uint64, bool) {
	pl.mu.Lock()
	defer pl.mu.Unlock()
	pl.advance(now)
	whole, frac := math.Modf(pl.pulses)
	return uint64(whole), frac < 0.5
}

// Door returns whether the door switch is closed.
func (pl *Plant) Door() bool {
	pl.mu.Lock()
	defer pl.mu.Unlock()
	return pl.door
}

// SetDoor opens or closes the door (an operator's action in a test or a demo).
func (pl *Plant) SetDoor(now time.Time, closed bool) {
	pl.mu.Lock()
	defer pl.mu.Unlock()
	pl.advance(now)
	switch {
	case closed && !pl.door:
		pl.closes++
	case !closed && pl.door:
		pl.opens++
	}
	pl.door = closed
}

// DoorEdges returns how many times the door closed (rising edges of the switch) and
// opened (falling edges).
func (pl *Plant) DoorEdges() (rises, falls uint64) {
	pl.mu.Lock()
	defer pl.mu.Unlock()
	return pl.closes, pl.opens
}

// FlowEdges returns the flow meter's rising and falling edges since start at wall time
// now: a pulse rises at each whole count and falls half a pulse later.
func (pl *Plant) FlowEdges(now time.Time) (rises, falls uint64) {
	pl.mu.Lock()
	defer pl.mu.Unlock()
	pl.advance(now)
	return uint64(math.Floor(pl.pulses)), uint64(math.Floor(pl.pulses + 0.5))
}

// SetHeaterDuty sets the heater duty (clamped to 0..1) from wall time now on.
func (pl *Plant) SetHeaterDuty(now time.Time, duty float64) {
	pl.mu.Lock()
	defer pl.mu.Unlock()
	pl.advance(now)
	pl.duty = clamp01(duty)
}

// HeaterDuty returns the current heater duty.
func (pl *Plant) HeaterDuty() float64 {
	pl.mu.Lock()
	defer pl.mu.Unlock()
	return pl.duty
}

// SetMotorEnable switches the motor on or off from wall time now on.
func (pl *Plant) SetMotorEnable(now time.Time, on bool) {
	pl.mu.Lock()
	defer pl.mu.Unlock()
	pl.advance(now)
	pl.enable = on
}

// MotorEnabled returns whether the motor is enabled.
func (pl *Plant) MotorEnabled() bool {
	pl.mu.Lock()
	defer pl.mu.Unlock()
	return pl.enable
}

// SetMotorCommand sets the motor speed command (clamped to 0..1) from wall time now on.
func (pl *Plant) SetMotorCommand(now time.Time, cmd float64) {
	pl.mu.Lock()
	defer pl.mu.Unlock()
	pl.advance(now)
	pl.cmd = clamp01(cmd)
}

// MotorCommand returns the current motor speed command.
func (pl *Plant) MotorCommand() float64 {
	pl.mu.Lock()
	defer pl.mu.Unlock()
	return pl.cmd
}

// stepGain is the fraction of the way to its target a first-order system with time
// constant tau covers in one Step; 1 (instant) for tau 0.
func stepGain(tau time.Duration) float64 {
	if tau <= 0 {
		return 1
	}
	return 1 - math.Exp(-Step.Seconds()/tau.Seconds())
}

func clamp01(v float64) float64 {
	switch {
	case math.IsNaN(v) || v < 0:
		return 0
	case v > 1:
		return 1
	default:
		return v
	}
}
