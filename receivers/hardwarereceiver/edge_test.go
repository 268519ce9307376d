package hardwarereceiver

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component/componenttest"

	"github.com/fieldcol/fieldcol/internal/hardware"
	"github.com/fieldcol/fieldcol/internal/hardware/backends"
)

// TestEdgeShape runs the arrangement of the edge default config: the controlloop
// extension starts first and configures the sim plant of its registry (with the scripted
// fault), the receiver then joins it on that registry with an empty sim section and reads
// its own devices. The fault is scripted in the loop's section but names a device of the
// receiver.
func TestEdgeShape(t *testing.T) {
	loopHW := hardware.Config{
		Timeout: 20 * time.Millisecond,
		Devices: []hardware.DeviceConfig{
			{Name: "oven_temp", Kind: hardware.KindMCP9808, ValidRange: &hardware.Range{Min: -40, Max: 200}},
			{Name: "heater_ssr", Kind: hardware.KindDutyOutput, Signal: hardware.SignalHeater},
			{Name: "motor_tach", Kind: hardware.KindADS1115, Signal: hardware.SignalMotorTach},
			{Name: "door_closed", Kind: hardware.KindGPIOInput, Signal: hardware.SignalDoor},
		},
		Sim: hardware.SimConfig{Seed: 1, TimeScale: 10, Faults: []hardware.FaultSpec{
			{At: 200 * time.Millisecond, Duration: 400 * time.Millisecond, Device: "room_temp", Kind: hardware.FaultBusTimeout},
		}},
	}
	reg := backends.NewRegistry(nil)
	loop, err := reg.Open(loopHW, hardware.Settings{})
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, loop.Close()) })
	heater, err := loop.DutyOutput("heater_ssr")
	require.NoError(t, err)
	require.NoError(t, heater.WriteDuty(context.Background(), 1))

	cfg := testConfig(
		hardware.DeviceConfig{Name: "room_temp", Kind: hardware.KindMCP9808, Address: 0x19, Signal: hardware.SignalAmbientTemperature, ValidRange: &hardware.Range{Min: -20, Max: 60}},
		hardware.DeviceConfig{Name: "soc_temp", Kind: hardware.KindSoCThermal, ValidRange: &hardware.Range{Min: 0, Max: 90}},
		hardware.DeviceConfig{Name: "supply", Kind: hardware.KindADS1115, Channel: 1, Signal: hardware.SignalSupplyVoltage, ValidRange: &hardware.Range{Min: 3, Max: 3.6}},
		hardware.DeviceConfig{Name: "door", Kind: hardware.KindGPIOInput, Pin: "GPIO17", Signal: hardware.SignalDoor, Edge: "both"},
		hardware.DeviceConfig{Name: "flow", Kind: hardware.KindGPIOInput, Pin: "GPIO27", Signal: hardware.SignalFlowMeter},
	)
	cfg.CollectionInterval = 20 * time.Millisecond
	sink := startOn(t, cfg, componenttest.NewNopHost(), reg)

	room := map[string]any{"hw.id": "i2c1/0x19"}
	var sawFault bool
	require.Eventually(t, func() bool {
		md := last(sink)
		n, _ := find(md, "hw.errors", map[string]any{"hw.id": "i2c1/0x19", "error.type": "timeout"})
		ok, _ := find(md, "hw.status", map[string]any{"hw.id": "i2c1/0x19", "hw.state": "ok"})
		sawFault = sawFault || (n > 0 && ok == 0)
		return sawFault && ok == 1
	}, 10*time.Second, 5*time.Millisecond, "the fault scripted in the loop's sim section hits the receiver's device, then ends")

	md := last(sink)
	for _, m := range []string{"hw.temperature", "hw.voltage", "hw.gpio.level", "hw.status"} {
		_, ok := find(md, m, nil)
		assert.True(t, ok, m)
	}
	v, ok := find(md, "hw.temperature", room)
	require.True(t, ok)
	assert.InDelta(t, 22, v, 0.5)
	for _, id := range []string{"i2c1/0x19", "thermal_zone0", "i2c1/0x48/ch1", "GPIO17", "GPIO27"} {
		v, ok := find(md, "hw.status", map[string]any{"hw.id": id, "hw.state": "ok"})
		assert.True(t, ok && v == 1, id)
	}
}
