package gateway

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlpmetric/otlpmetrichttp"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/metric"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/semconv/v1.43.0/httpconv"
	"go.opentelemetry.io/otel/trace"
	"go.yaml.in/yaml/v3"

	"github.com/fieldcol/fieldcol/alerts/contract"
	"github.com/fieldcol/fieldcol/dashboards"
	"github.com/fieldcol/fieldcol/e2e/internal/harness"
	"github.com/fieldcol/fieldcol/internal/promtest"
)

// fleetDashboards are the fleet document's hierarchy (dashboards/fleetapps.go).
var fleetDashboards = []string{"fieldcol-executive.json", "fieldcol-operations.json", "fieldcol-engineering.json", "fieldcol-vehicle.json"}

// fleetApp is a robot's application as docs/fleet-telemetry.md asks it to be written, with
// the official OpenTelemetry Go SDK and its OTLP/HTTP exporters (nothing of fieldcol's):
// missions, battery, a heartbeat, and the semantic conventions' HTTP server duration
// and server spans.
type fleetApp struct {
	mp        *sdkmetric.MeterProvider
	tp        *sdktrace.TracerProvider
	missions  metric.Int64Counter
	battery   metric.Float64Gauge
	heartbeat metric.Int64Counter
	duration  httpconv.ServerRequestDuration
	tracer    trace.Tracer
}

func startFleetApp(t *testing.T, ctx context.Context, edgeOTLPHTTP, service string) *fleetApp {
	t.Helper()
	res := resource.NewSchemaless(semconv.ServiceName(service))
	mexp, err := otlpmetrichttp.New(ctx, otlpmetrichttp.WithEndpoint(edgeOTLPHTTP), otlpmetrichttp.WithInsecure())
	require.NoError(t, err)
	texp, err := otlptracehttp.New(ctx, otlptracehttp.WithEndpoint(edgeOTLPHTTP), otlptracehttp.WithInsecure())
	require.NoError(t, err)
	// One second instead of the documented 10 s, so that the test waits less.
	a := &fleetApp{
		mp: sdkmetric.NewMeterProvider(sdkmetric.WithResource(res),
			sdkmetric.WithReader(sdkmetric.NewPeriodicReader(mexp, sdkmetric.WithInterval(time.Second)))),
		tp: sdktrace.NewTracerProvider(sdktrace.WithResource(res), sdktrace.WithBatcher(texp, sdktrace.WithBatchTimeout(time.Second))),
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = a.mp.Shutdown(ctx)
		_ = a.tp.Shutdown(ctx)
	})
	m := a.mp.Meter("fleet-app")
	a.missions, err = m.Int64Counter("missions", metric.WithUnit("{mission}"), metric.WithDescription("Missions that ended, by status."))
	require.NoError(t, err)
	a.battery, err = m.Float64Gauge("vehicle.battery.level", metric.WithUnit("1"), metric.WithDescription("State of charge, 0..1."))
	require.NoError(t, err)
	a.heartbeat, err = m.Int64Counter("vehicle.heartbeat", metric.WithUnit("{heartbeat}"), metric.WithDescription("One every 10 s while the software runs."))
	require.NoError(t, err)
	a.duration, err = httpconv.NewServerRequestDuration(m)
	require.NoError(t, err)
	a.tracer = a.tp.Tracer("fleet-app")
	return a
}

// serve records one HTTP request the app answered, as metric and server span.
func (a *fleetApp) serve(ctx context.Context, method httpconv.RequestMethodAttr, route string, status int, took time.Duration) {
	attrs := []attribute.KeyValue{semconv.HTTPRoute(route), semconv.HTTPResponseStatusCode(status)}
	_, span := a.tracer.Start(ctx, string(method)+" "+route, trace.WithSpanKind(trace.SpanKindServer),
		trace.WithAttributes(append(attrs, semconv.HTTPRequestMethodKey.String(string(method)))...))
	if status >= 500 {
		span.SetStatus(2, "server error") // codes.Error
	}
	span.End()
	a.duration.Record(ctx, took.Seconds(), method, "http", attrs...)
}

// The fleet's telemetry, sent by the official OTel Go SDK to a fieldcol-edge on a robot,
// travels through the edge's disk queue, the gateway's load-balancing tier (TLS, token) and
// a sampler into a real Prometheus (remote write) loaded with the shipped rules. The
// Prometheus names are those docs/fleet-telemetry.md promises, with the robot's identity;
// every panel of the four fleet dashboards returns data; the fleet document's alerts
// evaluate on the real series (BruteForceAttempt fires, VehicleLowBattery and HighErrorRate
// are pending or firing); and the gateway rules' metrics are where those rules read them.
func TestFleetTelemetryThroughEdgeAndGateway(t *testing.T) {
	prom := promtest.Start(t, promtest.Options{RemoteWriteReceiver: true, RuleFiles: harness.ShippedRuleFiles(t)})
	s := startSampler(t, "sampler-0", prom.URL()+"/api/v1/write")
	lb := startLB(t, []string{s.OTLPGRPC})
	edge := harness.StartCollector(t, harness.Binary(t, "fieldcol-edge"),
		[]string{harness.Shipped("distributions/edge/config.yaml"), edgeToGateway(t)},
		"FIELDCOL_HOST_NAME=robot-7-host", "FIELDCOL_DEVICE_ID=robot-7", "FIELDCOL_HW_INTERVAL=1s",
		harness.GatewayAt("https://"+lb.OTLPHTTP), "FIELDCOL_GATEWAY_CA_FILE="+lb.pki.CAFile)

	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	app := startFleetApp(t, ctx, edge.OTLPHTTP, "mission-api")

	// The heartbeat beats every second (10 s in production) until the test ends.
	var wg sync.WaitGroup
	beat, stop := context.WithCancel(ctx)
	wg.Add(1)
	go func() {
		defer wg.Done()
		tick := time.NewTicker(time.Second)
		defer tick.Stop()
		for {
			app.heartbeat.Add(beat, 1)
			select {
			case <-beat.Done():
				return
			case <-tick.C:
			}
		}
	}()
	defer func() { stop(); wg.Wait() }()

	app.battery.Record(ctx, 0.15)
	for range 40 {
		app.missions.Add(ctx, 1, metric.WithAttributes(attribute.String("status", "success")))
	}
	app.missions.Add(ctx, 3, metric.WithAttributes(attribute.String("status", "failure")))
	app.missions.Add(ctx, 1, metric.WithAttributes(attribute.String("status", "aborted")))
	for i := range 50 {
		app.serve(ctx, httpconv.RequestMethodGet, "/api/missions/{id}", 200, time.Duration(5+i)*time.Millisecond)
		app.serve(ctx, httpconv.RequestMethodPost, "/api/missions", 200, 40*time.Millisecond)
	}
	// rate() and increase() count from a series' first sample: let Prometheus see one 503,
	// one 401 and one refused command before the bursts that must cross HighErrorRate's 5%
	// and BruteForceAttempt's 20.
	app.serve(ctx, httpconv.RequestMethodPost, "/api/missions", 503, 2*time.Second)
	app.serve(ctx, httpconv.RequestMethodPost, "/api/login", 401, 3*time.Millisecond)
	status, _ := edge.Call(t, http.MethodPost, "/api/v1/commands", "", `{"command":"SET_MOTOR","loop":"conveyor","on":true}`)
	require.Equal(t, http.StatusUnauthorized, status)

	t.Run("the names docs/fleet-telemetry.md promises", func(t *testing.T) {
		for _, c := range []struct {
			expr string
			want float64
		}{
			{`missions_total{device_id="robot-7",status="success"}`, 40},
			{`missions_total{device_id="robot-7",status="failure"}`, 3},
			{`missions_total{device_id="robot-7",status="aborted"}`, 1},
			{`vehicle_battery_level_ratio{device_id="robot-7"}`, 0.15},
			{`http_server_request_duration_seconds_count{device_id="robot-7",http_route="/api/missions",http_request_method="POST",http_response_status_code="503"}`, 1},
			{`http_server_request_duration_seconds_count{device_id="robot-7",http_route="/api/login",http_request_method="POST",http_response_status_code="401"}`, 1},
		} {
			got := prom.WaitFor(t, c.expr, 90*time.Second)
			require.Len(t, got, 1, c.expr)
			assert.Equal(t, c.want, got[0].Value, c.expr)
			assert.Equal(t, "mission-api", got[0].Labels["service_name"], c.expr)
			assert.Equal(t, "robot-7-host", got[0].Labels["host_name"], c.expr)
		}
		prom.WaitFor(t, `vehicle_heartbeat_total{device_id="robot-7",service_name="mission-api"} > 3`, 60*time.Second)
		prom.WaitFor(t, `http_server_request_duration_seconds_bucket{device_id="robot-7",http_route="/api/missions/{id}",le="0.025"}`, 30*time.Second)
		// The server spans reach the sampler's span_metrics (before tail sampling).
		prom.WaitFor(t, `traces_span_metrics_calls_total{service_name="mission-api",span_kind="SPAN_KIND_SERVER"}`, 90*time.Second)
	})

	// The bursts, now that Prometheus has the counters' first samples.
	prom.WaitFor(t, `controlloop_commands_total{device_id="robot-7",result="unauthorized"}`, 60*time.Second)
	for range 20 {
		app.serve(ctx, httpconv.RequestMethodPost, "/api/missions", 503, 2*time.Second)
		app.serve(ctx, httpconv.RequestMethodPost, "/api/missions", 200, 40*time.Millisecond)
	}
	for range 24 {
		app.serve(ctx, httpconv.RequestMethodPost, "/api/login", 401, 3*time.Millisecond)
	}
	for range 2 {
		status, _ := edge.Call(t, http.MethodPost, "/api/v1/commands", "", `{"command":"SET_MOTOR","loop":"conveyor","on":true}`)
		require.Equal(t, http.StatusUnauthorized, status)
	}

	t.Run("the fleet document's alerts evaluate on the real series", func(t *testing.T) {
		prom.WaitFor(t, `ALERTS{alertname="BruteForceAttempt",device_id="robot-7",alertstate="firing"}`, 90*time.Second)
		prom.WaitFor(t, `ALERTS{alertname="VehicleLowBattery",device_id="robot-7"}`, 60*time.Second)
		prom.WaitFor(t, `ALERTS{alertname="HighErrorRate",service_name="mission-api"}`, 60*time.Second)
		assert.Empty(t, harness.QueryNow(t, prom, `ALERTS{alertname=~"VehicleOffline|DeviceSilent"}`), "a reporting vehicle is neither offline nor silent")
		assert.NotEmpty(t, harness.QueryNow(t, prom, `vehicle:heartbeat_last:timestamp{device_id="robot-7"}`))
	})

	t.Run("every panel of the fleet dashboards returns data", func(t *testing.T) {
		qs := fleetQueries(t)
		withData, panels, empty := harness.PanelsWithData(t, prom, qs, map[string]string{"device_id": ".*", "datasource": "prometheus"}, "1m")
		for p := range panels {
			assert.True(t, withData[p], "%s returns no data", p)
		}
		t.Logf("%d of %d panels of the fleet dashboards return data; empty queries: %v", len(withData), len(panels), empty)
	})

	t.Run("every metric the fleet rules and dashboards read is in Prometheus", func(t *testing.T) {
		names := map[string]bool{}
		for _, q := range fleetQueries(t) {
			for _, n := range contract.MetricNames(q.Expr) {
				names[n] = true
			}
		}
		for _, n := range ruleNames(t, "vehicles.yaml") {
			names[n] = true
		}
		// hw_errors_total is born at a sensor's first failed read, which this run has none of.
		var missing []string
		for n := range names {
			if strings.Contains(n, ":") || n == "hw_errors_total" {
				continue
			}
			if len(harness.QueryNow(t, prom, fmt.Sprintf(`count({__name__=%q})`, n))) == 0 {
				missing = append(missing, n)
			}
		}
		sort.Strings(missing)
		assert.Empty(t, missing)
	})

	// The gateway rules read the tiers' own metrics from their telemetry port; those that
	// are born at a first failure (enqueue_failed, send_failed) the tier's outage tests see.
	t.Run("the gateway rules' metrics are on the tiers' telemetry port", func(t *testing.T) {
		for _, c := range []struct{ url, name string }{
			{lb.Telemetry, "otelcol_exporter_queue_size"},
			{lb.Telemetry, "otelcol_exporter_queue_capacity"},
			{s.Telemetry, "otelcol_exporter_queue_size"},
			{s.Telemetry, "otelcol_exporter_queue_capacity"},
			{s.Telemetry, "otelcol_exporter_prometheusremotewrite_wal_lag"},
		} {
			harness.WaitUntil(t, 30*time.Second, 500*time.Millisecond, func() (bool, string) {
				_, found := harness.MetricsSum("http://"+c.url+"/metrics", c.name)
				return found, c.name + " on " + c.url
			})
		}
	})
	edge.Stop(t)
	lb.Stop(t)
	s.Stop(t)
}

func fleetQueries(t *testing.T) []dashboards.PanelQuery {
	t.Helper()
	dir := t.TempDir()
	for _, f := range fleetDashboards {
		raw := harness.ReadFile(t, harness.Shipped(filepath.Join("dashboards", "json", f)))
		require.NoError(t, os.WriteFile(filepath.Join(dir, f), raw, 0o600))
	}
	qs, err := dashboards.Queries(dir)
	require.NoError(t, err)
	require.NotEmpty(t, qs)
	return qs
}

// ruleNames returns the metric names the alert rules of alerts/rules/<file> read.
func ruleNames(t *testing.T, file string) []string {
	t.Helper()
	var rf struct {
		Groups []struct {
			Rules []struct {
				Expr string `yaml:"expr"`
			} `yaml:"rules"`
		} `yaml:"groups"`
	}
	require.NoError(t, yaml.Unmarshal(harness.ReadFile(t, harness.Shipped(filepath.Join("alerts", "rules", file))), &rf))
	var out []string
	for _, g := range rf.Groups {
		for _, r := range g.Rules {
			out = append(out, contract.MetricNames(r.Expr)...)
		}
	}
	require.NotEmpty(t, out)
	return out
}
