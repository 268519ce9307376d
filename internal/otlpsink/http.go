package otlpsink

import (
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"testing"

	"go.opentelemetry.io/collector/pdata/plog/plogotlp"
	"go.opentelemetry.io/collector/pdata/pmetric/pmetricotlp"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"google.golang.org/grpc/codes"
)

// ServeHTTP also serves OTLP/HTTP (protobuf, optionally gzip) on a free loopback port and
// returns its base URL, e.g. http://127.0.0.1:40111; requests land in the same records as
// the gRPC ones, and Refuse applies to both (Unavailable answers 503, anything else 400).
func (s *Sink) ServeHTTP(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("otlpsink: listening for HTTP: %v", err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/traces", s.handle(func(ctx context.Context, b []byte) error {
		req := ptraceotlp.NewExportRequest()
		if err := req.UnmarshalProto(b); err != nil {
			return err
		}
		_, err := (&tracesServer{s: s}).Export(ctx, req)
		return err
	}))
	mux.HandleFunc("POST /v1/metrics", s.handle(func(ctx context.Context, b []byte) error {
		req := pmetricotlp.NewExportRequest()
		if err := req.UnmarshalProto(b); err != nil {
			return err
		}
		_, err := (&metricsServer{s: s}).Export(ctx, req)
		return err
	}))
	mux.HandleFunc("POST /v1/logs", s.handle(func(ctx context.Context, b []byte) error {
		req := plogotlp.NewExportRequest()
		if err := req.UnmarshalProto(b); err != nil {
			return err
		}
		_, err := (&logsServer{s: s}).Export(ctx, req)
		return err
	}))
	srv := &http.Server{Handler: mux}
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() { _ = srv.Close() })
	return "http://" + l.Addr().String()
}

func (s *Sink) handle(record func(context.Context, []byte) error) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		refuse := s.refuse
		s.mu.Unlock()
		switch {
		case refuse == codes.Unavailable:
			http.Error(w, "otlpsink: unavailable as the test asked", http.StatusServiceUnavailable)
			return
		case refuse != codes.OK:
			http.Error(w, "otlpsink: rejecting as the test asked", http.StatusBadRequest)
			return
		}
		body := io.Reader(r.Body)
		if r.Header.Get("Content-Encoding") == "gzip" {
			zr, err := gzip.NewReader(r.Body)
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			defer func() { _ = zr.Close() }()
			body = zr
		}
		b, err := io.ReadAll(body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		if err := record(r.Context(), b); err != nil {
			http.Error(w, fmt.Sprintf("otlpsink: %v", err), http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", "application/x-protobuf")
		w.WriteHeader(http.StatusOK)
	}
}
