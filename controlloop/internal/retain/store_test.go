package retain

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestStoreRoundTrip(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sub", "latches.json")
	st, err := NewStore(path)
	require.NoError(t, err)

	got, exists, err := st.Load()
	require.NoError(t, err)
	assert.False(t, exists)
	assert.Empty(t, got.Loops, "a first start has nothing latched")

	sp, manual := 65.0, 0.25
	in := State{Running: true, Loops: map[string]Loop{
		"oven":     {Latched: []string{"sensor_fault", "high_limit"}, Operator: &Operator{Mode: "manual", Setpoint: &sp, Manual: &manual}},
		"conveyor": {},
	}}
	require.NoError(t, st.Save(in))
	got, exists, err = st.Load()
	require.NoError(t, err)
	assert.True(t, exists)
	assert.True(t, got.Running)
	assert.Equal(t, map[string]Loop{"oven": {Latched: []string{"high_limit", "sensor_fault"}, Operator: &Operator{Mode: "manual", Setpoint: &sp, Manual: &manual}}}, got.Loops)
	assert.Equal(t, map[string][]string{"oven": {"high_limit", "sensor_fault"}}, got.Latched())

	entries, err := os.ReadDir(filepath.Dir(path))
	require.NoError(t, err)
	assert.Len(t, entries, 1, "no temporary file is left behind")
}

func TestStoreReadsVersion1(t *testing.T) {
	path := filepath.Join(t.TempDir(), "latches.json")
	require.NoError(t, os.WriteFile(path, []byte(`{"version":1,"loops":{"oven":["sensor_fault"]}}`), 0o600))
	st, err := NewStore(path)
	require.NoError(t, err)
	got, _, err := st.Load()
	require.NoError(t, err)
	assert.Equal(t, map[string][]string{"oven": {"sensor_fault"}}, got.Latched())
	assert.False(t, got.Running, "a version 1 file was written by a build that had no running flag")
	assert.Nil(t, got.Loops["oven"].Operator)
}

func TestStoreRefusesCorruptFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "latches.json")
	require.NoError(t, os.WriteFile(path, []byte(`{"version":2,"loops":{"oven":[`), 0o600))
	st, err := NewStore(path)
	require.NoError(t, err)
	_, _, err = st.Load()
	require.ErrorContains(t, err, "is corrupt")

	require.NoError(t, os.WriteFile(path, []byte(`{"version":9}`), 0o600))
	_, _, err = st.Load()
	require.ErrorContains(t, err, "has version 9")

	require.NoError(t, os.WriteFile(path, []byte(`{"version":2,"loops":{"oven":["x"]}}`), 0o600))
	_, _, err = st.Load()
	require.ErrorContains(t, err, "is corrupt", "a version 1 body under version 2")
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
	require.Error(t, st.Save(State{Loops: map[string]Loop{"oven": {Latched: []string{"x"}}}}))
}

// FuzzDecode: the file is read back after power cuts and restores; no input may panic,
// and whatever decodes re-encodes to the same state.
func FuzzDecode(f *testing.F) {
	f.Add([]byte(`{"version":1,"loops":{"oven":["sensor_fault"]}}`))
	f.Add([]byte(`{"version":2,"running":true,"loops":{"oven":{"latched":["a"],"operator":{"mode":"off","setpoint":60,"dry_run_cleared":true}}}}`))
	f.Add([]byte(`{"version":2}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		st, err := Decode(b)
		if err != nil {
			return
		}
		path := filepath.Join(t.TempDir(), "s.json")
		s := &Store{path: path}
		require.NoError(t, s.Save(st))
		again, _, err := s.Load()
		require.NoError(t, err)
		assert.Equal(t, st.Running, again.Running)
		assert.Equal(t, st.Latched(), again.Latched())
	})
}
