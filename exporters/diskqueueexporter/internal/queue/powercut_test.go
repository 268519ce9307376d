package queue

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/fieldcol/fieldcol/exporters/diskqueueexporter/internal/wal"
	"github.com/fieldcol/fieldcol/exporters/diskqueueexporter/internal/wal/waltest"
)

// TestPowerCutKeepsEveryAcknowledgedRecord cuts the power (drops every byte and directory
// entry that was not fsynced) at a random point of a busy queue, with writers, a reader,
// acknowledgements, rotations, checkpoints and deletions under way, then reopens the
// directory: every record whose Append returned nil must either have been handed to the
// reader and acknowledged before the cut, or still be in the queue.
func TestPowerCutKeepsEveryAcknowledgedRecord(t *testing.T) {
	iterations := 25
	if os.Getenv("FIELDCOL_SOAK") == "1" {
		iterations = 1000
	}
	for it := range iterations {
		for _, policy := range []SyncPolicy{SyncBatch, SyncAlways} {
			lost := powerCutOnce(t, it, policy)
			require.Empty(t, lost, "iteration %d, policy %v: records acknowledged to the pipeline were lost in the power cut", it, policy)
		}
	}
}

// TestPowerCutHarnessCatchesMissingFsync is the control: with fsync: never, acknowledged
// records do get lost in a cut, so the harness above can fail.
func TestPowerCutHarnessCatchesMissingFsync(t *testing.T) {
	for it := range 20 {
		if len(powerCutOnce(t, it, SyncNever)) > 0 {
			return
		}
	}
	t.Fatal("a power cut never lost unsynced records: the harness cannot detect a missing fsync")
}

// powerCutOnce runs one cut and returns the acknowledged records that were lost.
func powerCutOnce(t *testing.T, it int, policy SyncPolicy) []string {
	dir := t.TempDir()
	pfs := waltest.NewPowerCutFS()
	cfg := testConfig(dir, newRecorder())
	cfg.FS, cfg.Sync, cfg.SegmentSize = pfs, policy, 1024
	q := mustOpen(t, cfg)

	var mu sync.Mutex
	acked := map[string]bool{}
	sent := map[string]bool{}
	var count atomic.Int64
	cutAt := int64(1 + rand.IntN(150)) //nolint:gosec // test randomness
	cutDone := make(chan struct{})
	var cutOnce sync.Once
	cut := func() {
		cutOnce.Do(func() {
			assert.NoError(t, pfs.Cut())
			close(cutDone)
		})
	}

	var wg sync.WaitGroup
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				id := fmt.Sprintf("it%d-w%d-%d", it, w, i)
				if err := q.Append(context.Background(), []byte(id)); err != nil {
					return // the power is gone
				}
				mu.Lock()
				acked[id] = true
				mu.Unlock()
				if count.Add(1) == cutAt {
					cut()
				}
			}
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		go func() {
			<-cutDone
			cancel()
		}()
		for {
			b, err := q.Read(ctx, 64)
			if err != nil {
				return
			}
			mu.Lock()
			for _, r := range b.Records {
				sent[string(r)] = true
			}
			mu.Unlock()
			q.Ack(b)
		}
	}()
	select {
	case <-cutDone:
	case <-time.After(10 * time.Second):
		t.Fatal("writers never reached the cut")
	}
	wg.Wait()
	_ = q.Close() // fails: the power is gone

	// Power back: reopen on the real file system.
	cfg.FS, cfg.Events = wal.OSFS{}, newRecorder()
	q = mustOpen(t, cfg)
	remaining := int(q.Stats().Records)
	after := map[string]bool{}
	for _, r := range drain(t, q, remaining) {
		after[r] = true
	}
	require.NoError(t, q.Close())
	var lost []string
	for id := range acked {
		if !sent[id] && !after[id] {
			lost = append(lost, id)
		}
	}
	return lost
}
