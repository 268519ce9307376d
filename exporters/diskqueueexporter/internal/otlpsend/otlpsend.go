// Package otlpsend sends already encoded OTLP export requests (protobuf bytes read back from
// the disk queue) over OTLP/HTTP or OTLP/gRPC, and classifies failures into "try again"
// and "the receiver will never take this".
package otlpsend // import "github.com/fieldcol/fieldcol/exporters/diskqueueexporter/internal/otlpsend"

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Signal names the OTLP signal of a sender; it picks the HTTP path and the gRPC service.
type Signal string

// The signals the disk queue forwards.
const (
	Traces  Signal = "traces"
	Metrics Signal = "metrics"
	Logs    Signal = "logs"
)

// Sender sends one encoded export request.
type Sender interface {
	Send(ctx context.Context, body []byte) error
	Close() error
}

// RejectedError is a permanent refusal of the data itself (HTTP 400/413, gRPC
// InvalidArgument): sending it again can only fail again.
type RejectedError struct{ Err error }

func (e *RejectedError) Error() string { return "rejected by the receiver: " + e.Err.Error() }
func (e *RejectedError) Unwrap() error { return e.Err }

// IsRejected reports whether err is a permanent rejection.
func IsRejected(err error) bool {
	var r *RejectedError
	return errors.As(err, &r)
}

// ThrottleError asks the caller to wait Delay before the next attempt (HTTP Retry-After,
// gRPC RetryInfo).
type ThrottleError struct {
	Err   error
	Delay time.Duration
}

func (e *ThrottleError) Error() string {
	return fmt.Sprintf("%v (receiver asks to retry after %s)", e.Err, e.Delay)
}
func (e *ThrottleError) Unwrap() error { return e.Err }

// Throttle returns the delay a ThrottleError asks for, or 0.
func Throttle(err error) time.Duration {
	var t *ThrottleError
	if errors.As(err, &t) {
		return t.Delay
	}
	return 0
}
