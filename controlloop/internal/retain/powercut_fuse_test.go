package retain

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/fieldcol/fieldcol/internal/faultfs"
)

// TestNewLatchDirectorySurvivesAPowerCut is the bug faultfs found: NewStore created the
// latch file's directory without fsyncing its parent, so on a first start a power cut could
// remove the directory, and with it a latch whose Save had returned.
func TestNewLatchDirectorySurvivesAPowerCut(t *testing.T) {
	fsys := faultfs.MountT(t, "", faultfs.Options{})
	st, err := NewStore(filepath.Join(fsys.Dir(), "controlloop", "latches.json"))
	require.NoError(t, err)
	require.NoError(t, st.Save(State{Loops: map[string]Loop{"oven": {Latched: []string{"sensor_fault"}}}}))
	_, err = fsys.Cut()
	require.NoError(t, err)

	after, err := NewStore(filepath.Join(fsys.Backing(), "controlloop", "latches.json"))
	require.NoError(t, err)
	got, _, err := after.Load()
	require.NoError(t, err)
	assert.Equal(t, map[string][]string{"oven": {"sensor_fault"}}, got.Latched())
}

// TestLatchStorePowerCuts saves latch states one after the other and cuts the power at
// random moments (while writing the temporary file, between its fsync and the rename,
// before the directory fsync), with torn writes and slow fsyncs in some cycles. After each
// cut the file must load (never empty, never half written) and hold the last state whose
// Save returned, or the one being saved when the power went.
func TestLatchStorePowerCuts(t *testing.T) {
	faultfs.Require(t)
	cuts := 100
	if os.Getenv("FIELDCOL_SOAK") == "1" {
		cuts = 1000
	}
	root := t.TempDir()
	var acked, inFlight, saves, newestSeen, inFlightSeen int
	limit := time.Duration(cuts) * 600 * time.Millisecond // about 45 ms a cut here
	deadline := time.Now().Add(limit)
	for cycle := range cuts {
		require.True(t, time.Now().Before(deadline), "only %d of %d cuts in %v", cycle, cuts, limit)
		opts := faultfs.Options{Seed: uint64(cycle), TornWrites: cycle%2 == 1} //nolint:gosec // cycle >= 0
		if cycle%3 == 2 {
			opts.Schedule = faultfs.Schedule{SlowFsync: time.Millisecond, SlowFsyncRate: 0.5}
		}
		fsys := faultfs.MountT(t, root, opts)
		st, err := NewStore(filepath.Join(fsys.Dir(), "controlloop", "latches.json"))
		require.NoError(t, err)
		got, _, err := st.Load()
		require.NoError(t, err, "cycle %d: the latch file must always load after a cut", cycle)
		seq := loadedSeq(t, got.Latched())
		switch seq {
		case acked:
			newestSeen++
		case inFlight:
			inFlightSeen++
		default:
			t.Fatalf("cycle %d: after the cut the file holds state %d; the last acknowledged was %d (and %d was in flight)", cycle, seq, acked, inFlight)
		}
		acked, inFlight = seq, seq

		var cutDone atomic.Bool
		delay := time.Duration(200+cycle%13*400) * time.Microsecond // 0.2 to 5 ms: a few saves a cycle
		timer := time.AfterFunc(delay, func() {
			_, cutErr := fsys.Cut()
			assert.NoError(t, cutErr)
			cutDone.Store(true)
		})
		for i := 0; !cutDone.Load() && i < 10_000; i++ {
			inFlight = acked + 1
			if err := st.Save(State{Running: true, Loops: map[string]Loop{"oven": {Latched: []string{fmt.Sprintf("seq-%08d", inFlight)}}, "conveyor": {}}}); err == nil {
				acked = inFlight
				saves++
			}
		}
		require.Eventually(t, cutDone.Load, 10*time.Second, time.Millisecond)
		timer.Stop()
	}
	t.Logf("latch store: %d cuts, %d saves acknowledged; after each cut the file loaded and held the last acknowledged state (%d) or the one in flight (%d); 0 lost, 0 corrupt",
		cuts, saves, newestSeen, inFlightSeen)
}

// loadedSeq is the sequence number of a state written by TestLatchStorePowerCuts (0 for none).
func loadedSeq(t *testing.T, got map[string][]string) int {
	t.Helper()
	names := got["oven"]
	if len(names) == 0 {
		return 0
	}
	require.Len(t, names, 1)
	n, err := strconv.Atoi(strings.TrimPrefix(names[0], "seq-"))
	require.NoError(t, err)
	return n
}
