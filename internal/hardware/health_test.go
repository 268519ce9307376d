package hardware

import (
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
)

// A device that could not be opened is failed at its first read, not degraded: it is known
// to be absent. It is ok again at its first good read.
func TestHealthOfADeviceThatIsNotOpen(t *testing.T) {
	h := Health{FailAfter: 5}
	notOpen := &Error{Device: "x", Type: ErrorNack, Err: errors.Join(ErrNotOpen, errors.New("no bus"))}
	assert.Equal(t, StateFailed, h.Observe(notOpen))
	assert.Equal(t, StateFailed, h.Observe(notOpen))
	assert.Equal(t, StateOK, h.Observe(nil))
	assert.Equal(t, StateDegraded, h.Observe(errors.New("nack")), "a flaky read still degrades first")
	assert.Equal(t, StateFailed, h.Observe(notOpen))
}
