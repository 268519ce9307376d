package onoff

import (
	"math"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestHysteresisHeating(t *testing.T) {
	c := &Controller{Hysteresis: 2}
	steps := []struct{ pv, want float64 }{
		{18, 1},   // below band: on
		{19.5, 1}, // inside band: holds on
		{21.5, 0}, // above band: off
		{20.5, 0}, // inside band: holds off
		{18.9, 1},
	}
	for _, s := range steps {
		assert.Equal(t, s.want, c.Update(20, s.pv), "pv %v", s.pv)
	}
}

func TestHysteresisCooling(t *testing.T) {
	c := &Controller{Hysteresis: 1, Action: Cooling}
	assert.Equal(t, 1.0, c.Update(10, 11))
	assert.Equal(t, 1.0, c.Update(10, 10))
	assert.Equal(t, 0.0, c.Update(10, 9.4))
	assert.Equal(t, 0.0, c.Update(10, 10.4))
}

func TestNaNSwitchesOff(t *testing.T) {
	c := &Controller{Hysteresis: 1}
	require.Equal(t, 1.0, c.Update(10, 0))
	assert.Equal(t, 0.0, c.Update(10, math.NaN()))
	c.Update(10, 0)
	c.Reset()
	assert.Equal(t, 0.0, c.Update(10, 10), "after reset the band does not keep it on")
}
