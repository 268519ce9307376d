package otlpsend

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/config/confighttp"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"
)

func TestHTTPClassification(t *testing.T) {
	tests := []struct {
		status       int
		retryAfter   string
		wantRejected bool
		wantErr      bool
		wantThrottle time.Duration
	}{
		{status: 200},
		{status: 202},
		{status: 400, wantErr: true, wantRejected: true},
		{status: 413, wantErr: true, wantRejected: true},
		{status: 401, wantErr: true},
		{status: 403, wantErr: true},
		{status: 404, wantErr: true},
		{status: 500, wantErr: true},
		{status: 502, wantErr: true},
		{status: 503, wantErr: true},
		{status: 503, retryAfter: "7", wantErr: true, wantThrottle: 7 * time.Second},
		{status: 429, retryAfter: "2", wantErr: true, wantThrottle: 2 * time.Second},
	}
	for _, tt := range tests {
		t.Run(http.StatusText(tt.status)+tt.retryAfter, func(t *testing.T) {
			var gotPath, gotType string
			var gotBody []byte
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				gotPath, gotType = r.URL.Path, r.Header.Get("Content-Type")
				gotBody, _ = io.ReadAll(r.Body)
				if tt.retryAfter != "" {
					w.Header().Set("Retry-After", tt.retryAfter)
				}
				w.WriteHeader(tt.status)
			}))
			defer srv.Close()
			cfg := confighttp.NewDefaultClientConfig()
			cfg.Endpoint = srv.URL + "/"
			s, err := NewHTTP(context.Background(), &cfg, Logs, componenttest.NewNopHost(), componenttest.NewNopTelemetrySettings(), "test")
			require.NoError(t, err)
			defer func() { require.NoError(t, s.Close()) }()
			err = s.Send(context.Background(), []byte("body"))
			assert.Equal(t, "/v1/logs", gotPath)
			assert.Equal(t, "application/x-protobuf", gotType)
			assert.Equal(t, []byte("body"), gotBody)
			assert.Equal(t, tt.wantErr, err != nil)
			assert.Equal(t, tt.wantRejected, IsRejected(err))
			assert.Equal(t, tt.wantThrottle, Throttle(err))
		})
	}
}

func TestGRPCClassification(t *testing.T) {
	withRetry, err := status.New(codes.Unavailable, "busy").WithDetails(&errdetails.RetryInfo{RetryDelay: durationpb.New(3 * time.Second)})
	require.NoError(t, err)
	tests := []struct {
		name         string
		err          error
		wantNil      bool
		wantRejected bool
		wantThrottle time.Duration
	}{
		{name: "ok", wantNil: true},
		{name: "invalid argument", err: status.Error(codes.InvalidArgument, "bad"), wantRejected: true},
		{name: "unavailable", err: status.Error(codes.Unavailable, "down")},
		{name: "unauthenticated is not the data's fault", err: status.Error(codes.Unauthenticated, "who")},
		{name: "resource exhausted", err: status.Error(codes.ResourceExhausted, "slow down")},
		{name: "retry info", err: withRetry.Err(), wantThrottle: 3 * time.Second},
		{name: "undecodable body", err: &RejectedError{Err: errors.New("proto")}, wantRejected: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := classifyGRPC(tt.err)
			assert.Equal(t, tt.wantNil, got == nil)
			assert.Equal(t, tt.wantRejected, IsRejected(got))
			assert.Equal(t, tt.wantThrottle, Throttle(got))
		})
	}
}
