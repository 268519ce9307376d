package piiredaction

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/fieldcol/fieldcol/internal/otlpsink"
	"github.com/fieldcol/fieldcol/internal/testproc"
)

// edgeBinary is the fieldcol-edge that make bench builds; without it the benchmark is skipped
// on a developer's machine and fails under CI.
func edgeBinary(tb testing.TB) string {
	tb.Helper()
	_, file, _, _ := runtime.Caller(0)
	p := filepath.Join(filepath.Dir(file), "..", "..", "bin", "fieldcol-edge")
	if _, err := os.Stat(p); err != nil {
		if os.Getenv("CI") != "" {
			tb.Fatalf("%s is not built (make bin/fieldcol-edge): %v", p, err)
		}
		tb.Skipf("%s is not built (make bin/fieldcol-edge): %v", p, err)
	}
	return p
}

// startEdge runs the built edge with an OTLP receiver, piiredaction with its defaults, and an
// OTLP exporter to sink, and returns the receiver's address.
func startEdge(b *testing.B, sink *otlpsink.Sink) string {
	var addr string
	testproc.Retry(b, func(ports *testproc.Ports) (*testproc.Process, error) {
		addr = ports.Addr()
		health := ports.Addr()
		cfg := filepath.Join(b.TempDir(), "edge.yaml")
		yaml := fmt.Sprintf(`receivers:
  otlp:
    protocols:
      grpc: {endpoint: %q, max_recv_msg_size_mib: 16}
processors:
  piiredaction: {}
exporters:
  otlp_grpc:
    endpoint: %q
    tls: {insecure: true}
    sending_queue: {enabled: false}
    retry_on_failure: {enabled: false}
extensions:
  health_check: {endpoint: %q}
service:
  extensions: [health_check]
  telemetry: {metrics: {level: none}}
  pipelines:
    logs: {receivers: [otlp], processors: [piiredaction], exporters: [otlp_grpc]}
`, addr, sink.Addr, health)
		if err := os.WriteFile(cfg, []byte(yaml), 0o600); err != nil {
			b.Fatal(err)
		}
		p := testproc.Start(b, edgeBinary(b), []string{"--config", cfg})
		return p, testproc.WaitHTTPErr(p, "http://"+health+"/", 60*time.Second)
	})
	return addr
}

// BenchmarkWorstCaseThroughEdge sends each 1 MiB all-match body and the 1 MiB clean body,
// alternately, through the built fieldcol-edge (OTLP in, piiredaction, OTLP out) and reports
// the all-match time as a ratio to the clean time (issue 20: within 10x through the
// collector). The times include both OTLP hops, as a pipeline sees them.
func BenchmarkWorstCaseThroughEdge(b *testing.B) {
	bodies := worstCaseBodies()
	sink := otlpsink.Start(b)
	client, err := otlpsink.Dial(startEdge(b, sink))
	if err != nil {
		b.Fatal(err)
	}
	defer client.Close()
	roundTrip := func(body string) time.Duration {
		want := sink.LogRecordCount() + 1
		t0 := time.Now()
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		if err := client.SendLogs(ctx, oneBody(body)); err != nil {
			b.Fatal(err)
		}
		for sink.LogRecordCount() < want {
			if time.Since(t0) > 2*time.Minute {
				b.Fatal("the edge did not forward the body within 2 minutes")
			}
			time.Sleep(200 * time.Microsecond)
		}
		return time.Since(t0)
	}
	roundTrip(bodies["clean"].text) // warm the connections
	for _, name := range []string{"cards", "ipv4", "emails", "phones", "jwts", "mixed"} {
		b.Run(name, func(b *testing.B) {
			var clean, match time.Duration
			for b.Loop() {
				clean += roundTrip(bodies["clean"].text)
				match += roundTrip(bodies[name].text)
			}
			n := float64(b.N)
			b.ReportMetric(float64(clean.Milliseconds())/n, "clean-ms")
			b.ReportMetric(float64(match.Milliseconds())/n, "allmatch-ms")
			b.ReportMetric(float64(match)/float64(clean), "allmatch/clean-x")
		})
	}
}
