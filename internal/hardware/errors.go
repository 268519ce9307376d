package hardware

import (
	"context"
	"errors"
	"fmt"
	"syscall"
)

// ErrorType classifies a failed or invalid read: the error.type attribute of hw.errors.
type ErrorType string

const (
	// ErrorTimeout: the device did not answer within the per-read timeout.
	ErrorTimeout ErrorType = "timeout"
	// ErrorNack: the device did not acknowledge (absent, disconnected, bus error).
	ErrorNack ErrorType = "nack"
	// ErrorOutOfRange: the value is outside the configured valid range.
	ErrorOutOfRange ErrorType = "out_of_range"
	// ErrorInvalid: the value is NaN or Inf, or the device returned garbage.
	ErrorInvalid ErrorType = "invalid"
	// ErrorStale: the value has not changed for stuck_after reads, so the sensor is stuck.
	ErrorStale ErrorType = "stale"
)

// Error is a device error with its classification.
type Error struct {
	// Device is the configured device name.
	Device string
	// Type is the classification.
	Type ErrorType
	// Err is the underlying error, if any.
	Err error
}

// Error implements error.
func (e *Error) Error() string {
	if e.Err == nil {
		return fmt.Sprintf("device %q: %s", e.Device, e.Type)
	}
	return fmt.Sprintf("device %q: %s: %v", e.Device, e.Type, e.Err)
}

// Unwrap returns the underlying error.
func (e *Error) Unwrap() error { return e.Err }

// ErrorTypeOf classifies err: the Type of a wrapped *Error, ErrorTimeout for context
// deadlines and ETIMEDOUT, ErrorNack for any other bus error, "" for nil.
func ErrorTypeOf(err error) ErrorType {
	if err == nil {
		return ""
	}
	var he *Error
	if errors.As(err, &he) {
		return he.Type
	}
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) ||
		errors.Is(err, syscall.ETIMEDOUT) {
		return ErrorTimeout
	}
	return ErrorNack
}

// classify wraps a backend error of device name into an *Error, keeping an existing one.
func classify(name string, err error) error {
	if err == nil {
		return nil
	}
	var he *Error
	if errors.As(err, &he) {
		return err
	}
	return &Error{Device: name, Type: ErrorTypeOf(err), Err: err}
}
