package hardware

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"syscall"
)

// ErrorType classifies a failed or invalid read: the error.type attribute of hw.errors.
type ErrorType string

const (
	// ErrorTimeout: the device did not answer within the per-read timeout.
	ErrorTimeout ErrorType = "timeout"
	// ErrorNack: the device did not acknowledge (absent, disconnected, wrong address).
	ErrorNack ErrorType = "nack"
	// ErrorIO: the bus transfer failed for another reason (the kernel's EIO: arbitration
	// lost, a line held low, a CRC error on 1-wire), or the chip is not the one configured.
	ErrorIO ErrorType = "io"
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

// ErrorTypeOf classifies err: the Type of a wrapped *Error; ErrorTimeout for context
// deadlines and ETIMEDOUT; ErrorNack for the errnos the kernel's bus drivers return when no
// device answers (EREMOTEIO from i2c-bcm2835, ENXIO, ENODEV, ENOENT for a device file that
// is gone); ErrorIO for EIO and anything else; "" for nil.
func ErrorTypeOf(err error) ErrorType {
	if err == nil {
		return ""
	}
	var he *Error
	if errors.As(err, &he) {
		return he.Type
	}
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		return ErrorTimeout
	}
	switch errnoOf(err) {
	case syscall.ETIMEDOUT:
		return ErrorTimeout
	case syscall.EREMOTEIO, syscall.ENXIO, syscall.ENODEV, syscall.ENOENT:
		return ErrorNack
	}
	return ErrorIO
}

// busErrnos are the errnos a bus transfer ends with, in the order errnoOf tries them.
var busErrnos = [...]syscall.Errno{
	syscall.ETIMEDOUT, syscall.EREMOTEIO, syscall.ENXIO, syscall.ENODEV, syscall.ENOENT, syscall.EIO,
}

// errnoOf finds the errno behind a bus error. periph wraps its ioctl errors with %v
// ("sysfs-i2c: remote I/O error"), which keeps only the errno's text, so when the chain
// holds no syscall.Errno the message's tail is matched against the errnos' texts, which
// are fixed by the C library's strerror table that Go copies. 0 when none matches.
func errnoOf(err error) syscall.Errno {
	var errno syscall.Errno
	if errors.As(err, &errno) {
		return errno
	}
	msg := err.Error()
	for _, e := range busErrnos {
		if strings.HasSuffix(msg, e.Error()) {
			return e
		}
	}
	return 0
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
