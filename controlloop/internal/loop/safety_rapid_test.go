package loop

import (
	"context"
	"errors"
	"flag"
	"math"
	"math/rand/v2"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/zap"
	"pgregory.net/rapid"

	"github.com/fieldcol/fieldcol/controlloop/internal/pid"
	"github.com/fieldcol/fieldcol/controlloop/internal/retain"
	"github.com/fieldcol/fieldcol/controlloop/schedule"
	"github.com/fieldcol/fieldcol/internal/hardware"
	"github.com/fieldcol/fieldcol/internal/hardware/sim/plant"
)

// The safety envelope is searched for violations, not replayed on examples: rapid draws
// sequences of operator commands (valid, out of range, in any mode), sensor and actuator
// faults of every kind at random moments, door openings, and clean and unclean restarts,
// and runs them against the simulated oven in virtual time. After every cycle it checks
// what a PLC engineer relies on; a failure shrinks to a minimal sequence.

// Sequences per run: 1,000 in make test, 100,000 in make soak (FIELDCOL_SOAK=1), unless
// -rapid.checks or RAPID_CHECKS says otherwise.
func rapidChecks(t *testing.T) {
	f := flag.Lookup("rapid.checks")
	if f == nil || f.Value.String() != f.DefValue || os.Getenv("RAPID_CHECKS") != "" {
		return
	}
	n := 1000
	if os.Getenv("FIELDCOL_SOAK") == "1" {
		n = 100_000
	}
	require.NoError(t, flag.Set("rapid.checks", strconv.Itoa(n)))
	t.Cleanup(func() { _ = flag.Set("rapid.checks", f.DefValue) })
}

// The oven of the edge's shipped config on the sim plant's default heater, in real-time
// plant seconds: period 100 ms, high limit 78 °C, setpoint 0..75, ramp 0.5 K/s.
const (
	ovenPeriod   = 100 * time.Millisecond
	ovenHigh     = 78.0
	ovenStuck    = 10 * time.Second
	ovenSaturate = 30 * time.Second
)

var ovenPlant = plant.Params{
	Heater: plant.HeaterParams{Ambient: 22, MaxPower: 100, ThermalResistance: 0.6,
		TimeConstant: 120 * time.Second, DeadTime: 5 * time.Second},
	Motor:      plant.MotorParams{MaxSpeed: 3000, TimeConstant: 500 * time.Millisecond},
	TimeScale:  1,
	DoorClosed: true,
}

// overshootBound is how far past the high limit the plant can go after the loop reacts:
// the heat already in the dead-time pipe plus what a full heater adds while a fault is
// being detected (a frozen sensor takes the stuck window), from the high limit towards
// the heater's steady state at full power.
func overshootBound() float64 {
	h := ovenPlant.Heater
	top := h.Ambient + h.MaxPower*h.ThermalResistance
	react := h.DeadTime + ovenStuck + 2*ovenPeriod
	return (top - ovenHigh) * (1 - math.Exp(-react.Seconds()/h.TimeConstant.Seconds()))
}

// rig is one oven loop on the plant, with faults the test switches.
type rig struct {
	t       *rapid.T
	pl      *plant.Plant
	now     time.Time // virtual wall time of the plant
	noise   *rand.Rand
	fault   hardware.FaultKind // sensor fault in effect ("" none)
	frozen  float64
	door    bool
	actErr  bool
	written float64 // last duty the loop wrote (NaN before the first)
	writes  int

	cfgMin, cfgMax float64
	latchDoor      bool
	dryRun         bool
	spec           Spec
	l              *Loop

	// What a persister would have on disk: saved after every accepted command and
	// whenever the loop signals a change.
	persist chan struct{}
	saved   retain.Loop
}

func (r *rig) read(context.Context) (float64, error) {
	v := r.pl.Temperature(r.now) + r.noise.NormFloat64()*0.05
	switch r.fault {
	case hardware.FaultStuck:
		return r.frozen, nil
	case hardware.FaultNaN:
		return math.NaN(), nil
	case hardware.FaultOutOfRange:
		return 1e6, nil
	case hardware.FaultBusTimeout:
		return math.NaN(), &hardware.Error{Device: "oven_temp", Type: hardware.ErrorTimeout}
	}
	r.frozen = v
	return v, nil
}

func (r *rig) readDoor(context.Context) (bool, error) { return r.door, nil }

func (r *rig) writeDuty(_ context.Context, v float64) error {
	if r.actErr {
		return &hardware.Error{Device: "heater_ssr", Type: hardware.ErrorTimeout}
	}
	r.written = v
	r.writes++
	r.pl.SetHeaterDuty(r.now, v)
	return nil
}

func newRig(t *rapid.T) *rig {
	r := &rig{
		t:       t,
		now:     time.Unix(1_700_000_000, 0),
		noise:   rand.New(rand.NewPCG(rapid.Uint64().Draw(t, "noise_seed"), 1)), //nolint:gosec // sensor noise, not a secret
		door:    true,
		written: math.NaN(),
		persist: make(chan struct{}, 1),
	}
	r.pl = plant.New(ovenPlant, r.now)
	r.cfgMin = rapid.SampledFrom([]float64{0, 0, 0.05}).Draw(t, "output_min")
	r.cfgMax = rapid.Float64Range(0.3, 1).Draw(t, "output_max")
	r.latchDoor = rapid.Bool().Draw(t, "latch_door")
	r.dryRun = rapid.Float64Range(0, 1).Draw(t, "dry_run") < 0.15
	c, err := pid.New(pid.Gains{Kp: 0.1, Ki: 0.00125}, pid.Limits{OutMin: r.cfgMin, OutMax: r.cfgMax})
	if err != nil {
		t.Fatal(err)
	}
	r.spec = Spec{
		Name: "oven", Period: ovenPeriod,
		Input: r.read, InputName: "oven_temp", ValidMin: -20, ValidMax: 150,
		Main: Output{Name: "heater_ssr", Duty: r.writeDuty, Safe: 0},
		Kind: PID, PID: c,
		Setpoint: 60, SetpointMin: 0, SetpointMax: 75, MaxRate: 0.5,
		OutputMin: r.cfgMin, OutputMax: r.cfgMax, Direction: 1,
		StuckAfter: ovenStuck, SaturationTime: ovenSaturate, MinResponse: 1.7,
		Mode:       pid.Auto,
		DryRun:     r.dryRun,
		Interlocks: []Interlock{{Name: "door_closed", Level: r.readDoor, Want: true, Below: math.NaN(), Above: math.NaN(), Latch: r.latchDoor}},
		Alarms:     []AlarmSpec{{Name: "high_limit", Kind: AlarmHigh, Limit: ovenHigh}},
	}
	r.start(nil, nil)
	return r
}

// start builds the loop as the extension does after a (re)start: latches and operator
// state from the last save; the outputs start safe.
func (r *rig) start(latched []string, op *OperatorState) {
	s := r.spec
	c, err := pid.New(pid.Gains{Kp: 0.1, Ki: 0.00125}, pid.Limits{OutMin: r.cfgMin, OutMax: r.cfgMax})
	if err != nil {
		r.t.Fatal(err)
	}
	s.PID, s.Restored, s.Operator = c, latched, op
	l, err := New(s, zap.NewNop(), r.persist)
	if err != nil {
		r.t.Fatal(err)
	}
	if err := l.ForceSafe(context.Background()); err != nil && !r.actErr {
		r.t.Fatal(err)
	}
	r.l = l
	r.save()
}

// save is the persister: what it writes is what an unclean restart finds.
func (r *rig) save() {
	op := r.l.Operator()
	r.saved = retain.Loop{Latched: r.l.LatchedNames(), Operator: r.record(op)}
}

// record and restoreRecord are the latch file's round trip of the operator state, dry
// run as the extension keeps it (a clear under a dry-run configuration).
func (r *rig) record(op OperatorState) *retain.Operator {
	f := func(v float64) *float64 { return &v }
	return &retain.Operator{Mode: op.Mode.String(), Setpoint: f(op.Setpoint), MaxRate: f(op.MaxRate),
		OutputMax: f(op.OutputMax), Speed: f(op.Speed), Manual: f(op.Manual), DryRunCleared: r.dryRun && !op.DryRun}
}

func (r *rig) restoreRecord(rec *retain.Operator) *OperatorState {
	m, err := pid.ParseMode(rec.Mode)
	if err != nil {
		r.t.Fatal(err)
	}
	return &OperatorState{Mode: m, Setpoint: *rec.Setpoint, MaxRate: *rec.MaxRate, OutputMax: *rec.OutputMax,
		Speed: *rec.Speed, Manual: *rec.Manual, DryRun: r.dryRun && !rec.DryRunCleared}
}

// cycle runs one period of virtual time and checks the invariants on what was written.
func (r *rig) cycle() {
	r.now = r.now.Add(ovenPeriod)
	r.pl.Temperature(r.now) // the plant moves to now before the loop reads it
	before := r.writes
	now := schedule.Now()
	r.l.Cycle(schedule.Tick{Deadline: now, Woke: now})
	select {
	case <-r.persist:
		r.save()
	default:
	}
	st := r.l.Status()
	wrote := r.writes > before
	safe := r.spec.Main.Safe

	// Outputs within the configured limits in every mode (the safe state aside).
	if wrote && r.written != safe && (r.written < r.cfgMin-1e-12 || r.written > r.cfgMax+1e-12 || math.IsNaN(r.written)) {
		r.t.Fatalf("cycle %d: wrote %g outside the configured limits %g..%g (mode %s)", st.Cycle, r.written, r.cfgMin, r.cfgMax, st.Mode)
	}
	// ... and within the operator's narrower limit.
	if op := r.l.Operator(); wrote && r.written != safe && r.written > max(r.cfgMin, op.OutputMax)+1e-12 {
		r.t.Fatalf("cycle %d: wrote %g above the operator's output_max %g", st.Cycle, r.written, op.OutputMax)
	}
	// Safe while tripped, latched, interlocked or the reading is invalid, in this cycle.
	if (st.Latched != 0 || !st.Valid || st.Interlocks&1 == 0) && wrote && r.written != safe {
		r.t.Fatalf("cycle %d: wrote %g while held (latched %b, valid %v, door %v)", st.Cycle, r.written, st.Latched, st.Valid, r.door)
	}
	// Off writes the safe state; dry run writes nothing but the safe state.
	if st.Mode == pid.Off && wrote && r.written != safe {
		r.t.Fatalf("cycle %d: wrote %g in mode off", st.Cycle, r.written)
	}
	if st.DryRun && r.writes > 0 && r.written != safe {
		r.t.Fatalf("cycle %d: the actuator holds %g in dry run", st.Cycle, r.written)
	}
	// The plant never passes the high limit by more than physics allows after a trip.
	if temp := r.pl.Temperature(r.now); temp > ovenHigh+overshootBound()+0.3 {
		r.t.Fatalf("cycle %d: plant at %.2f °C, past the high limit %g by more than the physical overshoot %.2f K", st.Cycle, temp, ovenHigh, overshootBound())
	}
}

// command submits cmd through the loop's ring in the next cycle and checks that a refused
// command changed nothing and an accepted one is saved before it is answered.
func (r *rig) command(cmd Command) {
	before := r.l.Operator()
	cmd.reply = make(chan error, 1)
	if !r.l.cmds.Push(&cmd) {
		r.t.Fatal("command ring full")
	}
	r.cycle()
	var err error
	select {
	case err = <-cmd.reply:
	default:
		r.t.Fatal("no answer in the cycle")
	}
	after := r.l.Operator()
	if r.l.held() {
		// The hold itself returns a manual output to safe in the same cycle.
		before.Manual = after.Manual
	}
	if err != nil && cmd.Kind != CmdAckAlarm && !sameOperator(before, after) {
		r.t.Fatalf("refused command %v (%v) changed the operator state %+v -> %+v", cmd.Kind, err, before, after)
	}
	if errors.Is(err, ErrHeld) && !r.l.held() {
		r.t.Fatalf("command refused as held while the loop was not held")
	}
	if err == nil {
		r.save()
	}
}

func sameOperator(a, b OperatorState) bool {
	eq := func(x, y float64) bool { return x == y || (math.IsNaN(x) && math.IsNaN(y)) }
	return a.Mode == b.Mode && eq(a.Setpoint, b.Setpoint) && eq(a.MaxRate, b.MaxRate) && eq(a.OutputMax, b.OutputMax) &&
		eq(a.Speed, b.Speed) && eq(a.Manual, b.Manual) && a.DryRun == b.DryRun
}

// anyFloat draws a command argument: in range, out of range, extreme or absent.
func anyFloat(t *rapid.T, label string, lo, hi float64) float64 {
	switch rapid.IntRange(0, 5).Draw(t, label+"_kind") {
	case 0:
		return math.NaN() // absent
	case 1:
		return rapid.SampledFrom([]float64{-1, 0, 1e308, -1e308, math.Inf(1), hi * 2}).Draw(t, label+"_extreme")
	}
	return rapid.Float64Range(lo, hi).Draw(t, label)
}

func TestSafetyEnvelopeRandomized(t *testing.T) {
	rapidChecks(t)
	var sequences, steps, cycles, restarts, refused int
	rapid.Check(t, func(t *rapid.T) {
		r := newRig(t)
		sequences++
		n := rapid.IntRange(5, 40).Draw(t, "steps")
		for range n {
			steps++
			for range rapid.IntRange(1, 60).Draw(t, "cycles") {
				r.cycle()
				cycles++
			}
			nan := math.NaN()
			base := Command{Setpoint: nan, MaxRate: nan, OutputMax: nan, Speed: nan, Manual: nan, MotorOn: -1, Alarm: -1}
			switch rapid.IntRange(0, 10).Draw(t, "event") {
			case 0:
				c := base
				c.Kind = CmdSetTempSettings
				c.Setpoint, c.MaxRate, c.OutputMax = anyFloat(t, "setpoint", -50, 200), anyFloat(t, "max_rate", 0, 5), anyFloat(t, "output_max", -0.5, 1.5)
				r.command(c)
			case 1, 2:
				c := base
				c.Kind = CmdSetMode
				c.Mode = rapid.SampledFrom([]pid.Mode{pid.Auto, pid.Manual, pid.Off}).Draw(t, "mode")
				if c.Mode == pid.Manual {
					c.Manual = anyFloat(t, "manual", -0.5, 1.5)
				}
				r.command(c)
				if r.l.Mode() == pid.Manual && r.l.held() && r.l.Operator().Manual != r.spec.Main.Safe && r.l.Status().Cycle > 1 {
					t.Fatalf("manual output %g kept while held: it would energize at re-arming", r.l.Operator().Manual)
				}
			case 3:
				c := base
				c.Kind = CmdAckAlarm
				c.Alarm = rapid.IntRange(-1, len(BuiltinAlarms)+1).Draw(t, "alarm")
				r.command(c)
			case 4:
				c := base
				c.Kind = CmdClearDryRun
				r.command(c)
			case 5:
				r.fault = rapid.SampledFrom([]hardware.FaultKind{"", hardware.FaultStuck, hardware.FaultNaN, hardware.FaultOutOfRange, hardware.FaultBusTimeout}).Draw(t, "sensor_fault")
			case 6:
				r.door = !r.door
			case 7:
				r.actErr = rapid.Float64Range(0, 1).Draw(t, "actuator_fault") < 0.5
			case 8, 9:
				// Restart: clean (the state as it is now, as Shutdown saves it) or unclean
				// (what the persister last wrote).
				restarts++
				if rapid.Bool().Draw(t, "clean") {
					r.save()
				}
				want := r.restoreRecord(r.saved.Operator)
				latched := r.saved.Latched
				r.start(latched, want)
				if got := r.l.Operator(); !sameOperator(*want, got) {
					t.Fatalf("restart changed the operator state: saved %+v, restored %+v", *want, got)
				}
			default:
				c := base
				c.Kind = CmdSetMotor
				c.MotorOn = 1
				if err := r.l.Submit(c, 0); err == nil {
					t.Fatal("SET_MOTOR on a loop without a motor")
				}
			}
			if r.l.Status().Latched != 0 {
				refused++
			}
		}
	})
	t.Logf("safety envelope: %d sequences, %d steps, %d cycles (%.0f plant hours), %d restarts, %d steps while held; 0 violations",
		sequences, steps, cycles, float64(cycles)*ovenPeriod.Hours(), restarts, refused)
}
