package pid

import (
	"math"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// plant is a first-order lag y' = (K·u − y)/tau, enough to exercise the controller.
type plant struct{ y, k, tau float64 }

func (p *plant) step(u, dt float64) float64 {
	p.y += dt * (p.k*u - p.y) / p.tau
	return p.y
}

func newPID(t *testing.T, g Gains, l Limits) *Controller {
	t.Helper()
	c, err := New(g, l)
	require.NoError(t, err)
	return c
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name    string
		g       Gains
		l       Limits
		wantErr string
	}{
		{"ok", Gains{Kp: 1}, Limits{OutMax: 1}, ""},
		{"all zero", Gains{}, Limits{OutMax: 1}, "kp, ki and kd must not all be 0"},
		{"negative ki", Gains{Kp: 1, Ki: -1}, Limits{OutMax: 1}, "ki must be a finite number >= 0"},
		{"nan kd", Gains{Kp: 1, Kd: math.NaN()}, Limits{OutMax: 1}, "kd must be a finite number >= 0"},
		{"inverted limits", Gains{Kp: 1}, Limits{OutMin: 1, OutMax: 0}, "output_min (1) must be below output_max (0)"},
		{"inverted integral", Gains{Kp: 1}, Limits{OutMax: 1, IntegralMin: 1, IntegralMax: 0.5}, "integral_min (1) must be below integral_max (0.5)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New(tt.g, tt.l)
			if tt.wantErr == "" {
				require.NoError(t, err)
				return
			}
			require.ErrorContains(t, err, tt.wantErr)
		})
	}
}

func TestConvergesWithoutSteadyStateError(t *testing.T) {
	c := newPID(t, Gains{Kp: 2, Ki: 1, Kd: 0.1, DerivativeFilter: 0.05}, Limits{OutMin: 0, OutMax: 10})
	p := &plant{k: 1, tau: 2}
	const dt = 0.01
	for range 3000 {
		p.step(c.Update(5, p.y, dt), dt)
	}
	assert.InDelta(t, 5, p.y, 0.01)
}

func TestOutputLimits(t *testing.T) {
	c := newPID(t, Gains{Kp: 100}, Limits{OutMin: -1, OutMax: 1})
	assert.Equal(t, 1.0, c.Update(10, 0, 0.1))
	assert.Equal(t, -1.0, c.Update(-10, 0, 0.1))
}

func TestAntiWindupClampsIntegral(t *testing.T) {
	c := newPID(t, Gains{Kp: 0.1, Ki: 1}, Limits{OutMin: 0, OutMax: 1})
	// A long saturation (actuator too weak) would wind a plain integral up to 100.
	for range 1000 {
		c.Update(100, 0, 0.1)
	}
	assert.LessOrEqual(t, c.integral, 1.0)
	// Once the error reverses, the output leaves saturation in one step rather than after
	// unwinding the stored error.
	u := c.Update(0, 20, 0.1)
	assert.Less(t, u, 1.0)
}

func TestDerivativeOnMeasurementHasNoSetpointKick(t *testing.T) {
	c := newPID(t, Gains{Kp: 1, Kd: 10}, Limits{OutMin: -100, OutMax: 100})
	c.Update(0, 0, 0.01)
	u := c.Update(1, 0, 0.01) // setpoint step, measurement unchanged
	assert.InDelta(t, 1.0, u, 1e-9, "only the proportional term may react to a setpoint step")
	u = c.Update(1, 0.01, 0.01) // the measurement moves: derivative brakes
	assert.Less(t, u, 0.99-0.01)
}

func TestDerivativeFilterSmoothsNoise(t *testing.T) {
	raw := newPID(t, Gains{Kd: 1}, Limits{OutMin: -1e9, OutMax: 1e9})
	filt := newPID(t, Gains{Kd: 1, DerivativeFilter: 0.5}, Limits{OutMin: -1e9, OutMax: 1e9})
	var maxRaw, maxFilt float64
	for i := range 200 {
		pv := 0.01 * float64(i%2) // alternating noise
		maxRaw = math.Max(maxRaw, math.Abs(raw.Update(0, pv, 0.01)))
		maxFilt = math.Max(maxFilt, math.Abs(filt.Update(0, pv, 0.01)))
	}
	assert.Less(t, maxFilt, maxRaw/10)
}

func TestBumplessManualToAuto(t *testing.T) {
	c := newPID(t, Gains{Kp: 2, Ki: 0.5}, Limits{OutMin: 0, OutMax: 1})
	c.SetMode(Manual)
	c.SetManual(0.6)
	assert.Equal(t, 0.6, c.Update(50, 20, 0.1))
	assert.Equal(t, Manual, c.Mode())
	c.SetMode(Auto)
	u := c.Update(20.1, 20, 0.1)
	assert.InDelta(t, 0.6, u, 0.01, "the first auto output continues from the manual one")
}

func TestTrackThenResume(t *testing.T) {
	c := newPID(t, Gains{Kp: 1, Ki: 1}, Limits{OutMin: 0, OutMax: 1})
	c.Update(0.5, 0.1, 0.01)
	c.Track(0) // forced safe
	u := c.Update(0.5, 0.5, 0.01)
	assert.InDelta(t, 0, u, 0.02, "control resumes from the safe output, not with a kick")
}

func TestOffHoldsMinimum(t *testing.T) {
	c := newPID(t, Gains{Kp: 1}, Limits{OutMin: 0, OutMax: 1})
	c.Update(10, 0, 0.1)
	c.SetMode(Off)
	assert.Equal(t, 0.0, c.Output())
	assert.Equal(t, 0.0, c.Update(10, 0, 0.1))
}

func TestInvalidInputsKeepOutput(t *testing.T) {
	c := newPID(t, Gains{Kp: 0.1}, Limits{OutMin: 0, OutMax: 1})
	u := c.Update(5, 0, 0.1)
	assert.Equal(t, u, c.Update(5, math.NaN(), 0.1))
	assert.Equal(t, u, c.Update(5, math.Inf(1), 0.1))
	assert.Equal(t, u, c.Update(5, 1, 0))
}

func TestModeNames(t *testing.T) {
	for _, m := range []Mode{Auto, Manual, Off} {
		got, err := ParseMode(m.String())
		require.NoError(t, err)
		assert.Equal(t, m, got)
	}
	_, err := ParseMode("cascade")
	require.ErrorContains(t, err, `mode "cascade" is not one of auto, manual, off`)
}

func TestUpdateDoesNotAllocate(t *testing.T) {
	c := newPID(t, Gains{Kp: 1, Ki: 1, Kd: 1, DerivativeFilter: 0.1}, Limits{OutMin: 0, OutMax: 1})
	pv := 0.0
	allocs := testing.AllocsPerRun(1000, func() {
		pv += 0.001
		c.Update(0.5, pv, 0.01)
	})
	assert.Zero(t, allocs)
}

func BenchmarkUpdate(b *testing.B) {
	c, err := New(Gains{Kp: 1, Ki: 1, Kd: 1, DerivativeFilter: 0.1}, Limits{OutMin: 0, OutMax: 1})
	require.NoError(b, err)
	for i := 0; b.Loop(); i++ {
		c.Update(0.5, float64(i%100)/100, 0.01)
	}
}

func TestNoIntegrationWhileSaturated(t *testing.T) {
	c := newPID(t, Gains{Kp: 1, Ki: 1}, Limits{OutMin: -1, OutMax: 1})
	for range 100 {
		c.Update(10, 0, 0.1) // P alone saturates the output
	}
	assert.Zero(t, c.integral, "nothing is stored while the actuator is already at its limit")
	// Integration resumes when it would pull the output back out of saturation.
	c.Update(0, 0.5, 0.1)
	assert.Negative(t, c.integral)
}
