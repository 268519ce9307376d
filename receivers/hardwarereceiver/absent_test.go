package hardwarereceiver

import (
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component/componenttest"
	"periph.io/x/conn/v3/gpio"
	"periph.io/x/conn/v3/gpio/gpioreg"
	"periph.io/x/conn/v3/gpio/gpiotest"
	"periph.io/x/conn/v3/i2c"
	"periph.io/x/conn/v3/i2c/i2creg"
	"periph.io/x/conn/v3/physic"

	"github.com/fieldcol/fieldcol/internal/hardware"
	"github.com/fieldcol/fieldcol/internal/hardware/backends"
	"github.com/fieldcol/fieldcol/internal/hardware/periph"
)

// adsBus is an I2C bus with an ADS1115 at 0x48 that answers every conversion with half
// of its ±4.096 V range, as long as the test runs.
type adsBus struct{}

func (adsBus) String() string                  { return "fake ADS1115 bus" }
func (adsBus) Close() error                    { return nil }
func (adsBus) SetSpeed(physic.Frequency) error { return nil }
func (adsBus) Tx(addr uint16, w, r []byte) error {
	if addr != 0x48 {
		return errors.New("i2c: no acknowledge")
	}
	if len(w) == 1 && w[0] == 0x00 && len(r) == 2 {
		r[0], r[1] = 0x40, 0x00 // 2.048 V
	}
	return nil
}

// pluggableBus is an I2C bus name whose adapter is missing until plug.
type pluggableBus struct {
	mu      sync.Mutex
	plugged bool
}

func (b *pluggableBus) open() (i2c.BusCloser, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.plugged {
		return nil, errors.New("open /dev/i2c-9: no such file or directory")
	}
	return adsBus{}, nil
}

func (b *pluggableBus) plug() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.plugged = true
}

// A sensor that is absent at start does not stop the receiver: Start succeeds, the sensor
// reports hw.status failed from the first scrape with its errors counted as nack on every
// scrape, while the other devices' metrics go on; once its bus is there it is ok again,
// without a restart. An output whose pin is missing reports no level.
func TestAbsentDeviceIsAFailedDevice(t *testing.T) {
	door := &gpiotest.Pin{N: "FCT_RCV_DOOR", Num: 9301, EdgesChan: make(chan gpio.Level, 1)}
	require.NoError(t, gpioreg.Register(door))
	t.Cleanup(func() { _ = gpioreg.Unregister(door.N) })
	bus := &pluggableBus{}
	require.NoError(t, i2creg.Register("fct-rcv-late", nil, -1, bus.open))
	t.Cleanup(func() { _ = i2creg.Unregister("fct-rcv-late") })

	// No gpiochips, so that the gpiotest pin is what opens, also on a Pi.
	none := t.TempDir()
	reg := backends.NewRegistryWith(nil, periph.Options{GPIO: periph.GPIOPaths{DevDir: none, Model: none + "/model", Compatible: none + "/compatible", DevMem: none + "/mem"}})
	cfg := testConfig(
		hardware.DeviceConfig{Name: "tach", Kind: hardware.KindADS1115, Bus: "fct-rcv-late"},
		hardware.DeviceConfig{Name: "door", Kind: hardware.KindGPIOInput, Pin: "FCT_RCV_DOOR", Pull: "up"},
		hardware.DeviceConfig{Name: "lamp", Kind: hardware.KindGPIOOutput, Pin: "FCT_RCV_NO_SUCH_PIN"},
	)
	cfg.Backend = hardware.BackendPeriph
	cfg.FailAfter = 5
	sink := startOn(t, cfg, componenttest.NewNopHost(), reg)

	tach := "i2cfct-rcv-late/0x48/ch0"
	require.Eventually(t, func() bool { return len(sink.AllMetrics()) >= 3 }, 5*time.Second, 5*time.Millisecond)
	first := sink.AllMetrics()[0]
	v, ok := find(first, "hw.status", map[string]any{"hw.id": tach, "hw.type": "i2c", "hw.state": "failed"})
	require.True(t, ok)
	assert.Equal(t, 1.0, v, "failed at the first scrape, not degraded: fail_after does not apply to an absent device")
	md := last(sink)
	n, _ := find(md, "hw.errors", map[string]any{"hw.id": tach, "error.type": "nack"})
	assert.GreaterOrEqual(t, n, 3.0, "every scrape counts the error")
	_, ok = find(md, "hw.voltage", map[string]any{"hw.id": tach})
	assert.False(t, ok, "no value from an absent sensor")
	v, ok = find(md, "hw.gpio.level", map[string]any{"hw.name": "door"})
	require.True(t, ok, "the other devices go on")
	assert.Equal(t, 1.0, v)
	v, ok = find(md, "hw.status", map[string]any{"hw.id": "FCT_RCV_DOOR", "hw.state": "ok"})
	require.True(t, ok)
	assert.Equal(t, 1.0, v)
	_, ok = find(md, "hw.gpio.level", map[string]any{"hw.name": "lamp"})
	assert.False(t, ok, "an output that is not open has no level to report")

	bus.plug()
	require.Eventually(t, func() bool {
		md := last(sink)
		st, _ := find(md, "hw.status", map[string]any{"hw.id": tach, "hw.state": "ok"})
		v, ok := find(md, "hw.voltage", map[string]any{"hw.id": tach})
		return st == 1 && ok && v > 2.04 && v < 2.05
	}, 5*time.Second, 10*time.Millisecond, "the sensor opens at a scrape after its bus appears")
}
