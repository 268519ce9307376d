package hardwarereceiver

import (
	"math/rand/v2"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component/componenttest"

	"github.com/fieldcol/fieldcol/internal/hardware"
	"github.com/fieldcol/fieldcol/internal/hardware/backends"
)

// TestSoakRandomFaults scrapes every 5 ms for two minutes while faults of every kind come
// and go on random devices, and checks after each batch that every input device has
// exactly one current state and that no error counter ever goes back. It runs only with
// FIELDCOL_SOAK=1 (make soak).
func TestSoakRandomFaults(t *testing.T) {
	if os.Getenv("FIELDCOL_SOAK") != "1" {
		t.Skip("soak test: set FIELDCOL_SOAK=1")
	}
	cfg := testConfig(defaultDevices()...)
	cfg.CollectionInterval = 5 * time.Millisecond
	cfg.ControllerConfig.Timeout = 2 * time.Millisecond
	cfg.Config.Timeout = cfg.ControllerConfig.Timeout
	for i := range cfg.Devices {
		cfg.Devices[i].Timeout = 2 * time.Millisecond
	}
	reg := backends.NewRegistry(nil)
	sink := startOn(t, cfg, componenttest.NewNopHost(), reg)
	f := faults(t, reg)
	rng := rand.New(rand.NewPCG(1, 2))
	inputs := map[string]string{"tank_temp": "onewire1/28-000000000000", "supply": "spi0.0/ch2", "door": "GPIO17"}
	names := []string{"tank_temp", "supply", "door"}
	kinds := hardware.FaultKinds()
	lastErrors := map[string]float64{}
	deadline := time.Now().Add(2 * time.Minute)
	checked := 0
	for time.Now().Before(deadline) {
		dev := names[rng.IntN(len(names))]
		if rng.IntN(2) == 0 {
			require.NoError(t, f.Inject(hardware.FaultSpec{Device: dev, Kind: kinds[rng.IntN(len(kinds))],
				Duration: time.Duration(rng.IntN(50)) * time.Millisecond, Delay: time.Millisecond}))
		} else {
			_, err := f.Clear(dev)
			require.NoError(t, err)
		}
		time.Sleep(20 * time.Millisecond) // pacing the fault schedule, not waiting for a result
		all := sink.AllMetrics()
		for ; checked < len(all); checked++ {
			md := all[checked]
			for name, id := range inputs {
				current := 0.0
				for _, st := range []string{"ok", "degraded", "failed"} {
					v, ok := find(md, "hw.status", map[string]any{"hw.id": id, "hw.state": st})
					require.True(t, ok, name)
					current += v
				}
				assert.Equal(t, 1.0, current, "%s has exactly one state", name)
				for _, et := range []string{"timeout", "nack", "out_of_range", "invalid", "stale"} {
					key := id + "/" + et
					v, _ := find(md, "hw.errors", map[string]any{"hw.id": id, "error.type": et})
					assert.GreaterOrEqual(t, v, lastErrors[key], key)
					lastErrors[key] = v
				}
			}
		}
		sink.Reset()
		checked = 0
	}
}
