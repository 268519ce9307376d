// Package schedule wakes a control loop at absolute deadlines on the monotonic clock.
//
// time.Sleep and time.Ticker go through the Go timer heap and netpoller, whose wake-ups are
// quantized to about 1 ms on Linux and drift with GC pauses; clock_nanosleep with
// TIMER_ABSTIME sleeps the calling OS thread until an absolute instant, so lateness does not
// accumulate from one period to the next. The caller must hold its OS thread
// (runtime.LockOSThread) for the real-time priority set by Realtime to stay with the loop.
package schedule

import (
	"errors"
	"fmt"
	"runtime"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Now reads CLOCK_MONOTONIC in nanoseconds, the clock the deadlines are set on.
func Now() int64 {
	var ts unix.Timespec
	// CLOCK_MONOTONIC cannot fail with a valid pointer; the zero value is harmless if it did.
	_ = unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts)
	return ts.Nano()
}

// DefaultPreciseWindow is how long before a deadline SleepUntil stops sleeping the
// runtime's way and finishes with a raw clock_nanosleep that keeps the goroutine's P.
//
// Why: a normal syscall hands the P back to the scheduler; when the sleep ends, the thread
// must get a P again, and on a busy process (the collector next to the loop) that can take
// until the next preemption, milliseconds. The raw final leg keeps the P, so the wake-up is
// the kernel's alone. The cost: while a thread holds a P in a raw syscall, that P runs
// nothing else and the runtime cannot stop the world, so a GC pause may wait up to this
// long, and a 1 kHz loop holds one P almost all the time. With GOMAXPROCS 1 the raw leg
// would starve every other goroutine, so NewTicker turns it off there.
const DefaultPreciseWindow = 2 * time.Millisecond

// SleepUntil sleeps the calling thread until the monotonic instant deadline (ns) with the
// default precise window; see SleepUntilWindow.
func SleepUntil(deadline int64) { SleepUntilWindow(deadline, DefaultPreciseWindow) }

// SleepUntilWindow sleeps the calling thread until the monotonic instant deadline (ns): the
// runtime's way until window before it, then with a raw syscall (window 0: all the runtime's
// way). Both resume after signals (Go's runtime sends SIGURG for preemption, which
// interrupts the sleep). It does not yield before the raw leg, so a preemption request the
// runtime makes while the thread sleeps is served at the wake-up (see Options.Yield).
func SleepUntilWindow(deadline int64, window time.Duration) {
	sleepCoarse(deadline, window)
	if window > 0 {
		_ = sleepRaw(deadline)
	}
}

// sleepCoarse sleeps in a normal syscall, which lets the runtime take the P, until window
// before deadline.
func sleepCoarse(deadline int64, window time.Duration) {
	coarse := deadline - int64(window)
	if coarse <= Now() {
		return
	}
	ts := unix.NsecToTimespec(coarse)
	var err error = unix.EINTR
	for err == unix.EINTR {
		err = unix.ClockNanosleep(unix.CLOCK_MONOTONIC, unix.TIMER_ABSTIME, &ts, nil)
	}
}

// sleepRaw sleeps until deadline in a raw syscall, which keeps the P, and returns when the
// kernel woke the thread: the clock is read with a raw syscall before any function call,
// the place where the runtime serves a preemption request, so that the difference from a
// later Now() is the time the runtime took after the kernel's wake-up.
func sleepRaw(deadline int64) int64 {
	ts := unix.NsecToTimespec(deadline)
	var woke unix.Timespec
	for {
		_, _, errno := unix.RawSyscall6(unix.SYS_CLOCK_NANOSLEEP, uintptr(unix.CLOCK_MONOTONIC),
			uintptr(unix.TIMER_ABSTIME), uintptr(unsafe.Pointer(&ts)), 0, 0, 0)
		if errno != unix.EINTR {
			// CLOCK_MONOTONIC cannot fail with a valid pointer; as in Now, a zero is harmless.
			_, _, _ = unix.RawSyscall(unix.SYS_CLOCK_GETTIME, uintptr(unix.CLOCK_MONOTONIC), uintptr(unsafe.Pointer(&woke)), 0)
			return woke.Nano()
		}
	}
}

// yieldAfter is how long after its last pass through the scheduler a goroutine may still
// wake without a preemption request pending: the runtime's sysmon asks a goroutine to yield
// once its P has run 10 ms (forcePreemptNS) without one, and syscalls that return on the
// fast path do not count. A margin below 10 ms covers sysmon noticing late.
const yieldAfter = 9 * time.Millisecond

// preciseSleep is a Ticker's sleep with a precise window. With yield, it passes through the
// scheduler (runtime.Gosched) at the start of the window whenever the raw leg would
// otherwise end yieldAfter or more after the last pass.
//
// Why: a goroutine locked to its thread that is preempted cannot be resumed by its own
// thread; another runtime thread must pick it from the run queue and hand its P back
// (stoplockedm/startlockedm). Those threads run at normal priority, so under load the hand
// off waits for a CPU: a priority inversion. The loop's goroutine never reschedules on its
// own (its syscalls return on the fast path), so sysmon keeps asking it to; a request made
// while it holds the P in the raw leg is served at the first function call after the
// wake-up, and the inversion lands right at the deadline. A voluntary yield at the start of
// the window moves that hand-off to where the window's slack absorbs it. The cost is one
// hand-off per yield, through the same normal-priority threads: worth it when they get a
// CPU within the window, a loss when other work saturates the CPUs (bench/looptiming).
type preciseSleep struct {
	window    time.Duration
	yield     bool
	lastYield int64
	// The clock, the two legs and the yield; replaced in tests.
	now          func() int64
	coarse       func(deadline int64)
	raw          func(deadline int64) int64
	yieldNow     func()
	yields, legs uint64
}

func newPreciseSleep(o Options) *preciseSleep {
	return &preciseSleep{
		window: o.Window, yield: o.Yield,
		now:    Now,
		coarse: func(d int64) { sleepCoarse(d, o.Window) },
		raw:    sleepRaw, yieldNow: runtime.Gosched,
	}
}

// sleep returns when the kernel woke the thread from the raw leg (0 without one).
func (p *preciseSleep) sleep(deadline int64) int64 {
	p.coarse(deadline)
	if p.window <= 0 {
		return 0
	}
	if p.yield && deadline-p.lastYield >= int64(yieldAfter) {
		p.yieldNow()
		p.lastYield = p.now()
		p.yields++
	}
	p.legs++
	return p.raw(deadline)
}

// Ticker produces absolute deadlines every period. It is not safe for concurrent use: one
// loop goroutine owns it.
type Ticker struct {
	period   int64
	next     int64
	sleep    func(int64) int64
	now      func() int64
	skipped  uint64
	overruns uint64
}

// Tick is what one wake-up reports.
type Tick struct {
	// Deadline is the instant (monotonic ns) the cycle was due.
	Deadline int64
	// Woke is when the thread actually ran again.
	Woke int64
	// Kernel is when the kernel woke the thread from the raw leg of the sleep, before the
	// Go runtime could run anything else on it; 0 without a raw leg (no window, or no sleep
	// because the deadline had passed). Woke minus Kernel is the runtime's share of the
	// lateness (a preemption served at the wake-up); Kernel minus Deadline is the kernel's,
	// or how late the thread got back to the raw leg (a P found late after the coarse leg).
	Kernel int64
	// Skipped is how many whole periods were missed before this deadline because the
	// previous cycle overran; they are not made up, the schedule moves on.
	Skipped uint64
}

// Lateness is the wake-up minus the deadline.
func (t Tick) Lateness() time.Duration { return time.Duration(t.Woke - t.Deadline) }

// NewTicker starts a schedule whose first deadline is one period from now, sleeping with
// DefaultPreciseWindow (none when GOMAXPROCS is 1).
func NewTicker(period time.Duration) (*Ticker, error) {
	window := DefaultPreciseWindow
	if runtime.GOMAXPROCS(0) < 2 {
		window = 0
	}
	return NewTickerWindow(period, window)
}

// NewTickerWindow is NewTicker with an explicit precise window (0 = no raw final leg).
func NewTickerWindow(period, window time.Duration) (*Ticker, error) {
	return NewTickerOptions(period, Options{Window: window})
}

// Options are a Ticker's sleep settings.
type Options struct {
	// Window is the precise window (0 = no raw final leg).
	Window time.Duration
	// Yield passes through the scheduler at the start of the window when a preemption
	// request could otherwise be pending at the wake-up (see preciseSleep). Off, the
	// ticker sleeps as SleepUntilWindow does.
	Yield bool
}

// NewTickerOptions is NewTicker with explicit sleep settings.
func NewTickerOptions(period time.Duration, o Options) (*Ticker, error) {
	if o.Window < 0 {
		return nil, fmt.Errorf("precise window must not be negative, got %v", o.Window)
	}
	return newTicker(period, Now, newPreciseSleep(o).sleep)
}

func newTicker(period time.Duration, now func() int64, sleep func(int64) int64) (*Ticker, error) {
	if period <= 0 {
		return nil, fmt.Errorf("period must be positive, got %v", period)
	}
	t := &Ticker{period: int64(period), now: now, sleep: sleep}
	t.next = now() + t.period
	return t, nil
}

// Wait sleeps until the next deadline and returns it. If the caller has already passed one
// or more later deadlines (an overrun), those periods are skipped and counted, and Wait
// returns at once for the most recent deadline that has passed, so that the loop runs
// again immediately but keeps its phase.
func (t *Ticker) Wait() Tick {
	now := t.now()
	var skipped uint64
	if now >= t.next+t.period {
		missed := (now - t.next) / t.period
		skipped = uint64(missed)
		t.next += missed * t.period
		t.skipped += skipped
		t.overruns++
	}
	deadline := t.next
	var kernel int64
	if now < deadline {
		kernel = t.sleep(deadline)
		now = t.now()
	}
	t.next += t.period
	return Tick{Deadline: deadline, Woke: now, Kernel: kernel, Skipped: skipped}
}

// Skipped returns the total number of periods skipped so far.
func (t *Ticker) Skipped() uint64 { return t.skipped }

// Period returns the schedule's period.
func (t *Ticker) Period() time.Duration { return time.Duration(t.period) }

// ErrNotPermitted is returned by Realtime when the process lacks CAP_SYS_NICE (or an
// RLIMIT_RTPRIO) for SCHED_FIFO, or CAP_IPC_LOCK (or RLIMIT_MEMLOCK) for mlockall.
var ErrNotPermitted = errors.New("real-time scheduling not permitted")

// Realtime gives the calling OS thread SCHED_FIFO at priority (1..99) and locks the
// process's memory so that a page fault cannot stall a cycle. Both are attempted; the error
// reports each that failed, wrapping ErrNotPermitted when it was a permission problem.
func Realtime(priority int) error {
	var errs []error
	if err := FIFO(priority); err != nil {
		errs = append(errs, err)
	}
	if err := unix.Mlockall(unix.MCL_CURRENT | unix.MCL_FUTURE); err != nil {
		errs = append(errs, wrapPerm("mlockall", err))
	}
	return errors.Join(errs...)
}

// FIFO gives the calling OS thread SCHED_FIFO at priority (1..99), without locking memory.
func FIFO(priority int) error {
	attr := unix.SchedAttr{
		Size:     unix.SizeofSchedAttr,
		Policy:   unix.SCHED_FIFO,
		Priority: uint32(priority),
	}
	if err := unix.SchedSetAttr(0, &attr, 0); err != nil {
		return wrapPerm("sched_setattr(SCHED_FIFO)", err)
	}
	return nil
}

func wrapPerm(what string, err error) error {
	if errors.Is(err, unix.EPERM) || errors.Is(err, unix.ENOMEM) {
		return fmt.Errorf("%s: %w: %w", what, ErrNotPermitted, err)
	}
	return fmt.Errorf("%s: %w", what, err)
}
