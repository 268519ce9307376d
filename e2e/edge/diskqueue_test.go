package e2e

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/plog"
	"google.golang.org/grpc/codes"

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
		gatewayAt(gateway),
		"FIELDCOL_DISKQUEUE_DIR=" + filepath.Join(state, "diskqueue"),
		"FIELDCOL_LATCH_FILE=" + filepath.Join(state, "latches.json"),
	}
	edge := startCollector(t, binary(t, "fieldcol-edge"), []string{shipped("distributions/edge/config.yaml")}, stateEnv...)
	client, err := otlpsink.Dial(edge.otlpGRPC)
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	const records = 60
	run := t.Name()
	for i := range records {
		ld := plog.NewLogs()
		rl := ld.ResourceLogs().AppendEmpty()
		rl.Resource().Attributes().PutStr(runKey, run)
		rl.ScopeLogs().AppendEmpty().LogRecords().AppendEmpty().Body().SetStr(fmt.Sprintf("record %d", i))
		// A nil answer is the edge's acknowledgement: the record is on disk.
		require.NoError(t, client.SendLogs(ctx, ld), "record %d", i)
	}
	require.NoError(t, client.Close())
	assert.Zero(t, pickLogs(sink.Logs(), run).LogRecordCount(), "the gateway is down: nothing can have arrived")

	edge.proc.Kill()

	sink.Refuse(codes.OK)
	restarted := startCollector(t, binary(t, "fieldcol-edge"), []string{shipped("distributions/edge/config.yaml")}, stateEnv...)

	var seen []int
	require.Eventually(t, func() bool {
		seen = recordArrivals(t, sink, run)
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
	restarted.stop(t)
}

func distinct(ns []int) int {
	set := map[int]bool{}
	for _, n := range ns {
		set[n] = true
	}
	return len(set)
}
