package queue

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/fieldcol/fieldcol/exporters/diskqueueexporter/internal/wal"
	"github.com/fieldcol/fieldcol/exporters/diskqueueexporter/internal/wal/waltest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

type recorder struct {
	mu      sync.Mutex
	dropped map[Reason]int64
	errs    map[string]int
	syncs   int
}

func newRecorder() *recorder {
	return &recorder{dropped: map[Reason]int64{}, errs: map[string]int{}}
}

func (r *recorder) Dropped(reason Reason, n int64) {
	r.mu.Lock()
	r.dropped[reason] += n
	r.mu.Unlock()
}

func (r *recorder) WriteFailed(t string) {
	r.mu.Lock()
	r.errs[t]++
	r.mu.Unlock()
}

func (r *recorder) Synced(time.Duration) {
	r.mu.Lock()
	r.syncs++
	r.mu.Unlock()
}

func (r *recorder) droppedFor(reason Reason) int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.dropped[reason]
}

func (r *recorder) errsFor(t string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.errs[t]
}

func testConfig(dir string, ev Events) Config {
	return Config{
		Dir:                dir,
		SegmentSize:        256,
		MaxSize:            1 << 20,
		Sync:               SyncBatch,
		WhenFull:           Block,
		CheckpointInterval: 10 * time.Millisecond,
		FullRetryInterval:  10 * time.Millisecond,
		Events:             ev,
	}
}

func mustOpen(t *testing.T, cfg Config) *Queue {
	t.Helper()
	q, err := Open(cfg)
	require.NoError(t, err)
	return q
}

func appendN(t *testing.T, q *Queue, from, to int) {
	t.Helper()
	for i := from; i < to; i++ {
		require.NoError(t, q.Append(context.Background(), fmt.Appendf(nil, "rec-%04d", i)))
	}
}

// drain reads and acks until n records arrived, returning them in order.
func drain(t *testing.T, q *Queue, n int) []string {
	t.Helper()
	var got []string
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for len(got) < n {
		b, err := q.Read(ctx, 100)
		require.NoError(t, err)
		for _, r := range b.Records {
			got = append(got, string(r))
		}
		q.Ack(b)
	}
	return got
}

func want(from, to int) []string {
	var out []string
	for i := from; i < to; i++ {
		out = append(out, fmt.Sprintf("rec-%04d", i))
	}
	return out
}

func TestAppendReadAckInOrderAcrossSegments(t *testing.T) {
	for _, tc := range []struct {
		name string
		sync SyncPolicy
		comp Compression
	}{
		{"batch", SyncBatch, CompressionNone},
		{"always", SyncAlways, CompressionNone},
		{"never", SyncNever, CompressionNone},
		{"batch-zstd", SyncBatch, CompressionZstd},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := testConfig(t.TempDir(), newRecorder())
			cfg.Sync, cfg.Compression = tc.sync, tc.comp
			q := mustOpen(t, cfg)
			appendN(t, q, 0, 50)
			assert.Equal(t, int64(50), q.Stats().Records)
			assert.Equal(t, want(0, 50), drain(t, q, 50))
			assert.Eventually(t, func() bool {
				return len(q.log.Segments()) == 1
			}, 2*time.Second, 5*time.Millisecond, "sent segments are deleted")
			st := q.Stats()
			assert.Zero(t, st.Records)
			assert.True(t, st.Oldest.IsZero())
			require.NoError(t, q.Close())
		})
	}
}

func TestConcurrentAppendsAreGroupCommitted(t *testing.T) {
	rec := newRecorder()
	cfg := testConfig(t.TempDir(), rec)
	cfg.SegmentSize = 64 << 10
	cfg.SyncInterval = time.Millisecond
	q := mustOpen(t, cfg)
	const writers, each = 8, 50
	var wg sync.WaitGroup
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				assert.NoError(t, q.Append(context.Background(), fmt.Appendf(nil, "w%d-%04d", w, i)))
			}
		}()
	}
	wg.Wait()
	got := drain(t, q, writers*each)
	next := map[string]int{}
	for _, r := range got {
		var w, i int
		_, err := fmt.Sscanf(r, "w%d-%d", &w, &i)
		require.NoError(t, err)
		key := fmt.Sprint(w)
		assert.Equal(t, next[key], i, "each writer's records stay in order")
		next[key] = i + 1
	}
	rec.mu.Lock()
	syncs := rec.syncs
	rec.mu.Unlock()
	assert.Less(t, syncs, writers*each, "group commit shares fsyncs between callers")
	require.NoError(t, q.Close())
}

func TestReopenResumesFromCheckpoint(t *testing.T) {
	dir := t.TempDir()
	q := mustOpen(t, testConfig(dir, newRecorder()))
	appendN(t, q, 0, 30)
	assert.Equal(t, want(0, 10), drain(t, q, 10))
	// An unacknowledged batch must come back after the restart.
	b, err := q.Read(context.Background(), 1)
	require.NoError(t, err)
	require.Len(t, b.Records, 1)
	require.NoError(t, q.Close())

	q = mustOpen(t, testConfig(dir, newRecorder()))
	assert.Equal(t, int64(20), q.Stats().Records)
	appendN(t, q, 30, 35)
	assert.Equal(t, want(10, 35), drain(t, q, 25))
	require.NoError(t, q.Close())
}

func TestCheckpointMissingStaleOrCorrupt(t *testing.T) {
	tests := []struct {
		name   string
		damage func(t *testing.T, dir string)
		want   []string
	}{
		{name: "missing resends from the oldest segment", want: want(10, 30), damage: func(t *testing.T, dir string) {
			require.NoError(t, os.Remove(filepath.Join(dir, "checkpoint")))
		}},
		{name: "corrupt resends from the oldest segment", want: want(10, 30), damage: func(t *testing.T, dir string) {
			require.NoError(t, os.WriteFile(filepath.Join(dir, "checkpoint"), []byte("garbage garbage garbage garbage!"), 0o600))
		}},
		{name: "stale points at a deleted segment", want: want(10, 30), damage: func(t *testing.T, dir string) {
			require.NoError(t, wal.WriteCheckpoint(wal.OSFS{}, dir, wal.Position{Segment: 1, Offset: 10, Seq: 1}))
		}},
		{name: "ahead of the truncated tail", want: nil, damage: func(t *testing.T, dir string) {
			require.NoError(t, wal.WriteCheckpoint(wal.OSFS{}, dir, wal.Position{Segment: 1 << 40, Offset: 10, Seq: 1 << 40}))
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			q := mustOpen(t, testConfig(dir, newRecorder()))
			appendN(t, q, 0, 30)
			drain(t, q, 10)
			// Wait until the first segments are gone, as after a long run.
			require.Eventually(t, func() bool { return q.log.Segments()[0].First > 0 }, 2*time.Second, 5*time.Millisecond)
			first := q.log.Segments()[0].First
			require.NoError(t, q.Close())
			tt.damage(t, dir)

			q = mustOpen(t, testConfig(dir, newRecorder()))
			defer func() { require.NoError(t, q.Close()) }()
			if tt.want == nil {
				assert.Zero(t, q.Stats().Records)
				// New records fill the range the stale checkpoint pointed into; after
				// another restart they must all be read, from a record boundary.
				appendN(t, q, 100, 103)
				require.NoError(t, q.Close())
				q = mustOpen(t, testConfig(dir, newRecorder()))
				assert.Equal(t, want(100, 103), drain(t, q, 3))
				return
			}
			got := drain(t, q, 30-int(first))
			assert.Equal(t, want(int(first), 30), got)
			assert.Subset(t, got, tt.want, "nothing acknowledged to the pipeline is lost")
		})
	}
}

func TestTornTailIsTruncatedAndCounted(t *testing.T) {
	dir := t.TempDir()
	q := mustOpen(t, testConfig(dir, newRecorder()))
	appendN(t, q, 0, 3)
	require.NoError(t, q.Close())
	segs, err := wal.ListSegments(wal.OSFS{}, dir)
	require.NoError(t, err)
	last := segs[len(segs)-1]
	f, err := os.OpenFile(filepath.Join(dir, wal.SegmentName(last.First)), os.O_WRONLY|os.O_APPEND, 0)
	require.NoError(t, err)
	_, err = f.Write([]byte{40, 0, 0, 0, 1, 2, 3, 4, 5})
	require.NoError(t, err)
	require.NoError(t, f.Close())

	rec := newRecorder()
	q = mustOpen(t, testConfig(dir, rec))
	assert.Equal(t, int64(1), rec.droppedFor(ReasonCorrupt))
	appendN(t, q, 3, 5)
	assert.Equal(t, want(0, 5), drain(t, q, 5))
	require.NoError(t, q.Close())
}

func TestWhenFull(t *testing.T) {
	t.Run("drop_newest", func(t *testing.T) {
		rec := newRecorder()
		cfg := testConfig(t.TempDir(), rec)
		cfg.MaxSize, cfg.WhenFull = 512, DropNewest
		q := mustOpen(t, cfg)
		var stored int
		for i := range 40 {
			err := q.Append(context.Background(), fmt.Appendf(nil, "rec-%04d", i))
			if err == nil {
				stored++
				continue
			}
			require.ErrorIs(t, err, ErrFull)
		}
		assert.Less(t, stored, 40)
		assert.Zero(t, rec.droppedFor(ReasonFull), "a refused batch is the caller's, not a drop of the queue")
		assert.LessOrEqual(t, q.Stats().Size, int64(512))
		assert.Equal(t, want(0, stored), drain(t, q, stored), "the oldest records are kept")
		require.NoError(t, q.Close())
	})
	t.Run("drop_oldest", func(t *testing.T) {
		rec := newRecorder()
		cfg := testConfig(t.TempDir(), rec)
		cfg.MaxSize, cfg.WhenFull = 512, DropOldest
		q := mustOpen(t, cfg)
		appendN(t, q, 0, 40)
		dropped := rec.droppedFor(ReasonFull)
		assert.Positive(t, dropped)
		assert.LessOrEqual(t, q.Stats().Size, int64(512))
		kept := 40 - int(dropped)
		assert.Equal(t, want(40-kept, 40), drain(t, q, kept), "the newest records are kept, in order")
		require.NoError(t, q.Close())
	})
	t.Run("block", func(t *testing.T) {
		cfg := testConfig(t.TempDir(), newRecorder())
		cfg.MaxSize = 512
		q := mustOpen(t, cfg)
		done := make(chan struct{})
		go func() {
			defer close(done)
			appendN(t, q, 0, 40)
		}()
		assert.Never(t, func() bool {
			select {
			case <-done:
				return true
			default:
				return false
			}
		}, 100*time.Millisecond, 10*time.Millisecond, "appends block while the queue is full")
		assert.LessOrEqual(t, q.Stats().Size, int64(512))
		assert.Equal(t, want(0, 40), drain(t, q, 40), "reading frees space and nothing is lost")
		<-done
		require.NoError(t, q.Close())
	})
	t.Run("block gives up with the caller's context", func(t *testing.T) {
		cfg := testConfig(t.TempDir(), newRecorder())
		cfg.MaxSize = 512
		q := mustOpen(t, cfg)
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		defer cancel()
		var err error
		for i := 0; err == nil; i++ {
			err = q.Append(ctx, fmt.Appendf(nil, "rec-%04d", i))
		}
		require.ErrorIs(t, err, context.DeadlineExceeded)
		require.NoError(t, q.Close())
	})
}

func TestDiskFull(t *testing.T) {
	for name, policy := range map[string]FullPolicy{"block": Block, "drop_newest": DropNewest, "drop_oldest": DropOldest} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			ffs := waltest.NewFaultFS()
			rec := newRecorder()
			cfg := testConfig(dir, rec)
			cfg.FS, cfg.WhenFull, cfg.SegmentSize = ffs, policy, 4096
			q := mustOpen(t, cfg)
			appendN(t, q, 0, 10)
			ffs.SetFree(25) // less than one more record
			var acked []string
			var wg sync.WaitGroup
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 10; i < 20; i++ {
					err := q.Append(context.Background(), fmt.Appendf(nil, "rec-%04d", i))
					if err == nil {
						acked = append(acked, fmt.Sprintf("rec-%04d", i))
					} else {
						assert.ErrorIs(t, err, ErrFull)
					}
				}
			}()
			require.Eventually(t, func() bool { return rec.errsFor("enospc") > 0 }, 2*time.Second, 5*time.Millisecond)
			ffs.SetFree(-1) // space comes back
			wg.Wait()
			require.NoError(t, q.Close())

			// Nothing is corrupted: a reopen finds no torn tail and every acknowledged
			// record is there, in order.
			rec2 := newRecorder()
			cfg.Events, cfg.FS = rec2, wal.OSFS{}
			q = mustOpen(t, cfg)
			defer func() { require.NoError(t, q.Close()) }()
			assert.Zero(t, rec2.droppedFor(ReasonCorrupt))
			total := int(q.Stats().Records)
			got := drain(t, q, total)
			switch policy {
			case Block:
				assert.Equal(t, want(0, 20), got)
			case DropNewest:
				assert.Equal(t, append(want(0, 10), acked...), got, "every acknowledged record is kept, in order")
				assert.Zero(t, rec.droppedFor(ReasonFull), "drop_newest refuses, it drops nothing it held")
			case DropOldest:
				// drop_oldest trades old acknowledged records for new ones, by design.
				assert.Equal(t, acked[len(acked)-1], got[len(got)-1])
				assert.IsIncreasing(t, got)
				assert.Positive(t, rec.droppedFor(ReasonFull))
			}
		})
	}
}

// TestFullDiskWithNothingOfItsOwnRefuses: when another program filled the disk and the
// queue holds nothing it could drop, every policy but block refuses the batch with ErrFull
// (never an acknowledgement of a batch it did not keep); block waits for space.
func TestFullDiskWithNothingOfItsOwnRefuses(t *testing.T) {
	for name, policy := range map[string]FullPolicy{"drop_newest": DropNewest, "drop_oldest": DropOldest, "block": Block} {
		t.Run(name, func(t *testing.T) {
			ffs := waltest.NewFaultFS()
			rec := newRecorder()
			cfg := testConfig(t.TempDir(), rec)
			cfg.FS, cfg.WhenFull = ffs, policy
			q := mustOpen(t, cfg)
			ffs.SetFree(0)
			ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
			defer cancel()
			err := q.Append(ctx, []byte("rec-0000"))
			if policy == Block {
				require.ErrorIs(t, err, context.DeadlineExceeded)
			} else {
				require.ErrorIs(t, err, ErrFull)
			}
			assert.Zero(t, rec.droppedFor(ReasonFull))
			assert.Zero(t, q.Stats().Records, "nothing was stored")
			ffs.SetFree(-1)
			appendN(t, q, 1, 3)
			assert.Equal(t, want(1, 3), drain(t, q, 2))
			require.NoError(t, q.Close())
		})
	}
}

func TestFsyncFailureIsReportedAndRolledBack(t *testing.T) {
	ffs := waltest.NewFaultFS()
	rec := newRecorder()
	cfg := testConfig(t.TempDir(), rec)
	cfg.FS = ffs
	q := mustOpen(t, cfg)
	appendN(t, q, 0, 3)
	ffs.FailSync(errors.New("EIO"))
	require.Error(t, q.Append(context.Background(), []byte("lost")))
	assert.Equal(t, 1, rec.errsFor("io"))
	ffs.FailSync(nil)
	appendN(t, q, 3, 5)
	assert.Equal(t, want(0, 5), drain(t, q, 5), "the failed record is gone, the rest intact")
	require.NoError(t, q.Close())
}

func TestMaxAgeDropsExpiredRecords(t *testing.T) {
	rec := newRecorder()
	cfg := testConfig(t.TempDir(), rec)
	now := time.Date(2026, time.March, 1, 12, 0, 0, 0, time.UTC)
	var mu sync.Mutex
	cfg.Now = func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	cfg.MaxAge = time.Minute
	q := mustOpen(t, cfg)
	appendN(t, q, 0, 5)
	mu.Lock()
	now = now.Add(2 * time.Minute)
	mu.Unlock()
	appendN(t, q, 5, 8)
	assert.Equal(t, want(5, 8), drain(t, q, 3))
	assert.Equal(t, int64(5), rec.droppedFor(ReasonExpired))
	require.NoError(t, q.Close())
}

func TestOutOfOrderAcksNeverSkipInflight(t *testing.T) {
	dir := t.TempDir()
	q := mustOpen(t, testConfig(dir, newRecorder()))
	appendN(t, q, 0, 6)
	ctx := context.Background()
	b1, err := q.Read(ctx, 1)
	require.NoError(t, err)
	b2, err := q.Read(ctx, 1)
	require.NoError(t, err)
	q.Ack(b2)
	assert.Equal(t, int64(6), q.Stats().Records, "b1 still in flight holds the acknowledged position")
	q.Ack(b1)
	assert.Equal(t, int64(4), q.Stats().Records)
	require.NoError(t, q.Close())
}

func TestReadUnblocksOnCloseAndContext(t *testing.T) {
	q := mustOpen(t, testConfig(t.TempDir(), newRecorder()))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	_, err := q.Read(ctx, 100)
	require.ErrorIs(t, err, context.DeadlineExceeded)
	errc := make(chan error, 1)
	go func() {
		_, err := q.Read(context.Background(), 100)
		errc <- err
	}()
	require.NoError(t, q.Close())
	require.ErrorIs(t, <-errc, ErrClosed)
	require.ErrorIs(t, q.Append(context.Background(), []byte("x")), ErrClosed)
}

func TestSecondOpenOfTheSameDirectoryFails(t *testing.T) {
	dir := t.TempDir()
	q := mustOpen(t, testConfig(dir, newRecorder()))
	_, err := Open(testConfig(dir, newRecorder()))
	require.ErrorContains(t, err, "used by another process")
	require.ErrorIs(t, err, ErrLocked, "the exporter tells a held lock apart to say what to do")
	require.NoError(t, q.Close())
}

func TestOldestAge(t *testing.T) {
	cfg := testConfig(t.TempDir(), newRecorder())
	now := time.Date(2026, time.March, 1, 12, 0, 0, 0, time.UTC)
	cfg.Now = func() time.Time { return now }
	q := mustOpen(t, cfg)
	appendN(t, q, 0, 2)
	assert.True(t, now.Equal(q.Stats().Oldest), "peeked from disk before any read")
	b, err := q.Read(context.Background(), 1)
	require.NoError(t, err)
	assert.True(t, now.Equal(q.Stats().Oldest), "taken from the batch in flight")
	q.Ack(b)
	require.NoError(t, q.Close())
}

func TestRecordsStampedBeforeClockSyncNeverExpire(t *testing.T) {
	rec := newRecorder()
	cfg := testConfig(t.TempDir(), rec)
	var mu sync.Mutex
	now := time.Unix(60, 0) // a Pi before NTP: 1970
	cfg.Now = func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	cfg.MaxAge = time.Hour
	q := mustOpen(t, cfg)
	appendN(t, q, 0, 3)
	mu.Lock()
	now = time.Date(2026, time.November, 26, 0, 0, 0, 0, time.UTC) // NTP answered
	mu.Unlock()
	assert.True(t, q.Stats().Oldest.IsZero(), "no 56-year age for unsynchronized stamps")
	assert.Equal(t, want(0, 3), drain(t, q, 3))
	assert.Zero(t, rec.droppedFor(ReasonExpired))
	require.NoError(t, q.Close())
}

func TestSegmentDeletedFromOutsideIsSkipped(t *testing.T) {
	rec := newRecorder()
	dir := t.TempDir()
	q := mustOpen(t, testConfig(dir, rec))
	appendN(t, q, 0, 30)
	segs := q.log.Segments()
	require.Greater(t, len(segs), 2)
	require.NoError(t, os.Remove(filepath.Join(dir, wal.SegmentName(segs[0].First))))
	got := drain(t, q, 30-int(segs[1].First))
	assert.Equal(t, want(int(segs[1].First), 30), got)
	assert.Equal(t, int64(segs[1].First), rec.droppedFor(ReasonCorrupt))
	require.NoError(t, q.Close())
}

func TestTruncatedSealedSegmentIsSkippedAndCounted(t *testing.T) {
	rec := newRecorder()
	dir := t.TempDir()
	q := mustOpen(t, testConfig(dir, rec))
	appendN(t, q, 0, 30)
	require.NoError(t, q.Close())
	segs, err := wal.ListSegments(wal.OSFS{}, dir)
	require.NoError(t, err)
	require.Greater(t, len(segs), 2)
	// Cut the first sealed segment in the middle of its second record, as a power loss
	// under fsync: never can.
	require.NoError(t, os.Truncate(filepath.Join(dir, wal.SegmentName(segs[0].First)), wal.FrameSize(envelopeSize+8)+3))

	q = mustOpen(t, testConfig(dir, rec))
	got := drain(t, q, 30-int(segs[1].First)+1)
	assert.Equal(t, append(want(0, 1), want(int(segs[1].First), 30)...), got)
	assert.Equal(t, int64(segs[1].First)-1, rec.droppedFor(ReasonCorrupt))
	require.NoError(t, q.Close())
}

// TestCheckpointAheadOfTruncatedTailIsRewrittenAtOnce covers a crash soon after a restart
// whose tail repair cut records the checkpoint had passed (possible with fsync: never): the
// stale checkpoint must not survive into a state where new records fill that range.
func TestCheckpointAheadOfTruncatedTailIsRewrittenAtOnce(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig(dir, newRecorder())
	cfg.SegmentSize = 1 << 20
	q := mustOpen(t, cfg)
	appendN(t, q, 0, 5)
	drain(t, q, 5)
	require.NoError(t, q.Close())
	require.NoError(t, os.Truncate(filepath.Join(dir, wal.SegmentName(0)), 3*wal.FrameSize(envelopeSize+len("rec-0000"))))

	q = mustOpen(t, cfg)
	appendN(t, q, 100, 103)
	// Snapshot the directory as a crash would leave it: no Close, no later checkpoint.
	crashed := t.TempDir()
	require.NoError(t, os.CopyFS(crashed, os.DirFS(dir)))
	require.NoError(t, q.Close())

	q = mustOpen(t, testConfig(crashed, newRecorder()))
	assert.Equal(t, want(100, 103), drain(t, q, 3))
	require.NoError(t, q.Close())
}

// TestKillResendsOnlyWhatWasInFlight: after a kill -9 (the directory as the page cache holds
// it, no Close, no checkpoint since the acknowledgements) a restart resends only the batch
// that was in flight, not everything since the last checkpoint. A power cut may lose the
// delivered log; the fsynced checkpoint is then where the queue resumes.
func TestKillResendsOnlyWhatWasInFlight(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig(dir, newRecorder())
	cfg.SegmentSize = 1 << 20
	cfg.CheckpointInterval = time.Hour
	q := mustOpen(t, cfg)
	appendN(t, q, 0, 30)
	for range 12 {
		b, err := q.Read(context.Background(), 1)
		require.NoError(t, err)
		q.Ack(b)
	}
	inFlight, err := q.Read(context.Background(), 30)
	require.NoError(t, err)
	require.NotEmpty(t, inFlight.Records)

	killed, cut := t.TempDir(), t.TempDir()
	require.NoError(t, os.CopyFS(killed, os.DirFS(dir)))
	require.NoError(t, os.CopyFS(cut, os.DirFS(dir)))
	require.NoError(t, q.Close())

	q = mustOpen(t, testConfig(killed, newRecorder()))
	assert.Equal(t, want(12, 30), drain(t, q, 18), "only the batch in flight and what followed")
	require.NoError(t, q.Close())

	// Without its delivered log, as a power cut can leave the directory, the queue resumes
	// from the last fsynced checkpoint (none here: the oldest segment), losing nothing.
	require.NoError(t, os.Remove(filepath.Join(cut, "delivered")))
	q = mustOpen(t, cfg.withDir(cut))
	assert.Equal(t, want(0, 30), drain(t, q, 30))
	require.NoError(t, q.Close())
}

func (c Config) withDir(dir string) Config {
	c.Dir = dir
	return c
}

// TestFreeShareCapsTheQueue: with MaxFreeShare the limit follows the file system's free
// space (plus what the queue holds), below max_size, and Stats reports both.
func TestFreeShareCapsTheQueue(t *testing.T) {
	var mu sync.Mutex
	avail := int64(2000) // free space before the queue wrote anything
	cfg := testConfig(t.TempDir(), newRecorder())
	cfg.WhenFull, cfg.MaxFreeShare = DropNewest, 0.5
	// A file system whose free space shrinks as the queue's segments grow.
	cfg.FreeBytes = func(dir string) (int64, error) {
		segs, err := wal.ListSegments(wal.OSFS{}, dir)
		if err != nil {
			return 0, err
		}
		mu.Lock()
		defer mu.Unlock()
		free := avail
		for _, s := range segs {
			free -= s.Size
		}
		return max(free, 0), nil
	}
	q := mustOpen(t, cfg)
	st := q.Stats()
	assert.Equal(t, int64(1000), st.Limit, "half of 2000 free bytes and an empty queue")
	assert.Equal(t, int64(2000), st.FSFree)
	var err error
	for i := 0; err == nil; i++ {
		err = q.Append(context.Background(), fmt.Appendf(nil, "rec-%04d", i))
	}
	require.ErrorIs(t, err, ErrFull)
	assert.LessOrEqual(t, q.Stats().Size, int64(1000))

	// The partition fills from elsewhere: the limit shrinks at the next measurement.
	mu.Lock()
	avail = 0
	mu.Unlock()
	require.Eventually(t, func() bool { return q.Stats().FSFree == 0 }, 2*time.Second, 5*time.Millisecond)
	assert.Equal(t, int64(0.5*float64(q.Stats().Size)), q.Stats().Limit)
	require.NoError(t, q.Close())

	// A real file system reports its free space.
	cfg.FreeBytes, cfg.MaxFreeShare = nil, 0
	q = mustOpen(t, cfg)
	assert.Positive(t, q.Stats().FSFree)
	assert.Equal(t, cfg.MaxSize, q.Stats().Limit)
	require.NoError(t, q.Close())
}
