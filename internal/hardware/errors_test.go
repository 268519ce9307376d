package hardware

import (
	"context"
	"fmt"
	"os"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestErrorTypeOf(t *testing.T) {
	assert.Equal(t, ErrorType(""), ErrorTypeOf(nil))
	assert.Equal(t, ErrorTimeout, ErrorTypeOf(context.DeadlineExceeded))
	assert.Equal(t, ErrorIO, ErrorTypeOf(assert.AnError))
	wrapped := classify("x", &Error{Device: "x", Type: ErrorStale})
	assert.Equal(t, ErrorStale, ErrorTypeOf(wrapped))
	assert.Equal(t, `device "x": stale`, wrapped.Error())
}

// The kernel's bus drivers tell a missing device (EREMOTEIO, ENXIO) from a timeout and a
// failed transfer (EIO); periph keeps only the errno's text ("sysfs-i2c: %v"), and the
// class must survive that.
func TestErrorTypeOfErrno(t *testing.T) {
	for _, c := range []struct {
		errno syscall.Errno
		want  ErrorType
	}{
		{syscall.ETIMEDOUT, ErrorTimeout},
		{syscall.EREMOTEIO, ErrorNack},
		{syscall.ENXIO, ErrorNack},
		{syscall.ENODEV, ErrorNack},
		{syscall.ENOENT, ErrorNack},
		{syscall.EIO, ErrorIO},
		{syscall.EBUSY, ErrorIO},
	} {
		t.Run(c.errno.Error(), func(t *testing.T) {
			assert.Equal(t, c.want, ErrorTypeOf(c.errno))
			assert.Equal(t, c.want, ErrorTypeOf(fmt.Errorf("read: %w", &os.PathError{Op: "ioctl", Path: "/dev/i2c-1", Err: c.errno})))
			assert.Equal(t, c.want, ErrorTypeOf(fmt.Errorf("sysfs-i2c: %v", c.errno)), "periph's wrapping keeps only the text")
			assert.Equal(t, c.want, ErrorTypeOf(classify("oven_temp", fmt.Errorf("sysfs-i2c: %v", c.errno))))
		})
	}
}
