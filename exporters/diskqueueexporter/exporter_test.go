package diskqueueexporter

import (
	"context"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/consumer/consumererror"
	"go.opentelemetry.io/collector/pdata/plog/plogotlp"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/fieldcol/fieldcol/exporters/diskqueueexporter/internal/metadatatest"
)

func ids(prefix string, from, to int) []string {
	var out []string
	for i := from; i < to; i++ {
		out = append(out, fmt.Sprintf("%s-%04d", prefix, i))
	}
	return out
}

func TestOutageThenRecoveryKeepsEverythingInOrder(t *testing.T) {
	sink := newSink(t)
	sink.mode.Store(sinkDown)
	exp := startLogs(t, testExporterConfig(t.TempDir(), sink.srv.URL), nopSettings())
	all := ids("rec", 0, 200)
	for i := 0; i < len(all); i += 2 {
		require.NoError(t, exp.ConsumeLogs(context.Background(), makeLogs(all[i], all[i+1])))
	}
	assert.Never(t, func() bool { return len(sink.received()) > 0 }, 100*time.Millisecond, 10*time.Millisecond)
	sink.mode.Store(sinkUp)
	assert.Eventually(t, func() bool { return len(sink.received()) >= len(all) }, 10*time.Second, 10*time.Millisecond)
	assert.Equal(t, all, sink.received(), "nothing lost, nothing reordered, nothing duplicated")
	require.NoError(t, exp.Shutdown(context.Background()))
}

func TestShutdownWhileGatewayIsDownKeepsTheBacklog(t *testing.T) {
	sink := newSink(t)
	sink.mode.Store(sinkDown)
	dir := t.TempDir()
	set := nopSettings() // the queue directory follows the exporter id, which must stay the same
	exp := startLogs(t, testExporterConfig(dir, sink.srv.URL), set)
	all := ids("rec", 0, 20)
	for _, id := range all {
		require.NoError(t, exp.ConsumeLogs(context.Background(), makeLogs(id)))
	}
	require.NoError(t, exp.Shutdown(context.Background()))

	sink.mode.Store(sinkUp)
	exp = startLogs(t, testExporterConfig(dir, sink.srv.URL), set)
	assert.Eventually(t, func() bool { return len(sink.received()) >= len(all) }, 10*time.Second, 10*time.Millisecond)
	assert.Equal(t, all, sink.received())
	require.NoError(t, exp.Shutdown(context.Background()))
}

func TestNoEndpointHoldsRecordsUntilOneIsConfigured(t *testing.T) {
	dir := t.TempDir()
	set := nopSettings()
	exp := startLogs(t, testExporterConfig(dir, ""), set)
	require.NoError(t, exp.ConsumeLogs(context.Background(), makeLogs("held")))
	require.NoError(t, exp.Shutdown(context.Background()))

	sink := newSink(t)
	exp = startLogs(t, testExporterConfig(dir, sink.srv.URL), set)
	assert.Eventually(t, func() bool { return sink.has("held") }, 10*time.Second, 10*time.Millisecond)
	require.NoError(t, exp.Shutdown(context.Background()))
}

func TestTelemetry(t *testing.T) {
	sink := newSink(t)
	sink.mode.Store(sinkReject)
	tel := componenttest.NewTelemetry()
	t.Cleanup(func() { require.NoError(t, tel.Shutdown(context.Background())) })
	exp := startLogs(t, testExporterConfig(t.TempDir(), sink.srv.URL), metadatatest.NewSettings(tel))

	require.NoError(t, exp.ConsumeLogs(context.Background(), makeLogs("bad")))
	logs := attribute.NewSet(attribute.String("signal", "logs"))
	require.Eventually(t, func() bool {
		m, err := tel.GetMetric("otelcol.exporter.diskqueue.dropped")
		return err == nil && len(m.Data.(metricdata.Sum[int64]).DataPoints) == 1
	}, 5*time.Second, 10*time.Millisecond, "a 400 is dropped as rejected, not retried forever")
	metadatatest.AssertEqualExporterDiskqueueDropped(t, tel, []metricdata.DataPoint[int64]{{
		Attributes: attribute.NewSet(attribute.String("signal", "logs"), attribute.String("reason", "rejected")), Value: 1,
	}}, metricdatatestIgnore()...)

	sink.mode.Store(sinkUp)
	require.NoError(t, exp.ConsumeLogs(context.Background(), makeLogs("good")))
	require.Eventually(t, func() bool { return sink.has("good") }, 5*time.Second, 10*time.Millisecond)
	assert.False(t, sink.has("bad"))
	metadatatest.AssertEqualExporterDiskqueueEnqueued(t, tel, []metricdata.DataPoint[int64]{{Attributes: logs, Value: 2}}, metricdatatestIgnore()...)
	require.Eventually(t, func() bool {
		m, err := tel.GetMetric("otelcol.exporter.diskqueue.sent")
		return err == nil && m.Data.(metricdata.Sum[int64]).DataPoints[0].Value == 1
	}, 5*time.Second, 10*time.Millisecond)
	require.Eventually(t, func() bool {
		m, err := tel.GetMetric("otelcol.exporter.diskqueue.records")
		return err == nil && m.Data.(metricdata.Gauge[int64]).DataPoints[0].Value == 0
	}, 5*time.Second, 10*time.Millisecond)
	for _, name := range []string{"size", "oldest.age", "send.last_success", "fsync.duration"} {
		_, err := tel.GetMetric("otelcol.exporter.diskqueue." + name)
		assert.NoError(t, err, name)
	}
	m, err := tel.GetMetric("otelcol.exporter.diskqueue.send.last_success")
	require.NoError(t, err)
	assert.InDelta(t, float64(time.Now().Unix()), m.Data.(metricdata.Gauge[float64]).DataPoints[0].Value, 60)
	assert.Equal(t, int64(0), degradedGauge(t, tel), "a queue that opened is not degraded")
	require.NoError(t, exp.Shutdown(context.Background()))
}

// logsServer is an OTLP/gRPC logs receiver that refuses bodies equal to "bad".
type logsServer struct {
	plogotlp.UnimplementedGRPCServer
	got chan string
}

func (s *logsServer) Export(_ context.Context, req plogotlp.ExportRequest) (plogotlp.ExportResponse, error) {
	lr := req.Logs().ResourceLogs().At(0).ScopeLogs().At(0).LogRecords()
	for i := range lr.Len() {
		if lr.At(i).Body().Str() == "bad" {
			return plogotlp.NewExportResponse(), status.Error(codes.InvalidArgument, "bad record")
		}
	}
	for i := range lr.Len() {
		s.got <- lr.At(i).Body().Str()
	}
	return plogotlp.NewExportResponse(), nil
}

func TestGRPCRejectsInvalidArgumentAndDeliversTheRest(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	srv := grpc.NewServer()
	ls := &logsServer{got: make(chan string, 10)}
	plogotlp.RegisterGRPCServer(srv, ls)
	go func() { _ = srv.Serve(ln) }()
	defer srv.Stop()

	cfg := testExporterConfig(t.TempDir(), "")
	cfg.Protocol = ProtocolGRPC
	cfg.GRPC.Endpoint = ln.Addr().String()
	cfg.GRPC.TLS.Insecure = true
	exp := startLogs(t, cfg, nopSettings())
	require.NoError(t, exp.ConsumeLogs(context.Background(), makeLogs("bad")))
	require.NoError(t, exp.ConsumeLogs(context.Background(), makeLogs("good")))
	select {
	case got := <-ls.got:
		assert.Equal(t, "good", got)
	case <-time.After(10 * time.Second):
		t.Fatal("the record after a rejected one never arrived")
	}
	require.NoError(t, exp.Shutdown(context.Background()))
}

func TestRejectedRecordDoesNotTakeItsBatchNeighboursDown(t *testing.T) {
	dir := t.TempDir()
	set := nopSettings()
	// Queue everything first (hold mode) so that the three records go out as one request.
	exp := startLogs(t, testExporterConfig(dir, ""), set)
	for _, id := range []string{"before", "bad", "after"} {
		require.NoError(t, exp.ConsumeLogs(context.Background(), makeLogs(id)))
	}
	require.NoError(t, exp.Shutdown(context.Background()))

	sink := newSink(t)
	sink.mode.Store(sinkRejectBad)
	exp = startLogs(t, testExporterConfig(dir, sink.srv.URL), set)
	assert.Eventually(t, func() bool { return len(sink.received()) >= 2 }, 10*time.Second, 10*time.Millisecond)
	assert.Equal(t, []string{"before", "after"}, sink.received())
	require.NoError(t, exp.Shutdown(context.Background()))
}

// TestFullQueueRefusesWhatItDoesNotKeep: with when_full: drop_newest a full queue answers
// with a retryable error, counted as refused (full), and every batch it acknowledged is
// delivered once the gateway is back.
func TestFullQueueRefusesWhatItDoesNotKeep(t *testing.T) {
	sink := newSink(t)
	sink.mode.Store(sinkDown)
	tel := componenttest.NewTelemetry()
	t.Cleanup(func() { require.NoError(t, tel.Shutdown(context.Background())) })
	set, _ := observedSettings(tel)
	cfg := testExporterConfig(t.TempDir(), sink.srv.URL)
	cfg.SegmentSize, cfg.MaxSize, cfg.WhenFull = 1<<10, 2<<10, FullDropNewest
	exp := startLogs(t, cfg, set)
	var acked []string
	refused := 0
	for _, id := range ids("rec", 0, 100) {
		err := exp.ConsumeLogs(context.Background(), makeLogs(id))
		if err != nil {
			assert.False(t, consumererror.IsPermanent(err), "the sender must keep and retry a refused batch: %v", err)
			refused++
			continue
		}
		acked = append(acked, id)
	}
	require.Positive(t, refused, "the queue must fill")
	metadatatest.AssertEqualExporterDiskqueueRefused(t, tel, []metricdata.DataPoint[int64]{{
		Attributes: attribute.NewSet(attribute.String("signal", "logs"), attribute.String("reason", "full")), Value: int64(refused),
	}, {
		Attributes: attribute.NewSet(attribute.String("signal", "logs"), attribute.String("reason", "degraded")), Value: 0,
	}}, metricdatatestIgnore()...)
	sink.mode.Store(sinkUp)
	assert.Eventually(t, func() bool { return len(sink.received()) >= len(acked) }, 10*time.Second, 10*time.Millisecond)
	assert.Equal(t, acked, sink.received(), "every acknowledged batch, nothing else")
	require.NoError(t, exp.Shutdown(context.Background()))
}
