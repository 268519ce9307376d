package otlpsink

import (
	"compress/gzip"
	"io"
	"net"
	"net/http"
	"testing"

	"go.opentelemetry.io/collector/pdata/plog/plogotlp"
	"go.opentelemetry.io/collector/pdata/pmetric/pmetricotlp"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
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
	mux.HandleFunc("POST /v1/traces", s.handle(func(b []byte) error {
		req := ptraceotlp.NewExportRequest()
		if err := req.UnmarshalProto(b); err != nil {
			return err
		}
		s.recordTraces(req.Traces())
		return nil
	}))
	mux.HandleFunc("POST /v1/metrics", s.handle(func(b []byte) error {
		req := pmetricotlp.NewExportRequest()
		if err := req.UnmarshalProto(b); err != nil {
			return err
		}
		s.recordMetrics(req.Metrics())
		return nil
	}))
	mux.HandleFunc("POST /v1/logs", s.handle(func(b []byte) error {
		req := plogotlp.NewExportRequest()
		if err := req.UnmarshalProto(b); err != nil {
			return err
		}
		s.recordLogs(req.Logs())
		return nil
	}))
	srv := &http.Server{Handler: mux}
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() { _ = srv.Close() })
	return "http://" + l.Addr().String()
}

// handle decodes a request and, unless the sink refuses it, records it (under mu).
func (s *Sink) handle(record func([]byte) error) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
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
		s.mu.Lock()
		err = s.refusal()
		if err == nil {
			err = record(b)
			if err != nil {
				err = status.Error(codes.InvalidArgument, err.Error())
			}
		}
		s.mu.Unlock()
		switch status.Code(err) {
		case codes.OK:
		case codes.Unavailable:
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		default:
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", "application/x-protobuf")
		w.WriteHeader(http.StatusOK)
	}
}
