package edge

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"

	"github.com/fieldcol/fieldcol/e2e/internal/harness"
	"github.com/fieldcol/fieldcol/internal/otlpsink"
)

// Logs acknowledged by the edge while its gateway is down survive a SIGKILL of the edge and
// reach the gateway, in order, once it is back.
func TestEdgeKeepsAcknowledgedLogsThroughOutageAndCrash(t *testing.T) {
	sink := otlpsink.Start(t)
	gateway := sink.ServeHTTP(t)
	sink.Refuse(codes.Unavailable)

	state := t.TempDir()
	stateEnv := []string{
		harness.GatewayAt(gateway),
		"FIELDCOL_DISKQUEUE_DIR=" + filepath.Join(state, "diskqueue"),
		"FIELDCOL_LATCH_FILE=" + filepath.Join(state, "latches.json"),
	}
	edge := harness.StartCollector(t, harness.Binary(t, "fieldcol-edge"), []string{harness.Shipped("distributions/edge/config.yaml")}, stateEnv...)
	client, err := otlpsink.Dial(edge.OTLPGRPC)
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	const records = 60
	run := t.Name()
	for i := range records {
		// A nil answer is the edge's acknowledgement: the record is on disk.
		require.NoError(t, client.SendLogs(ctx, harness.Record(run, i)), "record %d", i)
	}
	require.NoError(t, client.Close())
	assert.Zero(t, harness.PickLogs(sink.Logs(), run).LogRecordCount(), "the gateway is down: nothing can have arrived")

	edge.Proc.Kill()

	sink.Refuse(codes.OK)
	restarted := harness.StartCollector(t, harness.Binary(t, "fieldcol-edge"), []string{harness.Shipped("distributions/edge/config.yaml")}, stateEnv...)

	var seen []int
	require.Eventually(t, func() bool {
		seen = harness.RecordArrivals(t, sink, run)
		return distinct(seen) == records
	}, time.Minute, 200*time.Millisecond, "acknowledged records were lost: %d of %d arrived", distinct(seen), records)

	// At least once, in order: duplicates may repeat a record, never step back past one.
	first := map[int]bool{}
	last := -1
	for _, n := range seen {
		if first[n] {
			continue
		}
		first[n] = true
		assert.Equal(t, last+1, n, "records arrived out of order: %v", seen)
		last = n
	}
	restarted.Stop(t)
}

func distinct(ns []int) int {
	set := map[int]bool{}
	for _, n := range ns {
		set[n] = true
	}
	return len(set)
}
