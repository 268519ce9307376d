package gateway

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/fieldcol/fieldcol/e2e/internal/harness"
	"github.com/fieldcol/fieldcol/internal/otlpsink"
	"github.com/fieldcol/fieldcol/internal/promtest"
)

// TLS at the door: the load balancer serves its OTLP receivers over TLS with a certificate
// of a CA the test made (tls.crt, tls.key and ca.crt, as cert-manager fills a Secret), and
// requires client certificates of the same CA (mTLS). An edge whose disk queue trusts that
// CA and presents a device certificate delivers through the tier; an edge that trusts
// another CA sends nothing and keeps its data queued; a device without a certificate,
// plain HTTP and plain gRPC are refused even with the right token.
func TestGatewayTierTLSAtTheDoor(t *testing.T) {
	prom := promtest.Start(t, promtest.Options{RemoteWriteReceiver: true})
	s := startSampler(t, "sampler-0", prom.URL()+"/api/v1/write", "FIELDCOL_SAMPLE_PERCENTAGE=100", "FIELDCOL_DECISION_WAIT=1s")
	lb := startDoor(t, []string{s.OTLPGRPC}, true)
	other := harness.NewPKI(t, "someone-elses-ca")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	t.Run("an edge that trusts the gateway's CA delivers", func(t *testing.T) {
		edge := edgeVia(t, lb, lb.pki.CAFile, "pi-trusting")
		run := fmt.Sprintf("tls-good-%d", time.Now().UnixNano())
		td := harness.SampleTraces(run)
		sendVia(t, edge, td)
		harness.WaitUntil(t, 90*time.Second, 200*time.Millisecond, func() (bool, string) {
			n := runSpans(s, run)
			return n == td.SpanCount(), fmt.Sprintf("spans at the sampler's trace store: %d of %d", n, td.SpanCount())
		})
	})

	t.Run("an edge that trusts another CA sends nothing and keeps it queued", func(t *testing.T) {
		edge := edgeVia(t, lb, other.CAFile, "pi-wrong-ca")
		run := fmt.Sprintf("tls-wrong-ca-%d", time.Now().UnixNano())
		sendVia(t, edge, harness.SampleTraces(run))
		harness.WaitUntil(t, 60*time.Second, 200*time.Millisecond, func() (bool, string) {
			return strings.Contains(edge.Proc.Log(), "certificate signed by unknown authority"), "the edge's log names the unknown authority"
		})
		queued, err := edge.ScrapeSum("otelcol_exporter_diskqueue_records", `signal="traces"`)
		require.NoError(t, err)
		assert.Positive(t, queued, "records kept in the edge's queue")
		assert.Zero(t, runSpans(s, run), "spans that got past a certificate the edge does not trust")
	})

	td := harness.SampleTraces(fmt.Sprintf("tls-refused-%d", time.Now().UnixNano()))
	refused := func(t *testing.T, client *otlpsink.Client, why string) {
		t.Helper()
		defer client.Close()
		err := client.SendTraces(withToken(ctx), td)
		require.Error(t, err, why)
		assert.Equal(t, codes.Unavailable, status.Code(err), "%v", err)
	}

	t.Run("a device without a client certificate is refused", func(t *testing.T) {
		client, err := otlpsink.DialTLS(lb.OTLPGRPC, lb.pki.ClientTLS(false))
		require.NoError(t, err)
		refused(t, client, "TLS without a client certificate")
	})

	t.Run("a client that trusts another CA does not talk to it", func(t *testing.T) {
		client, err := otlpsink.DialTLS(lb.OTLPGRPC, other.ClientTLS(true))
		require.NoError(t, err)
		defer client.Close()
		err = client.SendTraces(withToken(ctx), td)
		require.Error(t, err)
		assert.Contains(t, err.Error(), "certificate signed by unknown authority")
	})

	t.Run("plain gRPC is refused", func(t *testing.T) {
		client, err := otlpsink.Dial(lb.OTLPGRPC)
		require.NoError(t, err)
		refused(t, client, "plain gRPC")
	})

	t.Run("plain HTTP is refused", func(t *testing.T) {
		body, err := ptraceotlp.NewExportRequestFromTraces(td).MarshalProto()
		require.NoError(t, err)
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+lb.OTLPHTTP+"/v1/traces", bytes.NewReader(body))
		require.NoError(t, err)
		req.Header.Set("Content-Type", "application/x-protobuf")
		req.Header.Set("Authorization", "Bearer "+gatewayToken)
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
			assert.Equal(t, http.StatusBadRequest, resp.StatusCode, "a TLS server answers plain HTTP with 400")
		}
	})

	t.Run("with a device certificate and the token it goes through", func(t *testing.T) {
		client, err := otlpsink.DialTLS(lb.OTLPGRPC, lb.pki.ClientTLS(true))
		require.NoError(t, err)
		defer client.Close()
		require.NoError(t, client.SendTraces(withToken(ctx), td))
	})
	assert.Zero(t, s.MustScrape(t, "otelcol_receiver_refused_spans"), "spans the sampler refused")
	lb.Stop(t)
	s.Stop(t)
}

// edgeVia runs an edge whose disk queue sends to the load balancer over HTTPS, trusting
// caFile and presenting the device certificate of the load balancer's CA.
func edgeVia(t *testing.T, lb door, caFile, device string) *harness.Collector {
	t.Helper()
	return harness.StartCollector(t, harness.Binary(t, "fieldcol-edge"),
		[]string{harness.Shipped("distributions/edge/config.yaml"), edgeToGateway(t)},
		"FIELDCOL_HOST_NAME="+device, "FIELDCOL_DEVICE_ID="+device,
		harness.GatewayAt("https://"+lb.OTLPHTTP), "FIELDCOL_GATEWAY_CA_FILE="+caFile,
		"FIELDCOL_GATEWAY_CERT_FILE="+lb.pki.ClientCertFile, "FIELDCOL_GATEWAY_KEY_FILE="+lb.pki.ClientKeyFile)
}

// sendVia hands td to an edge's OTLP receiver, as an application on the device does.
func sendVia(t *testing.T, edge *harness.Collector, td ptrace.Traces) {
	t.Helper()
	client, err := otlpsink.Dial(edge.OTLPGRPC)
	require.NoError(t, err)
	defer client.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	require.NoError(t, client.SendTraces(ctx, td))
}

// runSpans counts the spans of run that reached a sampler's trace store.
func runSpans(s sampler, run string) int {
	n := 0
	for _, td := range s.sink.Traces() {
		for _, rs := range td.ResourceSpans().All() {
			if harness.HasRun(rs.Resource(), run) {
				for _, ss := range rs.ScopeSpans().All() {
					n += ss.Spans().Len()
				}
			}
		}
	}
	return n
}
