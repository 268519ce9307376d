package hardware

import "errors"

// State is a device's health, the hw.state attribute of hw.status.
type State string

const (
	// StateOK: the last read succeeded.
	StateOK State = "ok"
	// StateDegraded: the last read failed, fewer than FailAfter times in a row.
	StateDegraded State = "degraded"
	// StateFailed: at least FailAfter reads in a row failed.
	StateFailed State = "failed"
)

// States lists every State, so that hw.status can emit one point per state (1 for the
// current one, 0 for the others) and a dashboard never sees a stale series.
var States = [...]State{StateOK, StateDegraded, StateFailed}

// DefaultFailAfter is the number of consecutive failed reads that turn a device failed.
const DefaultFailAfter = 3

// Health tracks a device's state from the outcome of its reads. The zero value is ok and
// uses DefaultFailAfter. It is not safe for concurrent use: one reader owns it.
type Health struct {
	// FailAfter is the number of consecutive failures that make the state failed.
	FailAfter   int
	consecutive int
}

// Observe records a read's outcome and returns the new state: ok after a success, degraded
// after a failure, failed after FailAfter failures in a row, and failed at once for a
// device that could not be opened (ErrNotOpen): it is known to be absent, not flaky.
func (h *Health) Observe(err error) State {
	if err == nil {
		h.consecutive = 0
		return StateOK
	}
	h.consecutive++
	if errors.Is(err, ErrNotOpen) {
		h.consecutive = max(h.consecutive, h.limit())
	}
	return h.State()
}

func (h *Health) limit() int {
	if h.FailAfter <= 0 {
		return DefaultFailAfter
	}
	return h.FailAfter
}

// State returns the current state without recording anything.
func (h *Health) State() State {
	limit := h.limit()
	switch {
	case h.consecutive == 0:
		return StateOK
	case h.consecutive >= limit:
		return StateFailed
	default:
		return StateDegraded
	}
}
