package edge

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/fieldcol/fieldcol/e2e/internal/harness"
	"github.com/fieldcol/fieldcol/internal/promtest"
)

// The sim plant's sensors reach Prometheus, and a scripted bus timeout on one sensor shows
// in hw_errors and hw_status, then clears.
func TestEdgeSimSensorsAndScriptedBusTimeout(t *testing.T) {
	// The controlloop extension opens the sim plant, so scripted faults go in its section;
	// a fault may name any device of the plant, here one the hardware receiver reads.
	fault := harness.Overlay(t, `
extensions:
  controlloop:
    hardware:
      sim:
        faults:
          - {at: 8s, duration: 15s, device: room_temp, kind: bus_timeout}
`)
	edge := harness.StartCollector(t, harness.Binary(t, "fieldcol-edge"),
		[]string{harness.Shipped("distributions/edge/config.yaml"), fault}, "FIELDCOL_HW_INTERVAL=1s")
	prom := promtest.Start(t, promtest.Options{ScrapeTargets: []string{edge.Metrics}})

	for _, series := range []string{
		`hw_temperature_celsius{hw_name="room_temp"}`,
		`hw_temperature_celsius{hw_name="soc_temp"}`,
		`hw_voltage_volts{hw_name="supply"}`,
		`hw_gpio_level_ratio{hw_name="flow"}`,
		`hw_gpio_edges_total{hw_name="flow"}`,
		`hw_status_ratio{hw_id="i2c1/0x19",hw_state="ok"}`,
	} {
		prom.WaitFor(t, series, 30*time.Second)
	}

	value := prom.Value
	// room_temp is the MCP9808 at 0x19 on I2C bus 1; hw.status and hw.errors name devices by hw.id.
	timeouts := `hw_errors_total{hw_id="i2c1/0x19",error_type="timeout"}`
	roomOK := `hw_status_ratio{hw_id="i2c1/0x19",hw_state="ok"}`

	require.Eventually(t, func() bool { return value(timeouts) >= 2 && value(roomOK) == 0 },
		40*time.Second, 250*time.Millisecond, "the bus timeout did not show: timeouts=%v ok=%v", value(timeouts), value(roomOK))
	assert.Equal(t, 1.0, value(`hw_status_ratio{hw_id="thermal_zone0",hw_state="ok"}`), "a fault on one bus leaves the others ok")

	require.Eventually(t, func() bool { return value(roomOK) == 1 },
		40*time.Second, 250*time.Millisecond, "room_temp did not recover after the fault ended")
	settled := value(timeouts)
	time.Sleep(3 * time.Second)
	assert.Equal(t, settled, value(timeouts), "no more timeouts once the fault ended")

	edge.Stop(t)
}
