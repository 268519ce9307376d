package diskqueueexporter

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/fieldcol/fieldcol/internal/netfault"
)

// TestFlakyLink sends through a link that delays, truncates and resets connections at
// random (internal/netfault's Flaky mode) for a few seconds, 2 minutes under make soak
// (FIELDCOL_SOAK=1). Every acknowledged record must arrive once the link is healthy again,
// first arrivals in order (num_consumers 1); duplicates are what the resets cut after the
// gateway had taken a request, and are reported.
func TestFlakyLink(t *testing.T) {
	soak := 3 * time.Second
	if os.Getenv("FIELDCOL_SOAK") == "1" {
		soak = 2 * time.Minute
	}
	sink := newSink(t)
	proxy, err := netfault.Listen(strings.TrimPrefix(sink.srv.URL, "http://"), 19)
	require.NoError(t, err)
	t.Cleanup(func() { _ = proxy.Close() })
	proxy.SetMode(netfault.Flaky)
	cfg := testExporterConfig(t.TempDir(), "http://"+proxy.Addr())
	cfg.Timeout = 2 * time.Second
	cfg.SendBatchMaxBytes = 4 << 10 // many requests, so many of them meet a fault
	exp := startLogs(t, cfg, nopSettings())

	var acked []string
	deadline := time.Now().Add(soak)
	for i := 0; time.Now().Before(deadline); i++ {
		id := ids("flaky", i, i+1)[0]
		require.NoError(t, exp.ConsumeLogs(context.Background(), makeLogs(id)))
		acked = append(acked, id)
		time.Sleep(2 * time.Millisecond)
	}
	proxy.SetMode(netfault.Pass)
	assert.Eventually(t, func() bool {
		for _, id := range acked {
			if !sink.has(id) {
				return false
			}
		}
		return true
	}, 60*time.Second, 20*time.Millisecond, "every acknowledged record arrives once the link is healthy")
	require.NoError(t, exp.Shutdown(context.Background()))

	var first []string
	seen := map[string]bool{}
	dupes := 0
	for _, id := range sink.received() {
		if seen[id] {
			dupes++
			continue
		}
		seen[id] = true
		first = append(first, id)
	}
	assert.Equal(t, acked, first, "first arrivals in the order the pipeline handed them over")
	st := proxy.Stats()
	t.Logf("%s of a flaky link: %d records acknowledged, all delivered in order, %d duplicates; proxy: %d connections, %d resets, %d truncations, %d delays",
		soak, len(acked), dupes, st.Accepted, st.Dropped, st.Truncated, st.Delayed)
	assert.Positive(t, st.Dropped+st.Truncated, "the link must have failed some requests")
}
