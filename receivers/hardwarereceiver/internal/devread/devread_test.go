package devread

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/fieldcol/fieldcol/internal/hardware"
	"github.com/fieldcol/fieldcol/internal/hardware/backends"
	"github.com/fieldcol/fieldcol/internal/hardware/hardwaretest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestDifferentBusesAreReadInParallel(t *testing.T) {
	started := make(chan string, 3)
	release := make(chan struct{})
	// Each read announces itself on started and then waits for release, so that the test
	// sees which reads overlap.
	mk := func(name, id string) hardware.Device {
		d := hardwaretest.NewTemperatureInput(hardware.Info{Name: name, ID: id, Kind: hardware.KindMCP9808, BusType: hardware.BusI2C})
		d.OnRead(func(ctx context.Context) (float64, error) {
			started <- name
			select {
			case <-release:
				return 21, nil
			case <-ctx.Done():
				return 0, &hardware.Error{Device: name, Type: hardware.ErrorTimeout, Err: ctx.Err()}
			}
		})
		return d
	}
	r := New([]hardware.Device{
		mk("a", "i2c1/0x18"), mk("b", "i2c1/0x19"), // one bus: one after the other
		mk("c", "i2c3/0x18"), // another bus: alongside
	}, 3)
	require.Equal(t, 2, r.Groups())
	r.Start()
	defer r.Stop()

	done := make(chan []Result)
	go func() { done <- r.Read(context.Background()) }()
	first := map[string]bool{<-started: true, <-started: true}
	assert.True(t, first["c"], "the device on the other bus starts while the first bus is busy")
	assert.NotEqual(t, first["a"], first["b"], "devices on one bus never overlap")
	close(release)
	<-started
	res := <-done
	for _, r := range res {
		require.NoError(t, r.Err)
		assert.Equal(t, 21.0, r.Value)
		assert.Equal(t, hardware.StateOK, r.State)
	}
}

// openSim opens sim devices on a private registry.
func openSim(t testing.TB, devices ...hardware.DeviceConfig) *hardware.Session {
	s, err := backends.NewRegistry(nil).Open(hardware.Config{Timeout: 20 * time.Millisecond, Devices: devices}, hardware.Settings{})
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, s.Close()) })
	return s
}

func TestErrorsAndHealth(t *testing.T) {
	s := openSim(t,
		hardware.DeviceConfig{Name: "tank", Kind: hardware.KindDS18B20, ValidRange: &hardware.Range{Min: 0, Max: 100}, Timeout: 20 * time.Millisecond},
		hardware.DeviceConfig{Name: "door", Kind: hardware.KindGPIOInput},
		hardware.DeviceConfig{Name: "lamp", Kind: hardware.KindGPIOOutput, Signal: hardware.SignalIndicator},
	)
	r := New(s.Devices(), 2)
	r.Start()
	defer r.Stop()

	res := r.Read(context.Background())
	require.Len(t, res, 3)
	assert.True(t, res[0].HasValue)
	assert.True(t, res[0].Reads)
	assert.True(t, res[1].Level, "the sim door starts closed")
	assert.False(t, res[2].Reads, "outputs are not read")

	lamp, err := s.DigitalOutput("lamp")
	require.NoError(t, err)
	require.NoError(t, lamp.WriteLevel(context.Background(), true))

	steps := []struct {
		fault     hardware.FaultKind
		wantType  hardware.ErrorType
		wantState hardware.State
		hasValue  bool
	}{
		{hardware.FaultBusTimeout, hardware.ErrorTimeout, hardware.StateDegraded, false},
		{hardware.FaultOutOfRange, hardware.ErrorOutOfRange, hardware.StateFailed, true},
		{hardware.FaultDisconnected, hardware.ErrorNack, hardware.StateFailed, false},
		{hardware.FaultNaN, hardware.ErrorInvalid, hardware.StateFailed, false},
		{"", "", hardware.StateOK, true},
	}
	want := [len(ErrorTypes)]uint64{}
	for _, st := range steps {
		_, _ = s.Faults().Clear("tank")
		if st.fault != "" {
			require.NoError(t, s.Faults().Inject(hardware.FaultSpec{Device: "tank", Kind: st.fault}))
		}
		res = r.Read(context.Background())
		for k, et := range ErrorTypes {
			if et == st.wantType {
				want[k]++
			}
		}
		assert.Equal(t, st.wantType, hardware.ErrorTypeOf(res[0].Err), st.fault)
		assert.Equal(t, st.wantState, res[0].State, st.fault)
		assert.Equal(t, st.hasValue, res[0].HasValue, st.fault)
		assert.Equal(t, want, res[0].Errors, st.fault)
		assert.True(t, res[2].Level, "the output reports its written level")
	}
}

func TestBusKey(t *testing.T) {
	assert.Equal(t, "i2c1", busKey(hardware.Info{ID: "i2c1/0x48/ch0", BusType: hardware.BusI2C}))
	assert.Equal(t, "gpio", busKey(hardware.Info{ID: "GPIO17", BusType: hardware.BusGPIO}))
	assert.Equal(t, "sysfs", busKey(hardware.Info{ID: "thermal_zone0", BusType: hardware.BusSysfs}))
}

var errBoom = errors.New("boom")

func TestUnclassifiedErrorCountsAsIO(t *testing.T) {
	failing := hardwaretest.NewAnalogInput(hardware.Info{Name: "x", ID: "spi0.0/ch1", Kind: hardware.KindMCP3008, BusType: hardware.BusSPI})
	failing.SetErr(errBoom)
	r := New([]hardware.Device{failing}, 1)
	r.Start()
	defer r.Stop()
	res := r.Read(context.Background())
	assert.ErrorIs(t, res[0].Err, errBoom)
	for k, et := range ErrorTypes {
		want := uint64(0)
		if et == hardware.ErrorIO {
			want = 1
		}
		assert.Equal(t, want, res[0].Errors[k], "%s", et)
	}
	assert.Equal(t, hardware.StateFailed, res[0].State)
}

// BenchmarkReadSim is a steady-state scrape of eight sim devices on four buses: it must
// not allocate.
func BenchmarkReadSim(b *testing.B) {
	s := openSim(b,
		hardware.DeviceConfig{Name: "tank", Kind: hardware.KindDS18B20, ValidRange: &hardware.Range{Min: -20, Max: 150}, StuckAfter: 5},
		hardware.DeviceConfig{Name: "room", Kind: hardware.KindMCP9808, Signal: hardware.SignalAmbientTemperature},
		hardware.DeviceConfig{Name: "soc", Kind: hardware.KindSoCThermal},
		hardware.DeviceConfig{Name: "supply", Kind: hardware.KindADS1115},
		hardware.DeviceConfig{Name: "tach", Kind: hardware.KindADS1115, Channel: 1, Signal: hardware.SignalMotorTach},
		hardware.DeviceConfig{Name: "pot", Kind: hardware.KindMCP3008},
		hardware.DeviceConfig{Name: "door", Kind: hardware.KindGPIOInput, Pin: "GPIO17"},
		hardware.DeviceConfig{Name: "flow", Kind: hardware.KindGPIOInput, Pin: "GPIO27", Signal: hardware.SignalFlowMeter},
	)
	r := New(s.Devices(), 3)
	r.Start()
	defer r.Stop()
	ctx := context.Background()
	r.Read(ctx)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		res := r.Read(ctx)
		if res[0].Err != nil {
			b.Fatal(res[0].Err)
		}
	}
}
