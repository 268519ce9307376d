package diskqueueexporter

import (
	"context"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/exporter"
	"go.opentelemetry.io/collector/exporter/exportertest"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/plog/plogotlp"

	"github.com/fieldcol/fieldcol/exporters/diskqueueexporter/internal/metadata"
	"github.com/fieldcol/fieldcol/internal/otlpsink"
)

// Sink modes.
const (
	sinkUp        int32 = iota
	sinkDown            // 503, as a gateway that is restarting
	sinkReject          // 400, as a gateway that refuses the payload
	sinkRejectBad       // 400 for any request holding a record "bad", else up
)

// otlpSink is an OTLP/HTTP logs receiver that records every log body it accepted.
type otlpSink struct {
	srv          *httptest.Server
	mode         atomic.Int32
	failPermille atomic.Int32 // share of requests answered 503 at random while up, in 1/1000
	mu           sync.Mutex
	order        []string
	seen         map[string]int
}

func newSink(t *testing.T) *otlpSink {
	s := &otlpSink{seen: map[string]int{}}
	s.srv = httptest.NewServer(http.HandlerFunc(s.handle))
	t.Cleanup(s.srv.Close)
	return s
}

func (s *otlpSink) handle(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	switch s.mode.Load() {
	case sinkDown:
		w.WriteHeader(http.StatusServiceUnavailable)
		return
	case sinkReject:
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	if p := s.failPermille.Load(); p > 0 && rand.Int32N(1000) < p { //nolint:gosec // test jitter
		w.WriteHeader(http.StatusServiceUnavailable)
		return
	}
	req := plogotlp.NewExportRequest()
	if err := req.UnmarshalProto(body); err != nil {
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	if s.mode.Load() == sinkRejectBad && holds(req, "bad") {
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	s.mu.Lock()
	for _, id := range otlpsink.LogBodies(req.Logs()) {
		s.order = append(s.order, id)
		s.seen[id]++
	}
	s.mu.Unlock()
	w.Header().Set("Content-Type", "application/x-protobuf")
	w.WriteHeader(http.StatusOK)
}

func holds(req plogotlp.ExportRequest, id string) bool {
	return slices.Contains(otlpsink.LogBodies(req.Logs()), id)
}

func (s *otlpSink) received() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.order...)
}

func (s *otlpSink) has(id string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.seen[id] > 0
}

func makeLogs(ids ...string) plog.Logs {
	ld := plog.NewLogs()
	lrs := ld.ResourceLogs().AppendEmpty().ScopeLogs().AppendEmpty().LogRecords()
	for _, id := range ids {
		lrs.AppendEmpty().Body().SetStr(id)
	}
	return ld
}

func testExporterConfig(dir, endpoint string) *Config {
	cfg := createDefaultConfig().(*Config)
	cfg.Directory = dir
	cfg.SegmentSize = 8 << 10
	cfg.MaxSize = 64 << 20
	cfg.HTTP.Endpoint = endpoint
	cfg.HTTP.Compression = ""
	cfg.RetryConfig.InitialInterval = 5 * time.Millisecond
	cfg.RetryConfig.MaxInterval = 20 * time.Millisecond
	cfg.Timeout = 5 * time.Second
	return cfg
}

func startLogs(t *testing.T, cfg *Config, set exporter.Settings) exporter.Logs {
	t.Helper()
	exp, err := NewFactory().CreateLogs(context.Background(), set, cfg)
	require.NoError(t, err)
	require.NoError(t, exp.Start(context.Background(), componenttest.NewNopHost()))
	return exp
}

func nopSettings() exporter.Settings { return exportertest.NewNopSettings(metadata.Type) }
