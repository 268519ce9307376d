package loop

import (
	"context"
	"errors"
	"fmt"
	"math"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/fieldcol/fieldcol/controlloop/internal/alarm"
	"github.com/fieldcol/fieldcol/controlloop/internal/pid"
	"github.com/fieldcol/fieldcol/controlloop/internal/ring"
	"github.com/fieldcol/fieldcol/controlloop/schedule"
	"github.com/fieldcol/fieldcol/internal/hardware"
)

// Ring sizes: a few seconds of samples at 1 kHz, and enough events for a burst of faults
// between two drains.
const (
	sampleRingSize  = 4096
	eventRingSize   = 256
	spanRingSize    = 64
	commandRingSize = 16
)

// Loop runs one Spec.
type Loop struct {
	spec Spec
	log  *zap.Logger

	// Owned by the loop thread.
	alarms        *alarm.Set
	alarmDelay    []int // cycles each process alarm's condition has held
	alarmDelayMax []int
	ilAlarm       []int // alarm index of each latching interlock, -1 if none
	ilHolds       []bool
	sp            float64 // working (ramped) setpoint
	target        float64 // setpoint the ramp moves to
	mode          pid.Mode
	manual        float64
	speed         float64
	outputMax     float64 // the operator's output limit; the envelope keeps it inside outMin..outMax
	maxRate       float64 // the operator's ramp rate (0 = the configured one)
	outMin        float64 // configured output limits
	outMax        float64
	valid         bool // this cycle's reading is valid
	ilOK          bool // every interlock holds this cycle
	stuck         stuckCheck
	ilStuck       []stuckCheck
	satCycles     int     // cycles the output has been saturated, in the current window
	satMax        int     // plausibility window in cycles (0 = off)
	satRef        float64 // process value at the start of the window
	lastSat       bool    // the last cycle wrote a saturated output
	faulted       bool    // the last reading was invalid (for one event per episode)
	actFaulted    [2]bool // the last write of output i failed (for one event per episode)
	wasSafe       bool
	cycle         uint64
	wallOffset    int64
	lastMask      uint64
	ctx           context.Context
	// Dry run: the loop computes but writes no actuator (see dryWrite).
	dryRun    bool
	dryLast   [2]float64 // last held-back value recorded per output, NaN before the first
	dryLastAt [2]int64   // monotonic ns of that record

	// Published to other goroutines.
	pvBits, spBits, outBits atomic.Uint64
	pvAt                    atomic.Int64 // monotonic ns of the last valid reading
	maxRateBits, opMaxBits  atomic.Uint64
	speedBits, manualBits   atomic.Uint64
	safe                    atomic.Bool
	modeA                   atomic.Uint32
	activeMask, latchedMask atomic.Uint64
	heartbeat               atomic.Int64 // monotonic ns of the last healthy cycle
	running                 atomic.Bool
	cyclesOK, overruns      atomic.Uint64
	skipped                 atomic.Uint64
	actErrs                 [2][NumErrTypes]atomic.Uint64
	publishMissed           atomic.Uint64
	dryRunA                 atomic.Bool
	dryWrites               [2]atomic.Uint64

	samples *ring.Ring[Sample]
	events  *ring.Ring[Event]
	spans   *ring.Ring[CycleSpan]

	cmdMu    sync.Mutex // serializes command producers; the loop never takes it
	cmds     *ring.Ring[Command]
	replies  [commandRingSize]pendingReply
	nReplies int

	statusMu sync.Mutex // the loop only TryLocks it
	status   Snapshot

	persist chan<- struct{} // non-blocking "latches changed" signal, may be nil
	stop    atomic.Bool
	done    chan struct{}
}

// Snapshot is the loop's state as the API shows it.
type Snapshot struct {
	Cycle      uint64
	PV         float64
	Setpoint   float64
	Target     float64
	Output     float64
	Mode       pid.Mode
	Safe       bool
	Valid      bool
	Speed      float64
	OutputMax  float64
	Active     uint64
	Latched    uint64
	Interlocks uint64 // bit set = interlock holds
	Running    bool
	// DryRun is true while the loop writes no actuator; Output and Safe then describe the
	// actuators (held in their safe state) and DryRunOutput what the loop would write.
	DryRun       bool
	DryRunOutput float64
}

// New prepares a loop; Start runs it.
func New(spec Spec, log *zap.Logger, persist chan<- struct{}) (*Loop, error) {
	if spec.Period <= 0 {
		return nil, fmt.Errorf("loop %q: period must be positive", spec.Name)
	}
	if spec.Input == nil || (spec.Main.Duty == nil && spec.Main.Level == nil) {
		return nil, fmt.Errorf("loop %q: input and output are required", spec.Name)
	}
	if (spec.Kind == PID && spec.PID == nil) || (spec.Kind == OnOff && spec.OnOff == nil) || spec.Kind == 0 {
		return nil, fmt.Errorf("loop %q: controller missing", spec.Name)
	}
	if len(spec.Interlocks) > 64 {
		return nil, fmt.Errorf("loop %q: at most 64 interlocks", spec.Name)
	}
	names := append([]string{}, BuiltinAlarms...)
	for _, a := range spec.Alarms {
		// An alarm of no kind would never trip; the config's types map onto these three.
		if a.Kind < AlarmHigh || a.Kind > AlarmDeviation {
			return nil, fmt.Errorf("loop %q: alarm %q has no kind (high, low or deviation)", spec.Name, a.Name)
		}
		names = append(names, a.Name)
	}
	l := &Loop{spec: spec, log: log, persist: persist, done: make(chan struct{}), ctx: context.Background()}
	l.ilAlarm = make([]int, len(spec.Interlocks))
	l.ilHolds = make([]bool, len(spec.Interlocks))
	l.ilStuck = make([]stuckCheck, len(spec.Interlocks))
	for i, il := range spec.Interlocks {
		if il.StaleAfter <= 0 {
			l.spec.Interlocks[i].StaleAfter = 3 * spec.Period
		}
		if il.Value != nil {
			l.ilStuck[i] = stuckCheck{max: int(spec.StuckAfter / spec.Period)}
		}
		l.ilAlarm[i] = -1
		if il.Latch {
			l.ilAlarm[i] = len(names)
			names = append(names, InterlockAlarmName(il.Name))
		}
	}
	set, err := alarm.NewSet(names)
	if err != nil {
		return nil, fmt.Errorf("loop %q: %w", spec.Name, err)
	}
	l.alarms = set
	if unknown := set.Restore(spec.Restored); len(unknown) > 0 && log != nil {
		log.Warn("latch file names alarms this loop no longer has; ignoring them",
			zap.String("loop", spec.Name), zap.Strings("alarms", unknown))
	}
	l.alarmDelay = make([]int, len(spec.Alarms))
	l.alarmDelayMax = make([]int, len(spec.Alarms))
	for i, a := range spec.Alarms {
		l.alarmDelayMax[i] = int(a.Delay / spec.Period)
	}
	if l.samples, err = ring.New[Sample](sampleRingSize); err != nil {
		return nil, err
	}
	if l.events, err = ring.New[Event](eventRingSize); err != nil {
		return nil, err
	}
	if l.spans, err = ring.New[CycleSpan](spanRingSize); err != nil {
		return nil, err
	}
	if l.cmds, err = ring.New[Command](commandRingSize); err != nil {
		return nil, err
	}
	if spec.StaleAfter <= 0 {
		l.spec.StaleAfter = 3 * spec.Period
	}
	l.target = clamp(spec.Setpoint, spec.SetpointMin, spec.SetpointMax)
	l.sp = math.NaN() // the ramp starts from the first valid reading
	l.mode = spec.Mode
	l.speed = spec.Speed
	if l.speed == 0 {
		l.speed = 1
	}
	l.outMin, l.outMax = spec.OutputMin, spec.OutputMax
	if l.outMin == 0 && l.outMax == 0 {
		l.outMax = 1
	}
	if !(0 <= l.outMin && l.outMin <= l.outMax && l.outMax <= 1) {
		return nil, fmt.Errorf("loop %q: output limits %g..%g must lie within 0..1", spec.Name, spec.OutputMin, spec.OutputMax)
	}
	l.outputMax = l.outMax
	if l.spec.Direction == 0 {
		l.spec.Direction = 1
	}
	l.stuck = stuckCheck{max: int(spec.StuckAfter / spec.Period), tol: spec.StuckTolerance}
	l.satMax = int(spec.SaturationTime / spec.Period)
	l.dryRun = spec.DryRun
	if op := spec.Operator; op != nil {
		l.restore(*op)
	}
	if spec.PID != nil {
		spec.PID.SetMode(l.mode)
	}
	l.pvBits.Store(math.Float64bits(math.NaN()))
	l.spBits.Store(math.Float64bits(l.target))
	l.outBits.Store(math.Float64bits(spec.Main.Safe))
	l.safe.Store(true)
	l.wasSafe = true
	l.dryRunA.Store(l.dryRun)
	l.publishOperator()
	l.dryLast = [2]float64{math.NaN(), math.NaN()}
	l.latchedMask.Store(set.Mask())
	l.lastMask = set.Mask()
	l.publish(false)
	return l, nil
}

// Name is the loop's name.
func (l *Loop) Name() string { return l.spec.Name }

// Spec returns the loop's spec (read-only).
func (l *Loop) Spec() *Spec { return &l.spec }

// AlarmNames lists the alarms in index order.
func (l *Loop) AlarmNames() []string {
	out := make([]string, l.alarms.Len())
	for i := range out {
		out[i] = l.alarms.At(i).Name
	}
	return out
}

// AlarmIndex finds an alarm by name, -1 if absent.
func (l *Loop) AlarmIndex(name string) int { return l.alarms.Index(name) }

// ForceSafe writes every output's safe state. It is called at start-up before the loop
// thread runs, on shutdown, after a panic and by the watchdog when the loop stalls; writes
// to the hardware are serialized per device by internal/hardware.
func (l *Loop) ForceSafe(ctx context.Context) error {
	werrs := l.forceSafe(ctx)
	var errs []error
	if werrs[0] != nil {
		errs = append(errs, fmt.Errorf("actuator %q: %w", l.spec.Main.Name, werrs[0]))
	}
	if werrs[1] != nil {
		errs = append(errs, fmt.Errorf("actuator %q: %w", l.spec.Enable.Name, werrs[1]))
	}
	return errors.Join(errs...)
}

// forceSafe writes every output's safe state and returns the write errors by output
// index (0 main, 1 enable).
func (l *Loop) forceSafe(ctx context.Context) (errs [2]error) {
	errs[0] = l.spec.Main.write(ctx, l.spec.Main.Safe)
	if e := l.spec.Enable; e != nil {
		errs[1] = e.write(ctx, e.Safe)
	}
	l.safe.Store(true)
	l.outBits.Store(math.Float64bits(l.spec.Main.Safe))
	return errs
}

// Start forces the outputs safe and starts the loop thread. An actuator that cannot be
// driven safe (one that could not be opened, a refused write) does not keep the loop from
// starting: it is the actuator fault a cycle would find, found before the first one, so it
// latches actuator_fault, and the envelope holds the outputs safe from the first cycle,
// which writes the safe state again. The other loops and the API run meanwhile; ACK_ALARM
// re-arms once a write has succeeded.
func (l *Loop) Start() error {
	l.wallOffset = time.Now().UnixNano() - schedule.Now()
	if werrs := l.forceSafe(l.ctx); werrs[0] != nil || werrs[1] != nil {
		l.startFault(werrs)
	}
	l.running.Store(true)
	l.heartbeat.Store(schedule.Now())
	ready := make(chan error, 1)
	go l.run(ready)
	return <-ready
}

// startFault latches actuator_fault for the outputs that could not be driven safe at
// start. It runs before the loop thread exists, so it may touch the thread's state.
func (l *Loop) startFault(werrs [2]error) {
	now := schedule.Now()
	names := [2]string{l.spec.Main.Name}
	if l.spec.Enable != nil {
		names[1] = l.spec.Enable.Name
	}
	for i, err := range werrs {
		if err == nil {
			continue
		}
		l.actuatorError(i, err, now)
		if l.log != nil {
			l.log.Error("actuator could not be driven safe at start; actuator_fault latched and the loop held safe (it writes the safe state every cycle; ACK_ALARM once the actuator works)",
				zap.String("loop", l.spec.Name), zap.String("actuator", names[i]), zap.Error(err))
		}
	}
	l.evaluate(alarmActuator, true, now)
	m := l.alarms.Mask()
	l.lastMask = m
	l.latchedMask.Store(m)
	l.activeMask.Store(l.activeBits())
	l.signalPersist()
	l.publish(false)
}

// RequestStop asks the loop to stop without waiting: its next cycle writes the safe state
// and exits. Calling it on every loop first lets them all stop in parallel.
func (l *Loop) RequestStop() { l.stop.Store(true) }

// Stop forces the outputs safe at once from the caller's goroutine (a loop with a long
// period may be asleep for seconds), asks the loop to stop, and waits up to timeout for its
// thread, whose last cycle writes the safe state again. If the thread does not exit (a hung
// device), the outputs are forced safe once more and an error says so.
func (l *Loop) Stop(timeout time.Duration) error {
	l.stop.Store(true)
	if !l.running.Load() {
		return l.ForceSafe(context.Background())
	}
	first := l.ForceSafe(context.Background())
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-l.done:
		return first
	case <-t.C:
		err := l.ForceSafe(context.Background())
		return errors.Join(fmt.Errorf("loop %q did not stop within %s; outputs forced safe from outside", l.spec.Name, timeout), err)
	}
}

// Done is closed when the loop thread has exited.
func (l *Loop) Done() <-chan struct{} { return l.done }

func (l *Loop) run(ready chan<- error) {
	runtime.LockOSThread()
	// The thread may carry SCHED_FIFO: never hand it back to the scheduler's pool.
	defer close(l.done)
	defer l.running.Store(false)
	defer func() {
		if r := recover(); r != nil {
			safeErr := l.ForceSafe(context.Background())
			l.record(Event{Kind: EventPanic, Time: l.wall(schedule.Now())})
			if l.log != nil {
				l.log.Error("control loop panicked; outputs forced safe and the loop stopped (systemd's watchdog will restart the process)",
					zap.String("loop", l.spec.Name), zap.Any("panic", r), zap.Stack("stack"), zap.NamedError("safe_state_error", safeErr))
			}
		}
	}()
	if l.spec.Realtime {
		if err := schedule.Realtime(l.spec.RealtimePriority); err != nil && l.log != nil {
			l.log.Warn("real-time scheduling not available; the loop runs with normal priority and may see more lateness (grant CAP_SYS_NICE and CAP_IPC_LOCK, see the systemd unit)",
				zap.String("loop", l.spec.Name), zap.Error(err))
		} else if l.log != nil {
			l.log.Info("loop runs with SCHED_FIFO and locked memory", zap.String("loop", l.spec.Name), zap.Int("priority", l.spec.RealtimePriority))
		}
	}
	window := l.spec.PreciseWindow
	if runtime.GOMAXPROCS(0) < 2 {
		window = 0 // the raw leg would hold the only P and starve the collector
	}
	tk, err := schedule.NewTickerOptions(l.spec.Period, schedule.Options{Window: window, Yield: l.spec.PreciseWindowYield})
	ready <- err
	if err != nil {
		return
	}
	for !l.stop.Load() {
		tick := tk.Wait()
		if tick.Skipped > 0 {
			l.skipped.Add(tick.Skipped)
		}
		l.Cycle(tick)
	}
	if err := l.ForceSafe(context.Background()); err != nil && l.log != nil {
		l.log.Error("could not force outputs safe at shutdown", zap.String("loop", l.spec.Name), zap.Error(err))
	}
	l.publish(false)
}

func (l *Loop) wall(mono int64) int64 { return mono + l.wallOffset }

func (l *Loop) record(e Event) {
	e.Cycle = l.cycle
	l.events.Push(&e)
}

// Cycle runs one control cycle for tick. It is exported for the allocation test and the
// benchmark; the loop thread is its only caller in production.
func (l *Loop) Cycle(tick schedule.Tick) {
	start := tick.Woke
	// Skipped periods are time the process moved through without control: the integral and
	// the setpoint ramp must see it.
	dt := l.spec.Period.Seconds() * float64(1+tick.Skipped)
	l.cycle++
	sampled := l.spec.TraceEvery > 0 && l.cycle%uint64(l.spec.TraceEvery) == 0

	// Phase 1: read.
	readStart := schedule.Now()
	pv, err := l.spec.Input(l.ctx)
	tRead := schedule.Now()

	// Phase 2: validate.
	et := classify(err)
	if et == ErrNone {
		switch {
		case math.IsNaN(pv) || math.IsInf(pv, 0):
			et = ErrInvalid
		case pv < l.spec.ValidMin || pv > l.spec.ValidMax:
			et = ErrOutOfRange
		case tRead-readStart > int64(l.spec.StaleAfter):
			et = ErrStale
		}
	}
	periods := 1 + int(tick.Skipped) //nolint:gosec // a handful of skipped periods
	if et == ErrNone && l.stuck.frozen(pv, periods) {
		et = ErrStale
	}
	valid := et == ErrNone
	if valid {
		l.pvAt.Store(tRead)
	}
	if !valid {
		pv = math.NaN()
		if !l.faulted {
			l.record(Event{Kind: EventSensorFault, Time: l.wall(tRead), ErrType: et, Value: pv})
		}
	}
	l.faulted = !valid
	l.valid = valid
	l.evaluate(alarmSensor, !valid, tRead)
	l.evaluatePlausibility(pv, valid, periods, tRead)
	l.evaluateProcessAlarms(pv, valid, tRead)
	var ilMask uint64
	l.ilOK, ilMask = l.evaluateInterlocks(tRead)
	// Commands apply after validation, so an ACK_ALARM sees this cycle's conditions and a
	// new setpoint or mode takes effect in this cycle's output; one that would energize an
	// output while it is held safe is refused now, never kept for later.
	l.drainCommands()
	tValidate := schedule.Now()

	// Phase 3: compute, through the safety envelope.
	out, forced := l.envelope(pv, dt)
	tCompute := schedule.Now()

	// Phase 4: write.
	writeOK := true
	// A write to an actuator that could not be opened fails at once while internal/hardware
	// retries the open; a restart would not bring it back sooner, so such a failure (held
	// safe by the latched actuator_fault) does not stop the heartbeat that feeds systemd's
	// watchdog. Any other failed write does.
	stalled := false
	en := 0.0
	if e := l.spec.Enable; e != nil {
		en = e.Safe
		if !forced && l.mode != pid.Off && out > 0 {
			en = 1
		}
	}
	// Plausibility watches what reached the actuators: in dry run nothing did.
	l.lastSat = !forced && !l.dryRun && l.mode != pid.Off && l.saturated(out)
	if l.dryRun {
		// The actuators keep the safe state that Start (or the last real cycle) wrote:
		// what this cycle would write is only counted and, when it changes, recorded.
		l.dryWrite(0, &l.spec.Main, out, tCompute)
		if e := l.spec.Enable; e != nil {
			l.dryWrite(1, e, en, tCompute)
		}
	} else {
		if err := l.spec.Main.write(l.ctx, out); err != nil {
			writeOK = false
			stalled = stalled || !errors.Is(err, hardware.ErrNotOpen)
			l.actuatorError(0, err, tCompute)
		} else {
			l.actFaulted[0] = false
		}
		if e := l.spec.Enable; e != nil {
			if err := e.write(l.ctx, en); err != nil {
				writeOK = false
				stalled = stalled || !errors.Is(err, hardware.ErrNotOpen)
				l.actuatorError(1, err, tCompute)
			} else {
				l.actFaulted[1] = false
			}
		}
	}
	l.evaluate(alarmActuator, !writeOK, tCompute)
	if !writeOK && !forced {
		// A write failed half-way: try the safe state now rather than next cycle. Errors are
		// already counted; the latched actuator_fault keeps the outputs safe from here on.
		_ = l.spec.Main.write(l.ctx, l.spec.Main.Safe)
		if e := l.spec.Enable; e != nil {
			_ = e.write(l.ctx, e.Safe)
		}
		forced, out = true, l.spec.Main.Safe
		l.holdSafe()
		l.lastSat = false
	}
	end := schedule.Now()

	if forced != l.wasSafe {
		l.record(Event{Kind: EventSafe, Time: l.wall(end), Holds: forced})
		l.wasSafe = forced
	}
	// Published output and safe state describe the actuators: in dry run they hold the
	// safe state whatever the controller computed.
	pubOut, pubSafe, dryOut := out, forced, math.NaN()
	if l.dryRun {
		pubOut, pubSafe, dryOut = l.spec.Main.Safe, true, out
	}
	l.pvBits.Store(math.Float64bits(pv))
	l.spBits.Store(math.Float64bits(l.target))
	l.outBits.Store(math.Float64bits(pubOut))
	l.safe.Store(pubSafe)
	l.activeMask.Store(l.activeBits())
	if m := l.alarms.Mask(); m != l.lastMask {
		l.lastMask = m
		l.latchedMask.Store(m)
		l.signalPersist()
	}
	if !stalled {
		l.heartbeat.Store(end)
	}
	l.publishStatus(pv, pubOut, dryOut, valid, pubSafe, ilMask)
	l.sendReplies()

	dur := end - start
	if end > tick.Deadline+int64(l.spec.Period) {
		l.overruns.Add(1)
		l.record(Event{Kind: EventOverrun, Time: l.wall(end), Value: float64(dur) / 1e9})
	} else {
		l.cyclesOK.Add(1)
	}
	rt := int64(-1)
	if tick.Kernel != 0 {
		rt = tick.Woke - tick.Kernel
	}
	l.samples.Push(&Sample{Duration: dur, Lateness: tick.Woke - tick.Deadline, Runtime: rt})
	if sampled {
		l.spans.Push(&CycleSpan{
			Start: l.wall(start), Read: l.wall(tRead), Validate: l.wall(tValidate),
			Compute: l.wall(tCompute), Write: l.wall(end), Cycle: l.cycle,
			PV: pv, Setpoint: l.sp, Output: out, Safe: forced, ErrType: et,
		})
	}
}

// envelope is the loop's one safety function: every value the loop writes to its actuators
// in a cycle comes out of it, whatever the mode, the commands of this cycle or the state
// restored at start. Safe state while the reading is invalid, an alarm is latched, an
// interlock does not hold or the loop stops; otherwise the mode's output, kept within the
// configured output limits (which the operator's output_max can only narrow), with the
// setpoint ramped no faster than the configured rate. forced reports the held safe state.
func (l *Loop) envelope(pv, dt float64) (out float64, forced bool) {
	if l.held() {
		l.holdSafe()
		return l.spec.Main.Safe, true
	}
	l.rampSetpoint(pv, dt)
	switch l.mode {
	case pid.Off:
		l.trackSafe()
		return l.spec.Main.Safe, false
	case pid.Manual:
		out = l.limit(l.manual)
		if l.spec.PID != nil {
			l.spec.PID.SetManual(out)
			l.spec.PID.Update(l.sp, pv, dt)
		}
		return out, false
	}
	var u float64
	switch l.spec.Kind {
	case PID:
		u = l.spec.PID.Update(l.sp, pv, dt)
	case OnOff:
		u = l.spec.OnOff.Update(l.sp, pv) * l.speed
	}
	return l.limit(u), false
}

// held reports whether the outputs must be safe now.
func (l *Loop) held() bool {
	return !l.valid || l.alarms.AnyLatched() || !l.ilOK || l.stop.Load()
}

// limit keeps u within the configured output limits narrowed by the operator's.
func (l *Loop) limit(u float64) float64 {
	if math.IsNaN(u) {
		return l.spec.Main.Safe
	}
	return clamp(u, l.outMin, l.effectiveMax())
}

func (l *Loop) effectiveMax() float64 {
	return max(l.outMin, min(l.outMax, l.outputMax))
}

// saturated reports whether out is as much as the loop can give: a PID at its upper limit,
// a two-position controller switched on.
func (l *Loop) saturated(out float64) bool {
	if l.spec.Kind == OnOff {
		return out > 0
	}
	return out > 0 && out >= l.effectiveMax()-1e-9
}

// holdSafe is the controller's side of the safe state: the PID tracks the safe output, a
// manual output returns to it and the ramp restarts from the measurement, so that re-arming
// (ACK_ALARM, an interlock that holds again) never jumps to what was asked before the trip.
func (l *Loop) holdSafe() {
	l.trackSafe()
	l.sp = math.NaN()
	if l.manual != l.spec.Main.Safe {
		l.manual = l.spec.Main.Safe
		l.manualBits.Store(math.Float64bits(l.manual))
		l.signalPersist()
	}
}

func (l *Loop) trackSafe() {
	if l.spec.PID != nil {
		l.spec.PID.Track(l.spec.Main.Safe)
	}
	if l.spec.OnOff != nil {
		l.spec.OnOff.Reset()
	}
}

// rampSetpoint moves the working setpoint towards the target at MaxRate, starting from the
// measurement so that a cold start ramps from where the process is.
func (l *Loop) rampSetpoint(pv, dt float64) {
	rate := l.rampRate()
	if math.IsNaN(l.sp) {
		l.sp = pv
		if rate <= 0 {
			l.sp = l.target
		}
	}
	if rate <= 0 {
		l.sp = l.target
		return
	}
	step := rate * dt
	switch {
	case l.target > l.sp+step:
		l.sp += step
	case l.target < l.sp-step:
		l.sp -= step
	default:
		l.sp = l.target
	}
}

// rampRate is the operator's ramp rate bounded by the configured one (0 = step).
func (l *Loop) rampRate() float64 {
	c, o := l.spec.MaxRate, l.maxRate
	switch {
	case o <= 0:
		return c
	case c <= 0:
		return o
	}
	return min(c, o)
}

// stuckCheck finds a frozen sensor: readings that stay within tol of each other for more
// than max periods (max 0 = off). Periods, not cycles: skipped periods count too.
type stuckCheck struct {
	max int
	tol float64
	ref float64
	n   int
}

func (s *stuckCheck) frozen(v float64, periods int) bool {
	if s.max <= 0 {
		return false
	}
	if s.n > 0 && math.Abs(v-s.ref) <= s.tol {
		s.n += periods
	} else {
		s.ref, s.n = v, 1
	}
	return s.n > s.max
}

// evaluatePlausibility checks that a saturated output moves the process value: after
// satMax cycles at the limit the value must have moved MinResponse in Direction.
func (l *Loop) evaluatePlausibility(pv float64, valid bool, periods int, now int64) {
	cond := l.alarms.At(alarmPlausibility).Active()
	switch {
	case !valid:
		// Unknown without a reading; the sensor fault holds the outputs safe.
	case l.satMax <= 0 || !l.lastSat:
		l.satCycles, cond = 0, false
	default:
		if l.satCycles == 0 {
			l.satRef = pv
		}
		l.satCycles += periods
		if l.satCycles > l.satMax {
			cond = (pv-l.satRef)*l.spec.Direction < l.spec.MinResponse
			l.satCycles = 0
		}
	}
	l.evaluate(alarmPlausibility, cond, now)
}

func (l *Loop) evaluate(i int, cond bool, now int64) {
	if l.alarms.Evaluate(i, cond) == alarm.Raised {
		l.record(Event{Kind: EventAlarm, Time: l.wall(now), Alarm: int16(i), Transition: uint8(alarm.Raised)})
	}
}

func (l *Loop) evaluateProcessAlarms(pv float64, valid bool, now int64) {
	for i := range l.spec.Alarms {
		a := &l.spec.Alarms[i]
		idx := firstProcessAlarm + i
		if !valid {
			// Without a reading the condition is unknown: keep its last state; the sensor
			// fault alarm already holds the outputs safe.
			l.evaluate(idx, l.alarms.At(idx).Active(), now)
			continue
		}
		var cond bool
		switch a.Kind {
		case AlarmHigh:
			cond = pv > a.Limit
		case AlarmLow:
			cond = pv < a.Limit
		case AlarmDeviation:
			cond = !math.IsNaN(l.sp) && math.Abs(pv-l.sp) > a.Limit
		}
		if cond {
			l.alarmDelay[i]++
			cond = l.alarmDelay[i] > l.alarmDelayMax[i]
		} else {
			l.alarmDelay[i] = 0
		}
		l.evaluate(idx, cond, now)
	}
}

func (l *Loop) evaluateInterlocks(now int64) (bool, uint64) {
	ok := true
	var mask uint64
	for i := range l.spec.Interlocks {
		il := &l.spec.Interlocks[i]
		holds := false
		// A reading older than the interlock's own bound does not hold: a slow read, a
		// frozen sensor, or a peer loop whose last valid value is too old.
		switch {
		case il.Level != nil:
			t0 := schedule.Now()
			lvl, err := il.Level(l.ctx)
			holds = err == nil && lvl == il.Want && schedule.Now()-t0 <= int64(il.StaleAfter)
		case il.Value != nil:
			t0 := schedule.Now()
			v, err := il.Value(l.ctx)
			holds = err == nil && schedule.Now()-t0 <= int64(il.StaleAfter) &&
				!l.ilStuck[i].frozen(v, 1) && within(v, il.Below, il.Above)
		case il.PeerPV != nil:
			v, at := il.PeerPV()
			holds = now-at <= int64(il.StaleAfter) && within(v, il.Below, il.Above)
		}
		if holds != l.ilHolds[i] || l.cycle == 1 {
			l.record(Event{Kind: EventInterlock, Time: l.wall(now), Index: int16(i), Holds: holds})
		}
		l.ilHolds[i] = holds
		if a := l.ilAlarm[i]; a >= 0 {
			l.evaluate(a, !holds, now)
		}
		if holds {
			mask |= 1 << uint(i)
		} else {
			ok = false
		}
	}
	return ok, mask
}

// within reports whether v is a number below `below` and above `above` (NaN = open side).
func within(v, below, above float64) bool {
	if math.IsNaN(v) {
		return false
	}
	if !math.IsNaN(below) && !(v < below) {
		return false
	}
	if !math.IsNaN(above) && !(v > above) {
		return false
	}
	return true
}

// actuatorError counts a failed write of output i and records an event for the first
// failure of an episode: an actuator that stays unwritable (one that could not be opened
// is held safe and written every cycle) would otherwise log every cycle.
func (l *Loop) actuatorError(i int, err error, now int64) {
	et := classify(err)
	l.actErrs[i][et].Add(1)
	if !l.actFaulted[i] {
		l.record(Event{Kind: EventActuatorError, Time: l.wall(now), Index: int16(i), ErrType: et})
	}
	l.actFaulted[i] = true
}

func (l *Loop) activeBits() uint64 {
	var m uint64
	for i := 0; i < l.alarms.Len(); i++ {
		if l.alarms.At(i).Active() {
			m |= 1 << uint(i)
		}
	}
	return m
}

// dryWrite counts a write that dry run holds back. It records the value (as an event that
// becomes a log record) when it moved by 1 % of full scale or a pin flipped since the last
// record, at most once a second per output, so that a PID's trim of every cycle does not
// flood the log while a heater or motor that would switch on is always seen.
func (l *Loop) dryWrite(i int, o *Output, v float64, now int64) {
	if o.Level != nil {
		v = boolValue(v >= 0.5)
	}
	l.dryWrites[i].Add(1)
	last := l.dryLast[i]
	if !math.IsNaN(last) && (math.Abs(v-last) < 0.01 || now-l.dryLastAt[i] < int64(time.Second)) {
		return
	}
	l.dryLast[i], l.dryLastAt[i] = v, now
	l.record(Event{Kind: EventDryRunWrite, Time: l.wall(now), Index: int16(i), Value: v})
}

func boolValue(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

func (l *Loop) signalPersist() {
	if l.persist == nil {
		return
	}
	select {
	case l.persist <- struct{}{}:
	default: // a save is already pending; it will read the newest mask
	}
}

func (l *Loop) publishStatus(pv, out, dryOut float64, valid, forced bool, ilMask uint64) {
	if !l.statusMu.TryLock() {
		l.publishMissed.Add(1)
		return
	}
	l.status = Snapshot{
		Cycle: l.cycle, PV: pv, Setpoint: l.sp, Target: l.target, Output: out, Mode: l.mode,
		Safe: forced, Valid: valid, Speed: l.speed, OutputMax: l.effectiveMax(),
		Active: l.activeBits(), Latched: l.alarms.Mask(), Interlocks: ilMask, Running: true,
		DryRun: l.dryRun, DryRunOutput: dryOut,
	}
	l.statusMu.Unlock()
}

// publish sets the snapshot from outside the cycle (before start, after stop), when the
// loop thread is not cycling, so waiting for the lock costs no cycle.
func (l *Loop) publish(running bool) {
	l.statusMu.Lock()
	defer l.statusMu.Unlock()
	l.status = Snapshot{
		Cycle: l.cycle, PV: math.NaN(), Setpoint: l.sp, Target: l.target, Output: l.spec.Main.Safe,
		Mode: l.mode, Safe: true, Speed: l.speed, OutputMax: l.effectiveMax(),
		Latched: l.alarms.Mask(), Running: running, DryRun: l.dryRunA.Load(), DryRunOutput: math.NaN(),
	}
}

// Status returns the latest snapshot.
func (l *Loop) Status() Snapshot {
	l.statusMu.Lock()
	defer l.statusMu.Unlock()
	s := l.status
	s.Running = l.running.Load()
	return s
}

// PV is the last process value (NaN when invalid), readable from any goroutine.
func (l *Loop) PV() float64 { return math.Float64frombits(l.pvBits.Load()) }

// PVAt is the monotonic time of the last valid reading (0 before the first).
func (l *Loop) PVAt() int64 { return l.pvAt.Load() }

// Setpoint is the target setpoint.
func (l *Loop) Setpoint() float64 { return math.Float64frombits(l.spBits.Load()) }

// Output is the last value written to the main actuator.
func (l *Loop) Output() float64 { return math.Float64frombits(l.outBits.Load()) }

// Safe reports whether the outputs are forced safe.
func (l *Loop) Safe() bool { return l.safe.Load() }

// Mode is the operating mode.
func (l *Loop) Mode() pid.Mode { return pid.Mode(l.modeA.Load()) }

// ActiveMask and LatchedMask are the alarm bits in AlarmNames order.
func (l *Loop) ActiveMask() uint64 { return l.activeMask.Load() }

// LatchedMask is the latched alarm bits.
func (l *Loop) LatchedMask() uint64 { return l.latchedMask.Load() }

// LatchedNames resolves LatchedMask to names (for the latch file).
func (l *Loop) LatchedNames() []string { return l.alarms.Names(l.latchedMask.Load()) }

// Heartbeat is the monotonic time of the last healthy cycle.
func (l *Loop) Heartbeat() int64 { return l.heartbeat.Load() }

// Running reports whether the loop thread is alive.
func (l *Loop) Running() bool { return l.running.Load() }

// Counters returns cycles by outcome.
func (l *Loop) Counters() (ok, overrun, skipped uint64) {
	return l.cyclesOK.Load(), l.overruns.Load(), l.skipped.Load()
}

// DryRun reports whether the loop is in dry run (writes no actuator).
func (l *Loop) DryRun() bool { return l.dryRunA.Load() }

// DryRunWrites is how many writes of output i (0 main, 1 enable) dry run held back.
func (l *Loop) DryRunWrites(i int) uint64 { return l.dryWrites[i].Load() }

// ActuatorErrors returns the write errors of output i (0 main, 1 enable) by type.
func (l *Loop) ActuatorErrors(i int, t ErrType) uint64 { return l.actErrs[i][t].Load() }

// Samples, Events and Spans are the rings the drainer empties.
func (l *Loop) Samples() *ring.Ring[Sample] { return l.samples }

// Events is the event ring.
func (l *Loop) Events() *ring.Ring[Event] { return l.events }

// Spans is the sampled-cycle ring.
func (l *Loop) Spans() *ring.Ring[CycleSpan] { return l.spans }

func clamp(v, lo, hi float64) float64 {
	if v < lo {
		return lo
	}
	if v > hi {
		return hi
	}
	return v
}
