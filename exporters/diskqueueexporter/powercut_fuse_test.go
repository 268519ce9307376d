package diskqueueexporter

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/fieldcol/fieldcol/exporters/diskqueueexporter/internal/metadatatest"
	"github.com/fieldcol/fieldcol/internal/faultfs"
)

// fuseCutTotals is what the power-cut run measured, for the log and docs/durability.md.
type fuseCutTotals struct {
	cuts, startFailures       int
	blocksLost, blocksKept    int
	entriesUndone             int
	acked, delivered, dupes   int
	cutsInStart, cutsInWrites int
	// Cuts by what they undid: unsynced segment bytes (append, group commit), a new
	// segment's name (rotation), a checkpoint write, a deletion of a sent segment.
	hitAppend, hitRotation, hitCheckpoint, hitDeletion int
}

// classify counts which moments of the queue a cut hit, from what it undid.
func (tot *fuseCutTotals) classify(rep faultfs.CutReport) {
	has := func(names []string, match func(string) bool) bool {
		for _, n := range names {
			if match(n) {
				return true
			}
		}
		return false
	}
	seg := func(n string) bool { return strings.HasSuffix(n, ".seg") }
	cp := func(n string) bool { return strings.HasPrefix(n, "checkpoint") }
	if has(rep.RolledBack, seg) {
		tot.hitAppend++
	}
	if has(rep.Dropped, seg) {
		tot.hitRotation++
	}
	if has(rep.RolledBack, cp) || has(rep.Dropped, cp) || has(rep.Restored, cp) {
		tot.hitCheckpoint++
	}
	if has(rep.Restored, seg) {
		tot.hitDeletion++
	}
}

// TestPowerCutFUSE runs the exporter with its queue directory on faultfs and cuts the
// power at random moments (start-up and tail repair, append, group commit, rotation,
// checkpoint, deletion of sent segments), each time restarting on what the cut left, as
// a Pi does when its power comes back. Unlike TestCrashRecovery (SIGKILL, page cache
// intact), a cut here loses every write and directory change that was not fsynced. Every
// record acknowledged to the pipeline must reach the sink, and the exporter must start
// every time.
func TestPowerCutFUSE(t *testing.T) {
	faultfs.Require(t)
	cuts := 100
	if os.Getenv("FIELDCOL_SOAK") == "1" {
		cuts = 1000
	}
	sink := newSink(t)
	sink.failPermille.Store(100) // a flaky gateway keeps a backlog on disk
	root := t.TempDir()
	acked := map[string]bool{}
	var tot fuseCutTotals
	// Bounded: 1.5 s a cut is far above what a cut takes here (about 30 ms).
	deadline := time.Now().Add(time.Duration(cuts) * 1500 * time.Millisecond)
	for cycle := range cuts {
		if time.Now().After(deadline) {
			t.Fatalf("only %d of %d cuts in %v", cycle, cuts, time.Duration(cuts)*1500*time.Millisecond)
		}
		ids, rep := fuseCutCycle(t, root, sink.srv.URL, cycle, &tot)
		for _, id := range ids {
			acked[id] = true
		}
		tot.cuts++
		tot.blocksLost += rep.BlocksLost
		tot.blocksKept += rep.BlocksKept
		tot.entriesUndone += rep.EntriesUndone
		tot.classify(rep)
	}
	require.Greater(t, len(acked), cuts, "records must be acknowledged between cuts")

	// Power back for good: drain to a healthy sink.
	sink.failPermille.Store(0)
	fsys := faultfs.MountT(t, root, faultfs.Options{})
	exp := startLogs(t, crashConfig(fsys.Dir(), sink.srv.URL), crashSettings())
	var missing []string
	assert.Eventually(t, func() bool {
		missing = missing[:0]
		for id := range acked {
			if !sink.has(id) {
				missing = append(missing, id)
			}
		}
		return len(missing) == 0
	}, 30*time.Second, 20*time.Millisecond)
	require.NoError(t, exp.Shutdown(context.Background()))
	require.NoError(t, fsys.Unmount())
	require.Empty(t, missing, "records acknowledged to the pipeline were lost in a power cut")

	tot.acked = len(acked)
	tot.delivered = len(sink.received())
	sink.mu.Lock()
	for _, n := range sink.seen {
		if n > 1 {
			tot.dupes += n - 1
		}
	}
	sink.mu.Unlock()
	// The cuts must reach the moments they are meant to; rotations are rarer (about 4 in
	// 100 here), so only the three frequent ones are required.
	assert.Positive(t, tot.hitAppend, "no cut landed between a group's write and its fsync")
	assert.Positive(t, tot.hitCheckpoint, "no cut landed in a checkpoint write")
	assert.Positive(t, tot.hitDeletion, "no cut undid a deletion of sent segments")
	t.Logf("cuts that undid unsynced segment bytes %d, a new segment %d, a checkpoint write %d, a deletion of sent segments %d",
		tot.hitAppend, tot.hitRotation, tot.hitCheckpoint, tot.hitDeletion)
	t.Logf("faultfs power cuts: %d cuts (%d during start-up, %d while writing; %d with torn writes, %d with slow fsyncs), %d unsynced blocks dropped and %d kept torn, %d directory entries undone; "+
		"%d records acknowledged, 0 lost, %d deliveries (%d duplicates)",
		tot.cuts, tot.cutsInStart, tot.cutsInWrites, cuts/2, cuts/3, tot.blocksLost, tot.blocksKept, tot.entriesUndone,
		tot.acked, tot.delivered, tot.dupes)
}

// fuseCutCycle mounts root, starts the exporter, writes from four callers and cuts the
// power after a random delay; it returns the ids acknowledged before the cut.
func fuseCutCycle(t *testing.T, root, endpoint string, cycle int, tot *fuseCutTotals) ([]string, faultfs.CutReport) {
	t.Helper()
	opts := faultfs.Options{Seed: uint64(cycle), TornWrites: cycle%2 == 1} //nolint:gosec // cycle >= 0
	if cycle%3 == 2 {
		// A slow card: cuts then often land between a group's writes and its fsync.
		opts.Schedule = faultfs.Schedule{SlowFsync: 3 * time.Millisecond, SlowFsyncRate: 0.5}
	}
	fsys := faultfs.MountT(t, root, opts)
	var cutStarted, cutDone atomic.Bool
	var rep faultfs.CutReport
	var cutErr error
	cutCh := make(chan struct{})
	// 0 to 40 ms from before Start: some cuts land in start-up (open, tail repair, the
	// first checkpoint), most in steady writing with rotations and deletions.
	delay := time.Duration(rand.IntN(40_000)) * time.Microsecond //nolint:gosec // test timing
	timer := time.AfterFunc(delay, func() {
		cutStarted.Store(true)
		rep, cutErr = fsys.Cut()
		cutDone.Store(true)
		close(cutCh)
	})
	defer timer.Stop()

	exp, err := NewFactory().CreateLogs(context.Background(), crashSettings(), crashConfig(fsys.Dir(), endpoint))
	require.NoError(t, err)
	if err := exp.Start(context.Background(), nopHost()); err != nil {
		// Only a cut during start-up may fail it; anything else would be a crash loop.
		require.True(t, cutStarted.Load(), "cycle %d: the exporter failed to start on what the last cut left: %v", cycle, err)
		<-cutCh
		_ = exp.Shutdown(context.Background())
		require.NoError(t, cutErr)
		tot.startFailures++
		tot.cutsInStart++
		return nil, rep
	}
	if cutDone.Load() {
		tot.cutsInStart++
	} else {
		tot.cutsInWrites++
	}
	var mu sync.Mutex
	var ids []string
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; !cutDone.Load() && i < 100_000; i++ {
				batch := []string{fmt.Sprintf("c%d-w%d-%d-a", cycle, w, i), fmt.Sprintf("c%d-w%d-%d-b", cycle, w, i)}
				if err := exp.ConsumeLogs(context.Background(), makeLogs(batch...)); err != nil {
					continue
				}
				mu.Lock()
				ids = append(ids, batch...)
				mu.Unlock()
			}
		}()
	}
	select {
	case <-cutCh:
	case <-time.After(10 * time.Second):
		t.Fatalf("cycle %d: the cut never came", cycle)
	}
	wg.Wait()
	_ = exp.Shutdown(context.Background()) // fails: the disk is gone
	require.NoError(t, cutErr)
	return ids, rep
}

// TestFsyncEIONeverAcknowledged fails the fsync of one group commit: its callers must get
// an error (never an ack), the failure must be logged and counted in write.errors, and a
// power cut afterwards must lose nothing that was acknowledged, before or after.
func TestFsyncEIONeverAcknowledged(t *testing.T) {
	fsys := faultfs.MountT(t, "", faultfs.Options{})
	sink := newSink(t)
	sink.mode.Store(sinkDown) // keep everything on disk until the end
	tel := componenttest.NewTelemetry()
	t.Cleanup(func() { require.NoError(t, tel.Shutdown(context.Background())) })
	core, logs := observer.New(zapcore.WarnLevel)
	set := metadatatest.NewSettings(tel)
	set.ID = crashSettings().ID
	set.Logger = zap.New(core)
	cfg := crashConfig(fsys.Dir(), sink.srv.URL)
	exp := startLogs(t, cfg, set)

	require.NoError(t, exp.ConsumeLogs(context.Background(), makeLogs("before")))
	fsys.FailNext(faultfs.OpFsync, "*.seg", syscall.EIO)
	require.Error(t, exp.ConsumeLogs(context.Background(), makeLogs("failed-fsync")),
		"a batch whose fsync failed must not be acknowledged")
	require.NoError(t, exp.ConsumeLogs(context.Background(), makeLogs("after")))

	metadatatest.AssertEqualExporterDiskqueueWriteErrors(t, tel, []metricdata.DataPoint[int64]{{
		Attributes: attribute.NewSet(attribute.String("error.type", "io")), Value: 1,
	}}, metricdatatestIgnore()...)
	require.Equal(t, 1, logs.FilterMessageSnippet("write failed").FilterFieldKey("error").Len(), "the failure is logged: %v", logs.All())

	_, err := fsys.Cut()
	require.NoError(t, err)
	_ = exp.Shutdown(context.Background())

	again := faultfs.MountT(t, fsys.Root(), faultfs.Options{})
	sink.mode.Store(sinkUp)
	exp = startLogs(t, crashConfig(again.Dir(), sink.srv.URL), crashSettings())
	assert.Eventually(t, func() bool { return sink.has("before") && sink.has("after") }, 10*time.Second, 10*time.Millisecond)
	require.NoError(t, exp.Shutdown(context.Background()))
	assert.True(t, sink.has("before") && sink.has("after"), "acknowledged records survive the cut")
}

// TestPowerCutFUSEHarnessCatchesMissingFsync is the control: with fsync: never the same
// cuts must lose acknowledged records, or the test above proves nothing.
func TestPowerCutFUSEHarnessCatchesMissingFsync(t *testing.T) {
	fsys := faultfs.MountT(t, "", faultfs.Options{})
	sink := newSink(t)
	sink.mode.Store(sinkDown)
	cfg := crashConfig(fsys.Dir(), sink.srv.URL)
	cfg.Fsync = "never"
	exp := startLogs(t, cfg, crashSettings())
	var ids []string
	for i := range 50 {
		id := fmt.Sprintf("never-%d", i)
		require.NoError(t, exp.ConsumeLogs(context.Background(), makeLogs(id)))
		ids = append(ids, id)
	}
	_, err := fsys.Cut()
	require.NoError(t, err)
	_ = exp.Shutdown(context.Background())

	again := faultfs.MountT(t, fsys.Root(), faultfs.Options{})
	sink.mode.Store(sinkUp)
	tel := componenttest.NewTelemetry()
	t.Cleanup(func() { require.NoError(t, tel.Shutdown(context.Background())) })
	set := metadatatest.NewSettings(tel)
	set.ID = crashSettings().ID
	exp = startLogs(t, crashConfig(again.Dir(), sink.srv.URL), set)
	// Once the restarted queue holds no record, whatever survived the cut was sent.
	assert.Eventually(t, func() bool { return queuedRecords(t, tel) == 0 }, 10*time.Second, 10*time.Millisecond)
	require.NoError(t, exp.Shutdown(context.Background()))
	lost := 0
	for _, id := range ids {
		if !sink.has(id) {
			lost++
		}
	}
	require.Positive(t, lost, "fsync: never must lose acknowledged records in a power cut")
}

// queuedRecords reads the records gauge (-1 before it is reported).
func queuedRecords(t *testing.T, tel *componenttest.Telemetry) int64 {
	m, err := tel.GetMetric("otelcol.exporter.diskqueue.records")
	if err != nil {
		return -1
	}
	g, ok := m.Data.(metricdata.Gauge[int64])
	require.True(t, ok, "records is an int64 gauge")
	var n int64
	for _, dp := range g.DataPoints {
		n += dp.Value
	}
	return n
}

// TestENOSPCThenPowerCut fills the disk under a blocking queue: the pipeline call is never
// acknowledged while writes fail with ENOSPC, the failures are counted, writing resumes by
// itself once space returns, and a power cut afterwards loses nothing acknowledged and
// leaves a queue that opens.
func TestENOSPCThenPowerCut(t *testing.T) {
	fsys := faultfs.MountT(t, "", faultfs.Options{})
	sink := newSink(t)
	sink.mode.Store(sinkDown)
	tel := componenttest.NewTelemetry()
	t.Cleanup(func() { require.NoError(t, tel.Shutdown(context.Background())) })
	set := metadatatest.NewSettings(tel)
	set.ID = crashSettings().ID
	exp := startLogs(t, crashConfig(fsys.Dir(), sink.srv.URL), set)
	require.NoError(t, exp.ConsumeLogs(context.Background(), makeLogs("before-full")))

	fsys.SetFull(true)
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	require.Error(t, exp.ConsumeLogs(ctx, makeLogs("while-full")), "nothing is acknowledged while the disk is full")
	m, err := tel.GetMetric("otelcol.exporter.diskqueue.write.errors")
	require.NoError(t, err)
	sum, ok := m.Data.(metricdata.Sum[int64])
	require.True(t, ok)
	require.NotEmpty(t, sum.DataPoints)
	assert.Equal(t, "enospc", func() string { v, _ := sum.DataPoints[0].Attributes.Value("error.type"); return v.AsString() }())

	fsys.SetFull(false)
	require.NoError(t, exp.ConsumeLogs(context.Background(), makeLogs("after-full")), "writing resumes once space returns")
	_, err = fsys.Cut()
	require.NoError(t, err)
	_ = exp.Shutdown(context.Background())

	again := faultfs.MountT(t, fsys.Root(), faultfs.Options{})
	sink.mode.Store(sinkUp)
	exp = startLogs(t, crashConfig(again.Dir(), sink.srv.URL), crashSettings())
	assert.Eventually(t, func() bool { return sink.has("before-full") && sink.has("after-full") }, 10*time.Second, 10*time.Millisecond)
	require.NoError(t, exp.Shutdown(context.Background()))
}
