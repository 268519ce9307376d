package gateway

import (
	"context"
	"fmt"
	"os/exec"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"google.golang.org/grpc/codes"

	"github.com/fieldcol/fieldcol/e2e/internal/harness"
	"github.com/fieldcol/fieldcol/internal/otlpsink"
	"github.com/fieldcol/fieldcol/internal/promtest"
)

// spanKeys are the distinct spans of run in sink: a span delivered twice (at least once
// delivery after a crash) counts once.
func spanKeys(sink *otlpsink.Sink, run string) map[[24]byte]bool {
	out := map[[24]byte]bool{}
	for _, td := range sink.Traces() {
		for _, rs := range td.ResourceSpans().All() {
			if !harness.HasRun(rs.Resource(), run) {
				continue
			}
			for _, ss := range rs.ScopeSpans().All() {
				for _, sp := range ss.Spans().All() {
					var k [24]byte
					tid, sid := sp.TraceID(), sp.SpanID()
					copy(k[:16], tid[:])
					copy(k[16:], sid[:])
					out[k] = true
				}
			}
		}
	}
	return out
}

// smallTraces is n traces of 5 spans each, one request per 10 traces.
func smallTraces(run string, n int) []ptrace.Traces {
	var reqs []ptrace.Traces
	for i := 0; i < n; i += 10 {
		td := ptrace.NewTraces()
		for j := i; j < min(i+10, n); j++ {
			var id pcommon.TraceID
			copy(id[:], fmt.Sprintf("%-16d", j))
			appendPart(td, run, j, workTrace{id: id, kind: errorTrace, spans: 5}, 0, 5)
		}
		reqs = append(reqs, td)
	}
	return reqs
}

// A load balancer is killed (SIGKILL) with a backlog it acknowledged and could not route
// yet (its only sampler frozen), and comes back on the same volume, as a StatefulSet pod
// of the same ordinal does: every acknowledged span reaches the sampler. Then the chart's
// preStop command, `fieldcol-gateway drain`, is run against it and returns once its queue
// is empty.
func TestGatewayTierLBCrashKeepsItsQueue(t *testing.T) {
	prom := promtest.Start(t, promtest.Options{RemoteWriteReceiver: true})
	s := startSampler(t, "sampler-0", prom.URL()+"/api/v1/write", "FIELDCOL_SAMPLE_PERCENTAGE=100", "FIELDCOL_DECISION_WAIT=1s")
	volume := t.TempDir()
	lb := startDoor(t, []string{s.OTLPGRPC}, false, "FIELDCOL_STORAGE_DIR="+volume)

	require.NoError(t, s.Proc.Signal(syscall.SIGSTOP))
	stopped := true
	defer func() {
		if stopped {
			_ = s.Proc.Signal(syscall.SIGCONT)
		}
	}()
	run := fmt.Sprintf("lb-crash-%d", time.Now().UnixNano())
	reqs := smallTraces(run, 400)
	acked := sendAll(t, lb, reqs, 4, nil)
	require.EqualValues(t, 2000, acked, "spans the load balancer acknowledged")
	harness.WaitUntil(t, 30*time.Second, 200*time.Millisecond, func() (bool, string) {
		q, err := lb.ScrapeSum("otelcol_exporter_queue_size", `exporter="load_balancing/traces"`)
		return err == nil && q > 0, fmt.Sprintf("load balancer's routing queue: %v %v", q, err)
	})
	lb.Proc.Kill()
	<-lb.Proc.Done()

	require.NoError(t, s.Proc.Signal(syscall.SIGCONT))
	stopped = false
	again := startDoor(t, []string{s.OTLPGRPC}, false, "FIELDCOL_STORAGE_DIR="+volume)
	harness.WaitUntil(t, 2*time.Minute, 500*time.Millisecond, func() (bool, string) {
		n := len(spanKeys(s.sink, run))
		return n == int(acked), fmt.Sprintf("distinct spans at the sampler's store: %d of %d acknowledged", n, acked)
	})

	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, harness.Binary(t, "fieldcol-gateway"), "drain",
		"--metrics=http://"+again.Telemetry+"/metrics", "--quiet=2s", "--interval=200ms", "--timeout=60s").CombinedOutput()
	require.NoError(t, err, "fieldcol-gateway drain:\n%s", out)
	assert.Contains(t, string(out), "drained in")
	assert.Zero(t, again.MustScrape(t, "otelcol_exporter_queue_size"), "queued after the drain")
	t.Logf("load balancer killed with %d acknowledged spans behind a frozen sampler; after the restart on the same volume %d distinct spans arrived; %s",
		acked, len(spanKeys(s.sink, run)), out)
	again.Stop(t)
	s.Stop(t)
}

// A sampler is killed (SIGKILL) while its trace store is down and its store queue holds
// decided traces, and comes back on the same volume: every span in that queue reaches the
// store once it is back. (What a sampler holds undecided in memory dies with it:
// TestGatewayTierSamplerCrash bounds that loss.)
func TestGatewayTierSamplerCrashKeepsItsStoreQueue(t *testing.T) {
	prom := promtest.Start(t, promtest.Options{RemoteWriteReceiver: true})
	store := otlpsink.Start(t)
	store.Refuse(codes.Unavailable)
	volume := t.TempDir()
	env := []string{"FIELDCOL_STORAGE_DIR=" + volume, "FIELDCOL_TRACES_ENDPOINT=" + store.Addr,
		"FIELDCOL_REMOTE_WRITE_ENDPOINT=" + prom.URL() + "/api/v1/write",
		"FIELDCOL_LOGS_ENDPOINT=http://" + harness.ClosedAddr(t) + "/insert/opentelemetry/v1/logs",
		"FIELDCOL_INSTANCE=sampler-0", "FIELDCOL_SAMPLE_PERCENTAGE=100", "FIELDCOL_DECISION_WAIT=1s"}
	sampler := harness.StartCollector(t, harness.Binary(t, "fieldcol-gateway"), []string{harness.Shipped("distributions/gateway/sampler.yaml")}, env...)

	client, err := otlpsink.Dial(sampler.OTLPGRPC)
	require.NoError(t, err)
	defer client.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	run := fmt.Sprintf("sampler-crash-%d", time.Now().UnixNano())
	total := 0
	for _, td := range smallTraces(run, 300) {
		require.NoError(t, client.SendTraces(ctx, td))
		total += td.SpanCount()
	}
	// Decided (decision_wait 1 s, ticks of 1 s), batched (1 s), through the queue's own
	// batching (flush 1 s) and on disk: 5 s after the last send the queue no longer grows.
	sent := time.Now()
	var last float64 = -1
	harness.WaitUntil(t, time.Minute, 2*time.Second, func() (bool, string) {
		q := sampler.MustScrape(t, "otelcol_exporter_queue_size", `exporter="otlp_grpc/traces"`)
		settled := q > 0 && q == last && time.Since(sent) > 5*time.Second
		last = q
		return settled, fmt.Sprintf("trace store queue: %v batches", q)
	})
	sampler.Proc.Kill()
	<-sampler.Proc.Done()
	assert.Empty(t, spanKeys(store, run), "the store took spans while it refused")

	store.Refuse(codes.OK)
	again := harness.StartCollector(t, harness.Binary(t, "fieldcol-gateway"), []string{harness.Shipped("distributions/gateway/sampler.yaml")}, env...)
	harness.WaitUntil(t, 2*time.Minute, 500*time.Millisecond, func() (bool, string) {
		n := len(spanKeys(store, run))
		return n == total, fmt.Sprintf("distinct spans in the store: %d of %d", n, total)
	})
	t.Logf("sampler killed with %.0f batches queued for a refusing store; after the restart on the same volume all %d spans arrived", last, total)
	again.Stop(t)
}
