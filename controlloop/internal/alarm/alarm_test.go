package alarm

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestLatchClearsOnlyAfterConditionGoneAndAck(t *testing.T) {
	s, err := NewSet([]string{"sensor_fault", "high_limit"})
	require.NoError(t, err)

	assert.Equal(t, Raised, s.Evaluate(0, true))
	assert.Equal(t, None, s.Evaluate(0, true), "raised once, not every cycle")
	assert.ErrorIs(t, s.Ack(0), ErrConditionActive)
	assert.True(t, s.AnyLatched())

	assert.Equal(t, None, s.Evaluate(0, false), "the condition going away does not clear a latch")
	assert.True(t, s.At(0).Latched())
	require.NoError(t, s.Ack(0))
	assert.False(t, s.AnyLatched())
	assert.ErrorIs(t, s.Ack(0), ErrNotLatched)
	assert.ErrorIs(t, s.Ack(7), ErrUnknownAlarm)
}

func TestMaskAndNames(t *testing.T) {
	s, err := NewSet([]string{"a", "b", "c"})
	require.NoError(t, err)
	s.Evaluate(0, true)
	s.Evaluate(2, true)
	assert.Equal(t, uint64(0b101), s.Mask())
	assert.Equal(t, []string{"a", "c"}, s.Names(s.Mask()))
	assert.Equal(t, 1, s.Index("b"))
	assert.Equal(t, -1, s.Index("z"))
}

func TestNewSetRejects(t *testing.T) {
	_, err := NewSet([]string{"a", "a"})
	require.ErrorContains(t, err, `alarm "a" is defined twice`)
	_, err = NewSet(make([]string, MaxAlarms+1))
	require.ErrorContains(t, err, "at most 64 alarms per loop")
}

func TestTransitionNames(t *testing.T) {
	assert.Equal(t, "raised", Raised.String())
	assert.Equal(t, "acknowledged", Acknowledged.String())
	assert.Equal(t, "cleared", Cleared.String())
	assert.Equal(t, "none", None.String())
}
