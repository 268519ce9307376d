package fieldcolmain

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"go.uber.org/multierr"
)

// refused is the error chain of an OTLP/HTTP push to a closed port.
func refused() error {
	return &url.Error{Op: "Post", URL: "http://127.0.0.1:4318/v1/metrics", Err: &net.OpError{
		Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED),
	}}
}

func TestForgiveSelfTelemetryFlush(t *testing.T) {
	flush := fmt.Errorf("failed to shutdown meter provider: failed to upload metrics: %w", refused())
	tests := []struct {
		name    string
		err     error
		forgive bool
	}{
		{"nil", nil, true},
		{"only the final self flush", fmt.Errorf("failed to shutdown service after error: %w", multierr.Combine(flush)), true},
		{"flush plus a failed pipeline", fmt.Errorf("failed to shutdown service after error: %w",
			multierr.Combine(errors.New("failed to shutdown pipelines: boom"), flush)), false},
		{"flush failing for another reason", fmt.Errorf("failed to shutdown service after error: %w",
			errors.New("failed to shutdown meter provider: context deadline exceeded")), false},
		{"a start-up error", errors.New("cannot start pipelines: listen tcp: address already in use"), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := ForgiveSelfTelemetryFlush(tt.err)
			if tt.forgive {
				assert.NoError(t, got)
			} else {
				assert.Equal(t, tt.err, got)
			}
		})
	}
}
