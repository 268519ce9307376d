package gateway

import (
	"context"
	"encoding/hex"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/fieldcol/fieldcol/e2e/internal/harness"
	"github.com/fieldcol/fieldcol/internal/otlpsink"
	"github.com/fieldcol/fieldcol/internal/promtest"
)

// startStoreSampler runs sampler.yaml against real stores; an empty store address points
// that exporter at a closed loopback port.
func startStoreSampler(t testing.TB, tracesAddr, logsURL, remoteWriteURL string, env ...string) *harness.Collector {
	t.Helper()
	if tracesAddr == "" {
		tracesAddr = harness.ClosedAddr(t)
	}
	if logsURL == "" {
		logsURL = "http://" + harness.ClosedAddr(t) + "/insert/opentelemetry/v1/logs"
	}
	if remoteWriteURL == "" {
		remoteWriteURL = "http://" + harness.ClosedAddr(t) + "/api/v1/write"
	}
	base := []string{
		"FIELDCOL_STORAGE_DIR=" + t.TempDir(),
		"FIELDCOL_TRACES_ENDPOINT=" + tracesAddr,
		"FIELDCOL_LOGS_ENDPOINT=" + logsURL,
		"FIELDCOL_REMOTE_WRITE_ENDPOINT=" + remoteWriteURL,
		"FIELDCOL_INSTANCE=sampler-0",
		"FIELDCOL_DECISION_WAIT=2s",
	}
	return harness.StartCollector(t, harness.Binary(t, "fieldcol-gateway"), []string{harness.Shipped("distributions/gateway/sampler.yaml")}, append(base, env...)...)
}

// edgeToGateway gives the edge's disk queue the fleet's token for the load-balancing tier
// (the shipped edge config sends to FIELDCOL_GATEWAY_ENDPOINT without one).
func edgeToGateway(t testing.TB) string {
	return harness.Overlay(t, fmt.Sprintf(`
exporters:
  diskqueue:
    http:
      headers:
        authorization: "Bearer %s"
`, gatewayToken))
}

// restamp moves every data point to now: remote-write stores refuse samples from 2023.
func restamp(md pmetric.Metrics) {
	now := pcommon.NewTimestampFromTime(time.Now())
	startTS := pcommon.NewTimestampFromTime(time.Now().Add(-time.Minute))
	for _, rm := range md.ResourceMetrics().All() {
		for _, sm := range rm.ScopeMetrics().All() {
			for _, m := range sm.Metrics().All() {
				switch m.Type() {
				case pmetric.MetricTypeGauge:
					for _, dp := range m.Gauge().DataPoints().All() {
						dp.SetTimestamp(now)
					}
				case pmetric.MetricTypeSum:
					for _, dp := range m.Sum().DataPoints().All() {
						dp.SetStartTimestamp(startTS)
						dp.SetTimestamp(now)
					}
				}
			}
		}
	}
}

// deviceLogs are log records of now (the log store keeps a limited past), one resource.
func deviceLogs(run string, bodies ...string) plog.Logs {
	ld := plog.NewLogs()
	rl := ld.ResourceLogs().AppendEmpty()
	rl.Resource().Attributes().PutStr("service.name", "conveyor-app")
	rl.Resource().Attributes().PutStr(harness.RunKey, run)
	sl := rl.ScopeLogs().AppendEmpty()
	sl.Scope().SetName("e2e")
	for i, body := range bodies {
		lr := sl.LogRecords().AppendEmpty()
		lr.SetTimestamp(pcommon.NewTimestampFromTime(time.Now()))
		lr.SetSeverityNumber(plog.SeverityNumberWarn)
		lr.SetSeverityText("WARN")
		lr.Body().SetStr(body)
		lr.Attributes().PutStr("belt", "b1")
		lr.Attributes().PutInt("seq", int64(i))
	}
	return ld
}

func tagValue(tags []struct {
	Key   string `json:"key"`
	Value any    `json:"value"`
}, key string) string {
	for _, tag := range tags {
		if tag.Key == key {
			return fmt.Sprint(tag.Value)
		}
	}
	return ""
}

// Metrics, traces and logs sent to fieldcol-edge travel through the load-balancing and
// sampler tiers into real stores, Prometheus (remote write), Jaeger (OTLP) and
// VictoriaLogs (OTLP/HTTP), and come out of each with the device's resource attributes
// and with the personal data the edge masked already masked.
func TestGatewayTierDeliversIntoStores(t *testing.T) {
	prom := promtest.Start(t, promtest.Options{RemoteWriteReceiver: true})
	logs := harness.StartVictoriaLogs(t)
	traces := harness.StartJaeger(t)
	s := startStoreSampler(t, traces.OTLPGRPC, logs.OTLPLogsURL(), prom.URL()+"/api/v1/write")
	lb := startLB(t, []string{s.OTLPGRPC})
	edge := harness.StartCollector(t, harness.Binary(t, "fieldcol-edge"),
		[]string{harness.Shipped("distributions/edge/config.yaml"), edgeToGateway(t)},
		"FIELDCOL_HOST_NAME=e2e-host", "FIELDCOL_DEVICE_ID=pi-oven-7",
		harness.GatewayAt("https://"+lb.OTLPHTTP), "FIELDCOL_GATEWAY_CA_FILE="+lb.pki.CAFile)

	client, err := otlpsink.Dial(edge.OTLPGRPC)
	require.NoError(t, err)
	defer client.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	run := fmt.Sprintf("stores-%d", time.Now().UnixNano())
	// Personal data the edge's piiredaction masks before anything leaves the device.
	const email, resident = "jane.doe@example.com", "Hanako Sato"
	md := harness.SampleMetrics(run)
	restamp(md)
	md.ResourceMetrics().At(0).ScopeMetrics().At(0).Metrics().At(0).Gauge().DataPoints().At(0).Attributes().PutStr("resident_id", "R-20931")
	require.NoError(t, client.SendMetrics(ctx, md))
	// Three one-span traces; tail sampling keeps the one whose span has status ERROR.
	td := harness.SampleTraces(run)
	td.ResourceSpans().At(0).ScopeSpans().At(0).Spans().At(2).Attributes().PutStr("resident_name", resident)
	require.NoError(t, client.SendTraces(ctx, td))
	ld := deviceLogs(run, "belt b1 jammed at station 4, operator "+email+" paged", "belt b1 restarted")
	ld.ResourceLogs().At(0).ScopeLogs().At(0).LogRecords().At(0).Attributes().PutStr("user.email", email)
	require.NoError(t, client.SendLogs(ctx, ld))
	// A device that redacts nothing (an OTLP client straight to the load balancer): the load
	// balancers' piiredaction masks before routing, also in error.message, which only the
	// control loop's own records may keep.
	raw := deviceLogs(run, "direct: login failed for "+email)
	raw.ResourceLogs().At(0).Resource().Attributes().PutStr("device.id", "pi-oven-7")
	raw.ResourceLogs().At(0).ScopeLogs().At(0).LogRecords().At(0).Attributes().PutStr("error.message", "no such user "+email)
	require.NoError(t, lb.dial(t).SendLogs(withToken(ctx), raw))

	t.Run("Prometheus", func(t *testing.T) {
		got := prom.WaitFor(t, fmt.Sprintf(`e2e_belt_speed_meters_per_second{e2e_run=%q}`, run), 90*time.Second)
		require.Len(t, got, 1)
		assert.Equal(t, 0.75, got[0].Value)
		assert.Equal(t, "pi-oven-7", got[0].Labels["device_id"])
		assert.Equal(t, "e2e-host", got[0].Labels["host_name"])
		assert.Equal(t, "conveyor-app", got[0].Labels["service_name"])
		assert.Equal(t, "****", got[0].Labels["resident_id"], "PII in a metric label")
		pallets := prom.WaitFor(t, fmt.Sprintf(`e2e_pallets_total{e2e_run=%q}`, run), 30*time.Second)
		assert.Equal(t, 1234.0, pallets[0].Value)
	})

	t.Run("Jaeger", func(t *testing.T) {
		kept := pcommon.TraceID{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 2}
		id := hex.EncodeToString(kept[:])
		var found []harness.JaegerTrace
		harness.WaitUntil(t, 90*time.Second, 500*time.Millisecond, func() (bool, string) {
			var err error
			found, err = traces.Traces(ctx, "/api/traces/"+id)
			return err == nil && len(found) == 1 && len(found[0].Spans) == 1, fmt.Sprintf("trace %s in Jaeger: %v %+v", id, err, found)
		})
		span := found[0].Spans[0]
		assert.Equal(t, "move-pallet", span.OperationName)
		assert.Equal(t, "ERROR", tagValue(span.Tags, "otel.status_code"))
		assert.Equal(t, "****", tagValue(span.Tags, "resident_name"), "PII in a span attribute")
		proc := found[0].Processes[span.ProcessID]
		assert.Equal(t, "conveyor-app", proc.ServiceName)
		assert.Equal(t, "pi-oven-7", tagValue(proc.Tags, "device.id"))
		assert.Equal(t, "e2e-host", tagValue(proc.Tags, "host.name"))
		assert.Equal(t, run, tagValue(proc.Tags, harness.RunKey))

		// By service over the spans' time range (2023-11-14), as a person searches.
		search, err := traces.Traces(ctx, "/api/traces?service=conveyor-app&start=1699999990000000&end=1700000010000000&limit=50")
		require.NoError(t, err)
		var ids []string
		for _, tr := range search {
			ids = append(ids, tr.TraceID)
		}
		assert.Contains(t, ids, id)
	})

	t.Run("VictoriaLogs", func(t *testing.T) {
		filter := fmt.Sprintf(`"device.id":="pi-oven-7" AND %q:=%q`, harness.RunKey, run)
		var rows []map[string]string
		harness.WaitUntil(t, 90*time.Second, 500*time.Millisecond, func() (bool, string) {
			var err error
			rows, err = logs.Query(ctx, filter)
			return err == nil && len(rows) == 3, fmt.Sprintf("logs in VictoriaLogs for %s: %v %v", filter, err, rows)
		})
		msgs := map[string]map[string]string{}
		for _, r := range rows {
			msgs[r["_msg"]] = r
		}
		// The address in the body is masked where it stood.
		require.Contains(t, msgs, "belt b1 jammed at station 4, operator **** paged")
		r := msgs["belt b1 jammed at station 4, operator **** paged"]
		assert.Equal(t, "e2e-host", r["host.name"])
		assert.Equal(t, "conveyor-app", r["service.name"])
		assert.Equal(t, "b1", r["belt"])
		assert.Equal(t, "WARN", r["severity_text"])
		assert.Equal(t, "****", r["user.email"], "PII in a log attribute")
		require.Contains(t, msgs, "direct: login failed for ****", "redacted by the load-balancing tier")
		assert.Equal(t, "no such user ****", msgs["direct: login failed for ****"]["error.message"])
		for _, row := range rows {
			for k, v := range row {
				assert.NotContains(t, v, email, "field %s of a stored log record", k)
			}
		}
	})

	edge.Stop(t)
	lb.Stop(t)
	s.Stop(t)
}

// storeOutage stops a store for 60 s while the test's load runs, sampling the sampler's
// queue every second, starts it again and keeps the load on for 5 s more. It returns when
// the store went down, the largest backlog seen, and when the store was back.
func storeOutage(t *testing.T, ctx context.Context, queued func() float64, stopStore, startStore func()) (down time.Time, maxQueued float64, up time.Time) {
	t.Helper()
	stopStore()
	down = time.Now()
	for time.Since(down) < 60*time.Second {
		maxQueued = max(maxQueued, queued())
		select {
		case <-ctx.Done():
			t.Fatal("timed out during the outage")
		case <-time.After(time.Second):
		}
	}
	startStore()
	up = time.Now()
	time.Sleep(5 * time.Second) // load on a store that is back, before the load stops
	return down, maxQueued, up
}

// The log store goes down for 60 s while devices keep sending: the sampler's disk queue
// takes the backlog, retries, and drains it when the store is back; every record the
// gateway acknowledged is in the store afterwards.
func TestGatewayTierLogStoreOutage(t *testing.T) {
	store := harness.StartVictoriaLogs(t)
	s := startStoreSampler(t, "", store.OTLPLogsURL(), "")
	lb := startLB(t, []string{s.OTLPGRPC})
	client := lb.dial(t)
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()
	run := fmt.Sprintf("outage-%d", time.Now().UnixNano())
	bodies := make([]string, 20)
	for i := range bodies {
		bodies[i] = fmt.Sprintf("robot r%d reached waypoint %d", i%5, i)
	}

	// Load: 20 records every 100 ms (200/s) until told to stop, at most 15 minutes' worth.
	var acked, refused atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for range 9000 {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			if err := client.SendLogs(withToken(ctx), deviceLogs(run, bodies...)); err != nil {
				refused.Add(int64(len(bodies)))
				continue
			}
			acked.Add(int64(len(bodies)))
		}
	}()
	filter := fmt.Sprintf(`%q:=%q`, harness.RunKey, run)
	queued := func() float64 {
		v, err := s.ScrapeSum("otelcol_exporter_queue_size", `exporter="otlp_http/logs"`)
		if err != nil {
			return -1
		}
		return v
	}

	harness.WaitUntil(t, 60*time.Second, 500*time.Millisecond, func() (bool, string) {
		n, err := store.Count(ctx, filter)
		return err == nil && n > 0, fmt.Sprintf("no record reached the store before the outage: %d, %v", n, err)
	})

	var ackedDuringOutage int64
	_, maxQueued, up := storeOutage(t, ctx, queued,
		func() { require.NoError(t, store.Proc.Stop(15*time.Second), "stopping the log store") },
		func() {
			ackedDuringOutage = acked.Load()
			store = store.Restart(t)
		})
	close(stop)
	wg.Wait()

	want := acked.Load()
	var got int
	harness.WaitUntil(t, 3*time.Minute, time.Second, func() (bool, string) {
		var err error
		got, err = store.Count(ctx, filter)
		q := queued()
		return err == nil && got >= int(want) && q == 0,
			fmt.Sprintf("records in the store: %d (%v), acknowledged by the gateway: %d; queue %v", got, err, want, q)
	})
	drained := time.Since(up)
	assert.Equal(t, int(want), got, "records in the store, acknowledged by the gateway")
	assert.Greater(t, maxQueued, 0.0, "the sampler's logs queue never held a backlog during the outage")
	assert.Zero(t, s.MustScrape(t, "otelcol_exporter_send_failed_log_records", `exporter="otlp_http/logs"`), "records the sampler gave up on")
	assert.Zero(t, refused.Load(), "records the gateway refused (the disk queue should absorb a 60 s outage)")
	t.Logf("log store down 60 s under 200 records/s: %d records acknowledged (%d by the end of the outage), largest backlog %.0f queued requests, drained %s after the store came back; %d in the store",
		want, ackedDuringOutage, maxQueued, drained.Round(time.Second), got)

	lb.Stop(t)
	s.Stop(t)
}

// The trace store goes down for 60 s while devices keep sending traces that tail sampling
// keeps: the sampler's disk queue holds them and drains when Jaeger is back. Jaeger's memory
// storage forgets what it had when it stops, so the check is on every trace the gateway
// acknowledged after the store went down: none may be missing.
func TestGatewayTierTraceStoreOutage(t *testing.T) {
	store := harness.StartJaeger(t)
	s := startStoreSampler(t, store.OTLPGRPC, "", "")
	lb := startLB(t, []string{s.OTLPGRPC})
	client := lb.dial(t)
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()
	service := fmt.Sprintf("robot-nav-%d", time.Now().UnixNano())
	begin := time.Now()

	// Load: 5 one-span error traces every 100 ms (50 traces/s), each acknowledged trace
	// recorded with the time of its acknowledgement.
	type ackedTrace struct {
		id string
		at time.Time
	}
	var mu sync.Mutex
	var acked []ackedTrace
	var refused atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for n := 0; n < 9000; n++ {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			td := ptrace.NewTraces()
			rs := td.ResourceSpans().AppendEmpty()
			rs.Resource().Attributes().PutStr("service.name", service)
			ss := rs.ScopeSpans().AppendEmpty()
			var ids []string
			for k := range 5 {
				var id pcommon.TraceID
				id[0], id[1], id[2], id[3], id[15] = byte(n>>24), byte(n>>16), byte(n>>8), byte(n), byte(k+1)
				sp := ss.Spans().AppendEmpty()
				sp.SetTraceID(id)
				sp.SetSpanID(pcommon.SpanID{byte(n >> 8), byte(n), byte(k), 1, 2, 3, 4, 5})
				sp.SetName("plan-route")
				now := time.Now()
				sp.SetStartTimestamp(pcommon.NewTimestampFromTime(now.Add(-20 * time.Millisecond)))
				sp.SetEndTimestamp(pcommon.NewTimestampFromTime(now))
				sp.Status().SetCode(ptrace.StatusCodeError)
				ids = append(ids, hex.EncodeToString(id[:]))
			}
			if err := client.SendTraces(withToken(ctx), td); err != nil {
				refused.Add(int64(len(ids)))
				continue
			}
			at := time.Now()
			mu.Lock()
			for _, id := range ids {
				acked = append(acked, ackedTrace{id: id, at: at})
			}
			mu.Unlock()
		}
	}()
	stored := func() (map[string]bool, error) {
		found, err := store.Traces(ctx, fmt.Sprintf("/api/traces?service=%s&start=%d&end=%d&limit=100000",
			service, begin.Add(-time.Minute).UnixMicro(), time.Now().Add(time.Minute).UnixMicro()))
		ids := map[string]bool{}
		for _, tr := range found {
			ids[tr.TraceID] = true
		}
		return ids, err
	}
	queued := func() float64 {
		v, err := s.ScrapeSum("otelcol_exporter_queue_size", `exporter="otlp_grpc/traces"`)
		if err != nil {
			return -1
		}
		return v
	}

	harness.WaitUntil(t, 60*time.Second, 500*time.Millisecond, func() (bool, string) {
		ids, err := stored()
		return err == nil && len(ids) > 0, fmt.Sprintf("no trace reached the store before the outage: %v", err)
	})
	down, maxQueued, up := storeOutage(t, ctx, queued,
		func() { require.NoError(t, store.Proc.Stop(15*time.Second), "stopping the trace store") },
		func() { store = store.Restart(t) })
	close(stop)
	wg.Wait()

	mu.Lock()
	var want []string
	for _, a := range acked {
		if !a.at.Before(down) {
			want = append(want, a.id)
		}
	}
	mu.Unlock()
	require.NotEmpty(t, want)
	var missing []string
	harness.WaitUntil(t, 3*time.Minute, time.Second, func() (bool, string) {
		ids, err := stored()
		missing = missing[:0]
		for _, id := range want {
			if !ids[id] {
				missing = append(missing, id)
			}
		}
		q := queued()
		return err == nil && len(missing) == 0 && q == 0,
			fmt.Sprintf("%d of %d traces acknowledged since the outage began are missing (%v), queue %v, %v", len(missing), len(want), first(missing), q, err)
	})
	drained := time.Since(up)
	assert.Greater(t, maxQueued, 0.0, "the sampler's traces queue never held a backlog during the outage")
	assert.Zero(t, s.MustScrape(t, "otelcol_exporter_send_failed_spans", `exporter="otlp_grpc/traces"`), "spans the sampler gave up on")
	assert.Zero(t, refused.Load(), "traces the gateway refused (the disk queue should absorb a 60 s outage)")
	t.Logf("trace store down 60 s under 50 kept traces/s: %d traces acknowledged from the outage on, all in the store; largest backlog %.0f queued requests, drained %s after the store came back",
		len(want), maxQueued, drained.Round(time.Second))

	lb.Stop(t)
	s.Stop(t)
}
