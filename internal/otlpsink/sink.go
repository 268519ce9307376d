// Package otlpsink is an in-process OTLP/gRPC server for tests: it records every traces,
// metrics and logs request it receives and can be told to refuse them, as a gateway that is
// down or rejecting would.
package otlpsink

import (
	"context"
	"math/rand/v2"
	"net"
	"sync"
	"testing"

	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/plog/plogotlp"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/pmetric/pmetricotlp"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	// OTLP exporters compress with gzip by default.
	_ "google.golang.org/grpc/encoding/gzip"
	"google.golang.org/grpc/status"
)

// Sink records what it receives.
type Sink struct {
	// Addr is the host:port the sink listens on.
	Addr string

	server *grpc.Server

	mu      sync.Mutex
	refuse  codes.Code
	flaky   int // per mille of requests refused with Unavailable
	traces  []ptrace.Traces
	metrics []pmetric.Metrics
	logs    []plog.Logs
}

// Start listens on a free loopback port; the sink stops when the test ends.
func Start(t testing.TB) *Sink {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("otlpsink: listening: %v", err)
	}
	s := &Sink{Addr: l.Addr().String(), server: grpc.NewServer()}
	ptraceotlp.RegisterGRPCServer(s.server, &tracesServer{s: s})
	pmetricotlp.RegisterGRPCServer(s.server, &metricsServer{s: s})
	plogotlp.RegisterGRPCServer(s.server, &logsServer{s: s})
	go func() { _ = s.server.Serve(l) }()
	t.Cleanup(s.server.Stop)
	return s
}

// Refuse makes every following request fail with code (codes.OK accepts again):
// Unavailable is retried by OTLP clients, InvalidArgument is a permanent rejection.
func (s *Sink) Refuse(code codes.Code) {
	s.mu.Lock()
	s.refuse = code
	s.mu.Unlock()
}

// RefuseShare makes a random share of the following requests (per mille, 0 to 1000) fail
// with Unavailable, as a flaky gateway does; Refuse takes precedence.
func (s *Sink) RefuseShare(permille int) {
	s.mu.Lock()
	s.flaky = permille
	s.mu.Unlock()
}

// refusal is the error the next request gets, or nil. Callers hold mu.
func (s *Sink) refusal() error {
	if s.refuse != codes.OK {
		return status.Error(s.refuse, "otlpsink: refusing as the test asked")
	}
	if s.flaky > 0 && rand.IntN(1000) < s.flaky { //nolint:gosec // test jitter, not a secret
		return status.Error(codes.Unavailable, "otlpsink: flaky as the test asked")
	}
	return nil
}

// Traces returns copies of the traces requests received so far, in arrival order.
func (s *Sink) Traces() []ptrace.Traces {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]ptrace.Traces(nil), s.traces...)
}

// Metrics returns the metrics requests received so far, in arrival order.
func (s *Sink) Metrics() []pmetric.Metrics {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]pmetric.Metrics(nil), s.metrics...)
}

// Logs returns the logs requests received so far, in arrival order.
func (s *Sink) Logs() []plog.Logs {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]plog.Logs(nil), s.logs...)
}

// SpanCount, DataPointCount and LogRecordCount total what was received.
func (s *Sink) SpanCount() int {
	n := 0
	for _, td := range s.Traces() {
		n += td.SpanCount()
	}
	return n
}

// DataPointCount totals the metric data points received.
func (s *Sink) DataPointCount() int {
	n := 0
	for _, md := range s.Metrics() {
		n += md.DataPointCount()
	}
	return n
}

// LogRecordCount totals the log records received.
func (s *Sink) LogRecordCount() int {
	n := 0
	for _, ld := range s.Logs() {
		n += ld.LogRecordCount()
	}
	return n
}

type tracesServer struct {
	ptraceotlp.UnimplementedGRPCServer
	s *Sink
}

func (ts *tracesServer) Export(_ context.Context, req ptraceotlp.ExportRequest) (ptraceotlp.ExportResponse, error) {
	ts.s.mu.Lock()
	defer ts.s.mu.Unlock()
	if err := ts.s.refusal(); err != nil {
		return ptraceotlp.NewExportResponse(), err
	}
	ts.s.recordTraces(req.Traces())
	return ptraceotlp.NewExportResponse(), nil
}

// recordTraces keeps a copy of td. Callers hold mu.
func (s *Sink) recordTraces(td ptrace.Traces) {
	c := ptrace.NewTraces()
	td.CopyTo(c)
	s.traces = append(s.traces, c)
}

type metricsServer struct {
	pmetricotlp.UnimplementedGRPCServer
	s *Sink
}

func (ms *metricsServer) Export(_ context.Context, req pmetricotlp.ExportRequest) (pmetricotlp.ExportResponse, error) {
	ms.s.mu.Lock()
	defer ms.s.mu.Unlock()
	if err := ms.s.refusal(); err != nil {
		return pmetricotlp.NewExportResponse(), err
	}
	ms.s.recordMetrics(req.Metrics())
	return pmetricotlp.NewExportResponse(), nil
}

// recordMetrics keeps a copy of md. Callers hold mu.
func (s *Sink) recordMetrics(md pmetric.Metrics) {
	c := pmetric.NewMetrics()
	md.CopyTo(c)
	s.metrics = append(s.metrics, c)
}

type logsServer struct {
	plogotlp.UnimplementedGRPCServer
	s *Sink
}

func (ls *logsServer) Export(_ context.Context, req plogotlp.ExportRequest) (plogotlp.ExportResponse, error) {
	ls.s.mu.Lock()
	defer ls.s.mu.Unlock()
	if err := ls.s.refusal(); err != nil {
		return plogotlp.NewExportResponse(), err
	}
	ls.s.recordLogs(req.Logs())
	return plogotlp.NewExportResponse(), nil
}

// recordLogs keeps a copy of ld. Callers hold mu.
func (s *Sink) recordLogs(ld plog.Logs) {
	c := plog.NewLogs()
	ld.CopyTo(c)
	s.logs = append(s.logs, c)
}

// LogBodies lists the string bodies of every log record in ld, in order: the tests number
// their records in the body and count what arrived by it.
func LogBodies(ld plog.Logs) []string {
	var bodies []string
	rls := ld.ResourceLogs()
	for i := 0; i < rls.Len(); i++ {
		sls := rls.At(i).ScopeLogs()
		for j := 0; j < sls.Len(); j++ {
			lrs := sls.At(j).LogRecords()
			for k := 0; k < lrs.Len(); k++ {
				bodies = append(bodies, lrs.At(k).Body().Str())
			}
		}
	}
	return bodies
}
