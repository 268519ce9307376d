package schedule

import (
	"errors"
	"runtime"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// fakeClock advances only when the ticker sleeps or the test says so.
type fakeClock struct{ t int64 }

func (c *fakeClock) now() int64          { return c.t }
func (c *fakeClock) sleep(d int64) int64 { c.t = d; return d }
func (c *fakeClock) work(d int64)        { c.t += d }
func ms(n int64) int64                   { return n * int64(time.Millisecond) }

func TestDeadlinesAreAbsolute(t *testing.T) {
	c := &fakeClock{t: 1000}
	tk, err := newTicker(10*time.Millisecond, c.now, c.sleep)
	require.NoError(t, err)
	for i := int64(1); i <= 5; i++ {
		c.work(ms(3)) // work takes 3 ms; the next deadline must not move by it
		tick := tk.Wait()
		assert.Equal(t, 1000+i*ms(10), tick.Deadline)
		assert.Zero(t, tick.Lateness())
		assert.Zero(t, tick.Skipped)
	}
}

func TestOverrunSkipsMissedPeriods(t *testing.T) {
	c := &fakeClock{}
	tk, err := newTicker(10*time.Millisecond, c.now, c.sleep)
	require.NoError(t, err)
	tk.Wait()      // deadline 10 ms
	c.work(ms(35)) // the cycle overran: now 45 ms, deadlines 20, 30 and 40 passed
	tick := tk.Wait()
	assert.Equal(t, uint64(2), tick.Skipped, "20 and 30 are skipped, 40 runs late")
	assert.Equal(t, ms(40), tick.Deadline)
	assert.Equal(t, 5*time.Millisecond, tick.Lateness())
	tick = tk.Wait()
	assert.Equal(t, ms(50), tick.Deadline, "phase is kept")
	assert.Equal(t, uint64(2), tk.Skipped())
}

func TestLateButNotOverrun(t *testing.T) {
	c := &fakeClock{}
	tk, err := newTicker(10*time.Millisecond, c.now, c.sleep)
	require.NoError(t, err)
	c.work(ms(15)) // past the first deadline but not the second
	tick := tk.Wait()
	assert.Zero(t, tick.Skipped)
	assert.Equal(t, 5*time.Millisecond, tick.Lateness())
}

func TestRejectsBadPeriod(t *testing.T) {
	_, err := NewTicker(0)
	require.ErrorContains(t, err, "period must be positive")
	_, err = NewTickerWindow(time.Millisecond, -time.Millisecond)
	require.ErrorContains(t, err, "precise window must not be negative")
}

func TestWindowlessTickerWakesAfterDeadline(t *testing.T) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	tk, err := NewTickerWindow(2*time.Millisecond, 0)
	require.NoError(t, err)
	for range 10 {
		tick := tk.Wait()
		require.GreaterOrEqual(t, tick.Woke, tick.Deadline)
		require.Zero(t, tick.Kernel, "no raw leg, no kernel wake-up of its own")
	}
}

func TestRealClockWakesAfterDeadline(t *testing.T) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	tk, err := NewTicker(2 * time.Millisecond)
	require.NoError(t, err)
	for range 20 {
		tick := tk.Wait()
		require.GreaterOrEqual(t, tick.Woke, tick.Deadline, "never wakes early")
		if tick.Kernel != 0 { // 0 when the deadline had passed before the sleep
			require.GreaterOrEqual(t, tick.Kernel, tick.Deadline, "the kernel wakes the raw leg at or after the deadline")
			require.LessOrEqual(t, tick.Kernel, tick.Woke, "and before the runtime runs the loop again")
		}
	}
	// The machine is shared and loaded; only a gross error (e.g. relative sleeps piling up)
	// would push 20 periods of 2 ms past a second.
	assert.Less(t, time.Duration(Now()-tk.next), time.Second)
}

func TestWaitDoesNotAllocate(t *testing.T) {
	c := &fakeClock{}
	tk, err := newTicker(time.Millisecond, c.now, c.sleep)
	require.NoError(t, err)
	assert.Zero(t, testing.AllocsPerRun(1000, func() { tk.Wait() }))
	assert.Zero(t, testing.AllocsPerRun(100, func() { SleepUntil(Now()) }))
	assert.Zero(t, testing.AllocsPerRun(100, func() { SleepUntilWindow(Now()+int64(10*time.Microsecond), 0) }))
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	// The real sleep with its yield, at a period that yields every cycle.
	rt, err := NewTickerOptions(10*time.Millisecond, Options{Window: time.Millisecond, Yield: true})
	require.NoError(t, err)
	assert.Zero(t, testing.AllocsPerRun(20, func() { rt.Wait() }))
}

// A ticker yields before the raw leg whenever that leg would end 9 ms or more after its
// last yield: every cycle at a 50 ms period, about every ninth at 1 ms, never with the
// yield off or without a window.
func TestYieldsBeforeThePreemptionSysmonWouldAsk(t *testing.T) {
	for _, tc := range []struct {
		name   string
		period time.Duration
		o      Options
		yields uint64
	}{
		{"50ms", 50 * time.Millisecond, Options{Window: 2 * time.Millisecond, Yield: true}, 90},
		{"1ms", time.Millisecond, Options{Window: 2 * time.Millisecond, Yield: true}, 10},
		{"off", 50 * time.Millisecond, Options{Window: 2 * time.Millisecond}, 0},
		{"no window", 50 * time.Millisecond, Options{Yield: true}, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := &fakeClock{t: ms(1000)}
			p := newPreciseSleep(tc.o)
			p.now = c.now
			p.coarse = func(d int64) {
				if w := d - int64(tc.o.Window); w > c.t {
					c.t = w
				}
			}
			p.raw = c.sleep
			p.yieldNow = func() { c.work(int64(20 * time.Microsecond)) }
			tk, err := newTicker(tc.period, c.now, p.sleep)
			require.NoError(t, err)
			for range 90 {
				tick := tk.Wait()
				require.Equal(t, tick.Deadline, tick.Woke, "the raw leg ends at the deadline")
				c.work(int64(100 * time.Microsecond))
			}
			assert.Equal(t, tc.yields, p.yields)
			if tc.o.Window > 0 {
				assert.Equal(t, uint64(90), p.legs, "every sleep ends with the raw leg")
			}
		})
	}
}

func TestRealtimeReportsPermission(t *testing.T) {
	runtime.LockOSThread()
	// The thread may end up SCHED_FIFO if the test runs as root; never hand it back.
	err := Realtime(10)
	if err != nil {
		assert.True(t, errors.Is(err, ErrNotPermitted), "unexpected error %v", err)
	}
}
