package alarm

import (
	"os"
	"path/filepath"
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

func TestStoreRoundTripAndRestore(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sub", "latches.json")
	st, err := NewStore(path)
	require.NoError(t, err)

	got, err := st.Load()
	require.NoError(t, err)
	assert.Empty(t, got, "a first start has nothing latched")

	require.NoError(t, st.Save(map[string][]string{"oven": {"sensor_fault", "high_limit"}, "conveyor": nil}))
	got, err = st.Load()
	require.NoError(t, err)
	assert.Equal(t, map[string][]string{"oven": {"high_limit", "sensor_fault"}}, got)

	s, err := NewSet([]string{"sensor_fault", "high_limit"})
	require.NoError(t, err)
	unknown := s.Restore(append(got["oven"], "removed_alarm"))
	assert.Equal(t, []string{"removed_alarm"}, unknown)
	assert.Equal(t, uint64(0b11), s.Mask())

	entries, err := os.ReadDir(filepath.Dir(path))
	require.NoError(t, err)
	assert.Len(t, entries, 1, "no temporary file is left behind")
}

func TestStoreRefusesCorruptFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "latches.json")
	require.NoError(t, os.WriteFile(path, []byte(`{"version":1,"loops":{"oven":[`), 0o600))
	st, err := NewStore(path)
	require.NoError(t, err)
	_, err = st.Load()
	require.ErrorContains(t, err, "is corrupt")

	require.NoError(t, os.WriteFile(path, []byte(`{"version":9}`), 0o600))
	_, err = st.Load()
	require.ErrorContains(t, err, "has version 9")
}

func TestStoreSaveFailsInReadOnlyDir(t *testing.T) {
	if os.Geteuid() == 0 {
		t.Skip("root ignores directory permissions")
	}
	dir := t.TempDir()
	st, err := NewStore(filepath.Join(dir, "latches.json"))
	require.NoError(t, err)
	require.NoError(t, os.Chmod(dir, 0o500))
	t.Cleanup(func() { _ = os.Chmod(dir, 0o700) })
	require.Error(t, st.Save(map[string][]string{"oven": {"x"}}))
}

func TestTransitionNames(t *testing.T) {
	assert.Equal(t, "raised", Raised.String())
	assert.Equal(t, "acknowledged", Acknowledged.String())
	assert.Equal(t, "cleared", Cleared.String())
	assert.Equal(t, "none", None.String())
}
