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

	"github.com/fieldcol/fieldcol/exporters/diskqueueexporter/internal/wal/waltest"
)

// TestPowerCutKeepsEveryAcknowledgedRecord cuts the power (drops every byte and directory
// entry that was not fsynced) at random points of a busy queue, with writers, a reader,
// acknowledgements, rotations, checkpoints and deletions under way, three times in a row on
// the same directory (so repairs and resumes after a cut are cut too), then reopens it:
// every record whose Append returned nil must either have been handed to the reader and
// acknowledged before a cut, or still be in the queue.
func TestPowerCutKeepsEveryAcknowledgedRecord(t *testing.T) {
	iterations := 8
	if os.Getenv("FIELDCOL_SOAK") == "1" {
		iterations = 400
	}
	for it := range iterations {
		for _, policy := range []SyncPolicy{SyncBatch, SyncAlways} {
			lost := powerCuts(t, it, policy, 3)
			require.Empty(t, lost, "iteration %d, policy %v: records acknowledged to the pipeline were lost in a power cut", it, policy)
		}
	}
}

// TestPowerCutHarnessCatchesMissingFsync is the control: with fsync: never, acknowledged
// records do get lost in a cut, so the harness above can fail.
func TestPowerCutHarnessCatchesMissingFsync(t *testing.T) {
	for it := range 20 {
		if len(powerCuts(t, it, SyncNever, 1)) > 0 {
			return
		}
	}
	t.Fatal("a power cut never lost unsynced records: the harness cannot detect a missing fsync")
}

// cutLedger is what the test knows across cuts.
type cutLedger struct {
	mu    sync.Mutex
	acked map[string]bool // Append returned nil
	sent  map[string]bool // handed to the reader and acknowledged
}

// powerCuts runs cuts power cuts on one directory and returns the acknowledged records lost.
func powerCuts(t *testing.T, it int, policy SyncPolicy, cuts int) []string {
	dir := t.TempDir()
	ledger := &cutLedger{acked: map[string]bool{}, sent: map[string]bool{}}
	for c := range cuts {
		powerCutCycle(t, dir, policy, fmt.Sprintf("it%d-c%d", it, c), ledger)
	}
	// Power back for good: reopen on the real file system.
	cfg := testConfig(dir, newRecorder())
	cfg.SegmentSize = 1024
	q := mustOpen(t, cfg)
	after := map[string]bool{}
	for _, r := range drain(t, q, int(q.Stats().Records)) {
		after[r] = true
	}
	require.NoError(t, q.Close())
	var lost []string
	for id := range ledger.acked {
		if !ledger.sent[id] && !after[id] {
			lost = append(lost, id)
		}
	}
	return lost
}

func powerCutCycle(t *testing.T, dir string, policy SyncPolicy, prefix string, ledger *cutLedger) {
	pfs := waltest.NewPowerCutFS()
	cfg := testConfig(dir, newRecorder())
	cfg.FS, cfg.Sync, cfg.SegmentSize = pfs, policy, 1024
	q := mustOpen(t, cfg)

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
				id := fmt.Sprintf("%s-w%d-%d", prefix, w, i)
				if err := q.Append(context.Background(), []byte(id)); err != nil {
					return // the power is gone
				}
				ledger.mu.Lock()
				ledger.acked[id] = true
				ledger.mu.Unlock()
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
			ledger.mu.Lock()
			for _, r := range b.Records {
				ledger.sent[string(r)] = true
			}
			ledger.mu.Unlock()
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
}
