package periph

import (
	"errors"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// stepClock is a switchClock whose time moves only by Advance, which fires the timers
// that are due; nothing fires on its own.
type stepClock struct {
	mu     sync.Mutex
	now    time.Time
	timers []*stepTimer
	fired  int
}

type stepTimer struct {
	at time.Time
	c  chan time.Time
}

func newStepClock() *stepClock {
	return &stepClock{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
}

func (c *stepClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *stepClock) Timer(d time.Duration) (<-chan time.Time, func() bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := &stepTimer{at: c.now.Add(d), c: make(chan time.Time, 1)}
	if d <= 0 {
		t.c <- c.now
		c.fired++
		return t.c, func() bool { return false }
	}
	c.timers = append(c.timers, t)
	return t.c, func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		for i, x := range c.timers {
			if x == t {
				c.timers = append(c.timers[:i], c.timers[i+1:]...)
				return true
			}
		}
		return false
	}
}

// Advance moves time by d and fires every timer that is due.
func (c *stepClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	kept := c.timers[:0]
	for _, t := range c.timers {
		if !t.at.After(c.now) {
			t.c <- c.now
			c.fired++
			continue
		}
		kept = append(kept, t)
	}
	c.timers = kept
}

// Pending returns the deadlines of the armed timers, earliest first.
func (c *stepClock) Pending() []time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	var at []time.Time
	for _, t := range c.timers {
		at = append(at, t.at)
	}
	sort.Slice(at, func(i, j int) bool { return at[i].Before(at[j]) })
	return at
}

func (c *stepClock) Fired() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.fired
}

// switchLog records every level written and when, on the step clock.
type switchLog struct {
	mu    sync.Mutex
	clock *stepClock
	on    []bool
	at    []time.Duration // since the clock's start
	t0    time.Time
	fail  error
}

func (l *switchLog) out(on bool) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.fail != nil {
		return l.fail
	}
	l.on = append(l.on, on)
	l.at = append(l.at, l.clock.Now().Sub(l.t0))
	return nil
}

func (l *switchLog) levels() []bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]bool(nil), l.on...)
}

func (l *switchLog) times() []time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]time.Duration(nil), l.at...)
}

func newTestProportioner(t *testing.T, period, minOn time.Duration) (*proportioner, *stepClock, *switchLog) {
	t.Helper()
	c := newStepClock()
	log := &switchLog{clock: c, t0: c.Now()}
	p := newProportioner(log.out, c, period, minOn)
	t.Cleanup(func() { _ = p.close() })
	return p, c, log
}

// waitArmed waits until the goroutine has armed exactly the timer at want (since t0).
func waitArmed(t *testing.T, c *stepClock, t0 time.Time, want time.Duration) {
	t.Helper()
	require.Eventually(t, func() bool {
		p := c.Pending()
		return len(p) == 1 && p[0].Equal(t0.Add(want))
	}, 2*time.Second, time.Millisecond, "timer at +%s; armed: %v", want, c.Pending())
}

// The finding: after a duty of 1 the SSR stayed on until the end of the window. Now the
// write that sets duty 0 switches it off itself, before any timer fires.
func TestProportionerDutyZeroSwitchesOffAtOnce(t *testing.T) {
	p, c, log := newTestProportioner(t, 2*time.Second, 10*time.Millisecond)
	require.NoError(t, p.setDuty(1))
	assert.Equal(t, []bool{true}, log.levels(), "on at once")
	c.Advance(300 * time.Millisecond) // no timer is due
	require.NoError(t, p.setDuty(0))
	assert.Equal(t, []bool{true, false}, log.levels(), "off when setDuty returns")
	assert.Equal(t, []time.Duration{0, 300 * time.Millisecond}, log.times())
	assert.Zero(t, c.Fired(), "no timer was involved")
}

// A smaller duty whose on-time has already passed in this window switches off at once; one
// whose on-time is still running keeps the output on until it ends.
func TestProportionerLowerDutyMidWindow(t *testing.T) {
	p, c, log := newTestProportioner(t, time.Second, 10*time.Millisecond)
	t0 := c.Now()
	require.NoError(t, p.setDuty(0.8))
	waitArmed(t, c, t0, 800*time.Millisecond)
	c.Advance(400 * time.Millisecond)
	require.NoError(t, p.setDuty(0.6)) // 600 ms not yet reached: stays on
	assert.Equal(t, []bool{true}, log.levels())
	waitArmed(t, c, t0, 600*time.Millisecond)
	require.NoError(t, p.setDuty(0.3)) // 300 ms passed already: off now
	assert.Equal(t, []bool{true, false}, log.levels())
	assert.Equal(t, 400*time.Millisecond, log.times()[1])
	waitArmed(t, c, t0, time.Second)
}

// Windows sit on absolute deadlines: a timer that fires late does not push the next ones.
func TestProportionerAbsoluteWindows(t *testing.T) {
	p, c, log := newTestProportioner(t, time.Second, 10*time.Millisecond)
	t0 := c.Now()
	require.NoError(t, p.setDuty(0.25))
	waitArmed(t, c, t0, 250*time.Millisecond)
	c.Advance(253 * time.Millisecond) // the goroutine wakes 3 ms late
	waitArmed(t, c, t0, time.Second)  // next window at t0+1s, not t0+1.003s
	c.Advance(757 * time.Millisecond) // t0 + 1.010 s
	waitArmed(t, c, t0, 1250*time.Millisecond)
	c.Advance(240 * time.Millisecond) // t0 + 1.250 s, on time
	waitArmed(t, c, t0, 2*time.Second)
	for range 10 { // five more windows, each woken 7 ms late at both edges
		c.Advance(c.Pending()[0].Sub(c.Now()) + 7*time.Millisecond)
		require.Eventually(t, func() bool { p := c.Pending(); return len(p) == 1 && p[0].After(c.Now()) }, 2*time.Second, time.Millisecond)
	}
	got := log.times()
	require.Len(t, got, 14)
	assert.Equal(t, []time.Duration{0, 253 * time.Millisecond, 1010 * time.Millisecond, 1250 * time.Millisecond}, got[:4])
	for i := 4; i < len(got); i++ {
		// Window k: on at k s, off at k s + 250 ms, each seen 7 ms late: never later.
		k := time.Duration(2 + (i-4)/2)
		want := k*time.Second + 7*time.Millisecond
		if i%2 == 1 {
			want += 250 * time.Millisecond
		}
		assert.Equal(t, want, got[i], "switch %d", i)
	}
	assert.Equal(t, []bool{true, false, true, false}, log.levels()[:4])
}

func TestProportionerMinOnTime(t *testing.T) {
	tests := []struct {
		name  string
		duty  float64
		onFor time.Duration
	}{
		{"zero", 0, 0},
		{"below the minimum is off", 0.004, 0},           // 8 ms
		{"at the minimum", 0.005, 10 * time.Millisecond}, // 10 ms
		{"mid", 0.5, time.Second},
		{"off-time at the minimum", 0.995, 1990 * time.Millisecond},
		{"off-time below the minimum is fully on", 0.996, 2 * time.Second},
		{"full", 1, 2 * time.Second},
	}
	p := &proportioner{period: 2 * time.Second, minOn: 10 * time.Millisecond}
	for _, tt := range tests {
		assert.Equal(t, tt.onFor, p.onTime(tt.duty), tt.name)
	}

	// Fully on through windows: no off edge at a window's end.
	q, c, log := newTestProportioner(t, 2*time.Second, 10*time.Millisecond)
	t0 := c.Now()
	require.NoError(t, q.setDuty(0.996))
	waitArmed(t, c, t0, 2*time.Second)
	c.Advance(2 * time.Second)
	waitArmed(t, c, t0, 4*time.Second)
	assert.Equal(t, []bool{true}, log.levels())

	// A duty too small to switch leaves the output off in every window.
	r, c2, log2 := newTestProportioner(t, 2*time.Second, 10*time.Millisecond)
	t2 := c2.Now()
	require.NoError(t, r.setDuty(0.004))
	waitArmed(t, c2, t2, 2*time.Second)
	c2.Advance(2 * time.Second)
	waitArmed(t, c2, t2, 4*time.Second)
	assert.Empty(t, log2.levels())
}

// A duty raised mid-window switches on for what is left of its on-time, unless that is
// shorter than the minimum.
func TestProportionerRaisedDutyMidWindow(t *testing.T) {
	p, c, log := newTestProportioner(t, 2*time.Second, 10*time.Millisecond)
	t0 := c.Now()
	c.Advance(1500 * time.Millisecond)
	require.NoError(t, p.setDuty(0.755)) // on until 1.510 s: 10 ms left
	assert.Equal(t, []bool{true}, log.levels())
	waitArmed(t, c, t0, 1510*time.Millisecond)
	require.NoError(t, p.setDuty(0))
	c.Advance(5 * time.Millisecond)
	require.NoError(t, p.setDuty(0.755)) // 5 ms left: not switched
	assert.Equal(t, []bool{true, false}, log.levels())
	waitArmed(t, c, t0, 2*time.Second)
	c.Advance(495 * time.Millisecond) // the next window makes the whole pulse
	waitArmed(t, c, t0, 3510*time.Millisecond)
	assert.Equal(t, []bool{true, false, true}, log.levels())
}

// A failed write is reported by setDuty, and the goroutine tries again soon.
func TestProportionerWriteFailure(t *testing.T) {
	p, c, log := newTestProportioner(t, 2*time.Second, 10*time.Millisecond)
	t0 := c.Now()
	require.NoError(t, p.setDuty(1))
	log.mu.Lock()
	log.fail = errors.New("EIO")
	log.mu.Unlock()
	require.ErrorContains(t, p.setDuty(0), "EIO")
	waitArmed(t, c, t0, switchRetry)
	log.mu.Lock()
	log.fail = nil
	log.mu.Unlock()
	c.Advance(switchRetry)
	require.Eventually(t, func() bool { l := log.levels(); return len(l) == 2 && !l[1] }, 2*time.Second, time.Millisecond)
}

func TestProportionerCloseSwitchesOff(t *testing.T) {
	c := newStepClock()
	log := &switchLog{clock: c, t0: c.Now()}
	p := newProportioner(log.out, c, time.Second, 10*time.Millisecond)
	require.NoError(t, p.setDuty(0.5))
	require.NoError(t, p.close())
	assert.Equal(t, []bool{true, false}, log.levels())
}
