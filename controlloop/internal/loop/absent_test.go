package loop

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/fieldcol/fieldcol/internal/hardware"
)

// errNotOpen is what internal/hardware returns for an actuator that could not be opened.
var errNotOpen = &hardware.Error{Device: "heater", Type: hardware.ErrorNack,
	Err: fmt.Errorf("%w: no GPIO pin named %q", hardware.ErrNotOpen, "GPIO17")}

// An actuator that cannot be driven safe at start does not stop Start: actuator_fault is
// latched before the first cycle, every cycle writes the safe state, and once a write has
// succeeded ACK_ALARM re-arms the loop.
func TestActuatorNotOpenAtStartLatchesAndRuns(t *testing.T) {
	io := newDoubles(20, false)
	io.heater.FailWrites(errNotOpen)
	l := newLoop(t, pidSpec(t, io))
	require.NoError(t, l.Start())
	defer func() { require.NoError(t, l.Stop(5*time.Second)) }()
	assert.Contains(t, l.LatchedNames(), AlarmActuatorFault, "latched before the first cycle")
	assert.True(t, l.Safe())
	assert.GreaterOrEqual(t, l.ActuatorErrors(0, ErrNack), uint64(1))
	beat := l.Heartbeat()
	assert.Eventually(t, func() bool { return l.Heartbeat() > beat }, 5*time.Second, time.Millisecond,
		"writes to an actuator that is not open do not starve the watchdog")

	io.heater.FailWrites(nil)
	assert.Eventually(t, func() bool { return l.Submit(ack(-1), time.Second) == nil }, 5*time.Second, 5*time.Millisecond,
		"ACK_ALARM re-arms once a safe write has succeeded")
	assert.Eventually(t, func() bool { d, _ := io.get(); return d > 0 }, 5*time.Second, time.Millisecond, "the loop controls again")
}

// Only a write that failed because the actuator is not open keeps the heartbeat: any other
// failed write stops it, so that systemd's watchdog restarts the process as before.
func TestHeartbeatOnFailedWrites(t *testing.T) {
	for _, tt := range []struct {
		name  string
		err   error
		beats bool
	}{
		{"not open", errNotOpen, true},
		{"refused", &hardware.Error{Device: "heater", Type: hardware.ErrorNack}, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			io := newDoubles(20, false)
			l := newLoop(t, pidSpec(t, io))
			tick(l)
			io.heater.FailWrites(tt.err)
			before := l.Heartbeat()
			tick(l)
			tick(l)
			assert.Equal(t, tt.beats, l.Heartbeat() > before)
			assert.Contains(t, l.LatchedNames(), AlarmActuatorFault)
		})
	}
}

// An actuator that stays unwritable is counted on every write but recorded as one event
// per episode, so a missing heater does not log every cycle.
func TestActuatorErrorEventOncePerEpisode(t *testing.T) {
	io := newDoubles(20, false)
	l := newLoop(t, pidSpec(t, io))
	tick(l)
	io.heater.FailWrites(errNotOpen)
	for range 5 {
		tick(l)
	}
	io.heater.FailWrites(nil)
	tick(l)
	io.heater.FailWrites(errNotOpen)
	tick(l)
	assert.Equal(t, uint64(6), l.ActuatorErrors(0, ErrNack), "every failed write counts")
	events := 0
	var ev Event
	for l.events.Pop(&ev) {
		if ev.Kind == EventActuatorError {
			events++
		}
	}
	assert.Equal(t, 2, events, "one event per episode")
}
