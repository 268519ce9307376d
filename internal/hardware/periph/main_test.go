package periph

import (
	"context"
	"testing"

	"go.uber.org/goleak"

	"github.com/fieldcol/fieldcol/internal/hardware"
)

// Edge counters, time-proportional switches and bus transfers run in goroutines: every
// test must leave none behind.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// newRegistry is a registry with the periph backend alone, on the package's GPIO
// environment (periphGPIO).
func newRegistry(clock hardware.Clock) *hardware.Registry {
	return hardware.NewRegistry(clock, hardware.Backends{hardware.BackendPeriph: New(Options{})})
}

var ctx = context.Background()
