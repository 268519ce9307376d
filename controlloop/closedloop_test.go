package controlloop

import (
	"context"
	"math"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/plog"

	"github.com/fieldcol/fieldcol/controlloop/internal/api"
	"github.com/fieldcol/fieldcol/internal/hardware"
	"github.com/fieldcol/fieldcol/internal/hardware/backends"
)

func TestHeaterReachesAndHoldsSetpoint(t *testing.T) {
	cfg := plantConfig(t, latchPath(t))
	s := start(t, cfg, nil)
	oven := s.ext.byName["oven"]
	pl := s.plant()
	const sp = 60.0

	// Sample the true plant temperature (behind the sensor noise) every 20 ms.
	type point struct {
		at time.Duration
		t  float64
	}
	var trace []point
	begin := time.Now()
	deadline := begin.Add(9 * time.Second)
	for time.Now().Before(deadline) {
		trace = append(trace, point{time.Since(begin), pl.Temperature(s.session.Now())})
		time.Sleep(20 * time.Millisecond)
	}
	require.True(t, oven.Running())

	peak, settled := math.Inf(-1), time.Duration(-1)
	for i, p := range trace {
		peak = max(peak, p.t)
		if settled < 0 && math.Abs(p.t-sp) <= 1 {
			inside := true
			for _, q := range trace[i:] {
				inside = inside && math.Abs(q.t-sp) <= 1
			}
			if inside {
				settled = p.at
			}
		}
	}
	overshoot := peak - sp
	t.Logf("overshoot %.2f K, settling time (±1 K) %s wall = %s plant", overshoot, settled, settled*60)
	assert.Less(t, overshoot, 1.5, "overshoot")
	require.GreaterOrEqual(t, settled, time.Duration(0), "never settled within ±1 K")
	assert.Less(t, settled, 7*time.Second, "settling time (wall, plant ×60)")
	for _, p := range trace[len(trace)-50:] { // the last second
		assert.InDelta(t, sp, p.t, 0.5, "steady-state band at %s", p.at)
	}
}

func TestSensorFaultMakesOutputsSafeWithinOnePeriod(t *testing.T) {
	cfg := plantConfig(t, latchPath(t))
	s := start(t, cfg, nil)
	oven := s.ext.byName["oven"]
	pl := s.plant()
	require.Eventually(t, func() bool { return pl.HeaterDuty() > 0 }, 5*time.Second, time.Millisecond)

	require.NoError(t, s.ext.Fault(&api.FaultRequest{Device: "oven_temp", Kind: string(hardware.FaultNaN)}))
	require.Eventually(t, func() bool { return pl.HeaterDuty() == 0 }, 5*time.Second, time.Millisecond)
	// The cycle that read the invalid value is the one that forced the outputs safe: its
	// fault event and its safe-state event carry the same cycle number.
	ld := plog.NewLogs()
	s.ext.DrainLogs(ld)
	faultCycle, safeCycle := int64(-1), int64(-1)
	lrs := ld.ResourceLogs().At(0).ScopeLogs().At(0).LogRecords()
	for i := 0; i < lrs.Len(); i++ {
		lr := lrs.At(i)
		if l, _ := lr.Attributes().Get("loop"); l.Str() != "oven" {
			continue
		}
		c, _ := lr.Attributes().Get("cycle")
		switch lr.EventName() {
		case "controlloop.fault":
			if faultCycle < 0 {
				faultCycle = c.Int()
			}
		case "controlloop.safe_state":
			if sf, _ := lr.Attributes().Get("safe"); sf.Bool() && faultCycle >= 0 && safeCycle < 0 {
				safeCycle = c.Int()
			}
		}
	}
	require.Positive(t, faultCycle)
	assert.Equal(t, faultCycle, safeCycle, "outputs forced safe in the cycle that saw the fault")
	assert.True(t, oven.Safe())
	// The API shows the latch once it is on disk.
	require.Eventually(t, func() bool {
		st, _ := s.ext.Status("oven")
		return st.(loopStatus).State == "tripped"
	}, 5*time.Second, time.Millisecond)
}

func TestLatchSurvivesRestartWithOutputsSafe(t *testing.T) {
	latch := latchPath(t)
	reg := backends.NewRegistry(nil)
	s := start(t, plantConfig(t, latch), reg)
	require.NoError(t, s.ext.Fault(&api.FaultRequest{Device: "oven_temp", Kind: string(hardware.FaultOutOfRange)}))
	require.Eventually(t, func() bool {
		b, err := os.ReadFile(latch)
		return err == nil && len(b) > 0 && strings.Contains(string(b), "sensor_fault")
	}, 5*time.Second, 5*time.Millisecond, "the latch is persisted")
	require.NoError(t, s.ext.Shutdown(context.Background()))

	// Restart: same latch file, the fault is gone.
	s2 := start(t, plantConfig(t, latch), backends.NewRegistry(nil))
	oven := s2.ext.byName["oven"]
	pl := s2.plant()
	start := oven.Status().Cycle
	require.Eventually(t, func() bool { return oven.Status().Cycle > start+10 }, 5*time.Second, time.Millisecond)
	assert.Zero(t, pl.HeaterDuty(), "the restored latch keeps the heater off though the sensor is fine")
	assert.True(t, oven.Safe())

	require.NoError(t, s2.ext.Execute(context.Background(), &api.Request{Command: api.CmdAckAlarm, Loop: "oven", Alarm: ptr("sensor_fault")}))
	require.Eventually(t, func() bool { return pl.HeaterDuty() > 0 }, 5*time.Second, time.Millisecond)
	assert.Equal(t, "auto", oven.Mode().String())
}

func TestInterlockStopsMotor(t *testing.T) {
	s := start(t, plantConfig(t, latchPath(t)), nil)
	pl := s.plant()
	require.Eventually(t, pl.MotorEnabled, 5*time.Second, time.Millisecond, "the conveyor starts")
	pl.SetDoor(s.session.Now(), false)
	require.Eventually(t, func() bool { return !pl.MotorEnabled() && pl.MotorCommand() == 0 }, 5*time.Second, time.Millisecond)
	conv := s.ext.byName["conveyor"]
	assert.True(t, conv.Safe())
	st, _ := s.ext.Status("conveyor")
	assert.Equal(t, "interlocked", st.(loopStatus).State)
	pl.SetDoor(s.session.Now(), true)
	require.Eventually(t, pl.MotorEnabled, 5*time.Second, time.Millisecond, "a non-latching interlock releases")
}

func TestShutdownLeavesOutputsSafe(t *testing.T) {
	reg := backends.NewRegistry(nil)
	s := start(t, plantConfig(t, latchPath(t)), reg)
	pl := s.plant()
	require.Eventually(t, func() bool { return pl.HeaterDuty() > 0 && pl.MotorEnabled() }, 5*time.Second, time.Millisecond)
	// Keep our own session open so the plant outlives the extension's.
	watch, err := reg.Open(hardware.Config{Backend: hardware.BackendSim}, hardware.Settings{})
	require.NoError(t, err)
	defer func() { require.NoError(t, watch.Close()) }()
	require.NoError(t, s.ext.Shutdown(context.Background()))
	assert.Zero(t, pl.HeaterDuty())
	assert.False(t, pl.MotorEnabled())
	assert.Zero(t, pl.MotorCommand())
}

func TestStartFailsWhenLatchFileIsNotWritable(t *testing.T) {
	dir := t.TempDir()
	// A directory where the file should be: the rename over it fails whoever runs the test.
	latch := dir + "/latches.json"
	require.NoError(t, os.MkdirAll(latch+"/occupied", 0o700))
	cfg := plantConfig(t, latch)
	e := newExtension(cfg, settings())
	e.registry = backends.NewRegistry(nil)
	err := e.Start(context.Background(), &host{})
	require.ErrorContains(t, err, "latch")
	require.NoError(t, e.Shutdown(context.Background()))
}
