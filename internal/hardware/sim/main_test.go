package sim

import (
	"testing"

	"go.uber.org/goleak"
)

// Edge counters, time-proportional switches and bus transfers run in goroutines: every
// test must leave none behind.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
