package hardwarereceiver

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/receiver"
	"go.opentelemetry.io/collector/receiver/receivertest"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/fieldcol/fieldcol/internal/hardware"
	"github.com/fieldcol/fieldcol/internal/hardware/backends"
	"github.com/fieldcol/fieldcol/receivers/hardwarereceiver/internal/metadata"
)

// testConfig is a fast sim configuration: scrapes every 10 ms, reads time out after 20 ms.
func testConfig(devices ...hardware.DeviceConfig) *Config {
	cfg := createDefaultConfig().(*Config)
	cfg.CollectionInterval = 10 * time.Millisecond
	cfg.InitialDelay = 0
	cfg.BridgeInterval = 10 * time.Millisecond
	cfg.ControllerConfig.Timeout = 20 * time.Millisecond
	cfg.Config.Timeout = cfg.ControllerConfig.Timeout
	cfg.FailAfter = 2
	cfg.Devices = devices
	return cfg
}

func defaultDevices() []hardware.DeviceConfig {
	return []hardware.DeviceConfig{
		{Name: "tank_temp", Kind: hardware.KindDS18B20, Timeout: 20 * time.Millisecond, ValidRange: &hardware.Range{Min: -20, Max: 150}, StuckAfter: 3},
		{Name: "supply", Kind: hardware.KindMCP3008, Channel: 2, ValidRange: &hardware.Range{Min: 3, Max: 3.6}},
		{Name: "door", Kind: hardware.KindGPIOInput, Pin: "GPIO17"},
		{Name: "lamp", Kind: hardware.KindGPIOOutput, Pin: "GPIO22", Signal: hardware.SignalIndicator},
	}
}

// startMetrics starts a metrics receiver and returns its sink.
func startMetrics(t *testing.T, cfg *Config, host component.Host) *consumertest.MetricsSink {
	t.Helper()
	return startOn(t, cfg, host, nil)
}

// startOn starts a metrics receiver whose own registry is reg (nil: the one it made), as
// a registry another component shares with it.
func startOn(t *testing.T, cfg *Config, host component.Host, reg *hardware.Registry) *consumertest.MetricsSink {
	t.Helper()
	sink := new(consumertest.MetricsSink)
	rcv, err := NewFactory().CreateMetrics(context.Background(), receivertest.NewNopSettings(metadata.Type), cfg, sink)
	require.NoError(t, err)
	if reg != nil {
		rcv.(*handle).r.registry = reg
	}
	require.NoError(t, rcv.Start(context.Background(), host))
	t.Cleanup(func() { require.NoError(t, rcv.Shutdown(context.Background())) })
	return sink
}

// point is one data point, flattened for assertions.
type point struct {
	metric, unit string
	attrs        map[string]any
	value        float64
}

func points(md pmetric.Metrics) []point {
	var out []point
	rms := md.ResourceMetrics()
	for i := 0; i < rms.Len(); i++ {
		sms := rms.At(i).ScopeMetrics()
		for j := 0; j < sms.Len(); j++ {
			ms := sms.At(j).Metrics()
			for k := 0; k < ms.Len(); k++ {
				m := ms.At(k)
				var dps pmetric.NumberDataPointSlice
				switch m.Type() {
				case pmetric.MetricTypeGauge:
					dps = m.Gauge().DataPoints()
				case pmetric.MetricTypeSum:
					dps = m.Sum().DataPoints()
				default:
					continue
				}
				for l := 0; l < dps.Len(); l++ {
					dp := dps.At(l)
					v := dp.DoubleValue()
					if dp.ValueType() == pmetric.NumberDataPointValueTypeInt {
						v = float64(dp.IntValue())
					}
					out = append(out, point{metric: m.Name(), unit: m.Unit(), attrs: dp.Attributes().AsRaw(), value: v})
				}
			}
		}
	}
	return out
}

// find returns the value of the point of metric whose attributes include attrs.
func find(md pmetric.Metrics, metric string, attrs map[string]any) (float64, bool) {
	for _, p := range points(md) {
		if p.metric != metric {
			continue
		}
		match := true
		for k, v := range attrs {
			match = match && p.attrs[k] == v
		}
		if match {
			return p.value, true
		}
	}
	return 0, false
}

func last(sink *consumertest.MetricsSink) pmetric.Metrics {
	all := sink.AllMetrics()
	if len(all) == 0 {
		return pmetric.NewMetrics()
	}
	return all[len(all)-1]
}

func TestScrapeEmitsTheTelemetryContract(t *testing.T) {
	sink := startMetrics(t, testConfig(defaultDevices()...), componenttest.NewNopHost())
	require.Eventually(t, func() bool { return len(sink.AllMetrics()) >= 2 }, 5*time.Second, 5*time.Millisecond)
	md := last(sink)

	units := map[string]string{}
	for _, p := range points(md) {
		units[p.metric] = p.unit
	}
	assert.Equal(t, map[string]string{
		"hw.temperature": "Cel", "hw.voltage": "V", "hw.gpio.level": "1", "hw.gpio.edges": "{edge}",
		"hw.errors": "{error}", "hw.status": "1",
	}, units)

	v, ok := find(md, "hw.temperature", map[string]any{"hw.id": "onewire1/28-000000000000", "hw.name": "tank_temp"})
	require.True(t, ok)
	assert.InDelta(t, 22, v, 1)
	v, ok = find(md, "hw.voltage", map[string]any{"hw.id": "spi0.0/ch2", "hw.name": "supply"})
	require.True(t, ok)
	assert.InDelta(t, 3.3, v, 0.05)
	v, ok = find(md, "hw.gpio.level", map[string]any{"hw.id": "GPIO17", "hw.name": "door"})
	require.True(t, ok)
	assert.Equal(t, 1.0, v)
	v, ok = find(md, "hw.gpio.level", map[string]any{"hw.id": "GPIO22", "hw.name": "lamp"})
	require.True(t, ok)
	assert.Equal(t, 0.0, v, "an output reports its level")
	_, ok = find(md, "hw.gpio.edges", map[string]any{"hw.id": "GPIO17"})
	assert.True(t, ok)

	for _, id := range []string{"onewire1/28-000000000000", "spi0.0/ch2", "GPIO17"} {
		for _, et := range []string{"timeout", "nack", "out_of_range", "invalid", "stale"} {
			v, ok := find(md, "hw.errors", map[string]any{"hw.id": id, "error.type": et})
			require.True(t, ok, "%s %s: every error type starts at 0 so that rate() sees the first error", id, et)
			assert.Zero(t, v)
		}
		for state, want := range map[string]float64{"ok": 1, "degraded": 0, "failed": 0} {
			v, ok := find(md, "hw.status", map[string]any{"hw.id": id, "hw.state": state})
			require.True(t, ok)
			assert.Equal(t, want, v, "%s %s", id, state)
		}
	}
	typ, ok := find(md, "hw.status", map[string]any{"hw.id": "spi0.0/ch2", "hw.type": "spi", "hw.state": "ok"})
	assert.True(t, ok)
	assert.Equal(t, 1.0, typ)
	_, ok = find(md, "hw.status", map[string]any{"hw.id": "GPIO22"})
	assert.False(t, ok, "outputs are not read, so they have no health")
}

// faults opens a session on reg, the registry the receiver shares, the way the control
// loop's command API reaches the fault API, and returns it.
func faults(t *testing.T, reg *hardware.Registry) *hardware.Faults {
	s, err := reg.Open(hardware.Config{}, hardware.Settings{})
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, s.Close()) })
	return s.Faults()
}

func TestEveryFaultKindReachesErrorsAndStatus(t *testing.T) {
	tests := []struct {
		device, id string
		kind       hardware.FaultKind
		errorType  string
	}{
		{"tank_temp", "onewire1/28-000000000000", hardware.FaultBusTimeout, "timeout"},
		{"tank_temp", "onewire1/28-000000000000", hardware.FaultSlowRead, "timeout"},
		{"tank_temp", "onewire1/28-000000000000", hardware.FaultDisconnected, "nack"},
		{"tank_temp", "onewire1/28-000000000000", hardware.FaultNaN, "invalid"},
		{"tank_temp", "onewire1/28-000000000000", hardware.FaultOutOfRange, "out_of_range"},
		{"tank_temp", "onewire1/28-000000000000", hardware.FaultStuck, "stale"},
		{"supply", "spi0.0/ch2", hardware.FaultOutOfRange, "out_of_range"},
		{"door", "GPIO17", hardware.FaultDisconnected, "invalid"},
	}
	for _, tt := range tests {
		t.Run(string(tt.kind)+"/"+tt.device, func(t *testing.T) {
			reg := backends.NewRegistry(nil)
			sink := startOn(t, testConfig(defaultDevices()...), componenttest.NewNopHost(), reg)
			f := faults(t, reg)
			require.Eventually(t, func() bool { return len(sink.AllMetrics()) >= 1 }, 5*time.Second, 5*time.Millisecond)
			require.NoError(t, f.Inject(hardware.FaultSpec{Device: tt.device, Kind: tt.kind}))

			errs := map[string]any{"hw.id": tt.id, "error.type": tt.errorType}
			failed := map[string]any{"hw.id": tt.id, "hw.state": "failed"}
			require.Eventually(t, func() bool {
				md := last(sink)
				n, _ := find(md, "hw.errors", errs)
				st, _ := find(md, "hw.status", failed)
				return n >= 2 && st == 1
			}, 5*time.Second, 5*time.Millisecond, "errors are counted and the device fails after fail_after reads")

			_, err := f.Clear(tt.device)
			require.NoError(t, err)
			require.Eventually(t, func() bool {
				st, _ := find(last(sink), "hw.status", map[string]any{"hw.id": tt.id, "hw.state": "ok"})
				return st == 1
			}, 5*time.Second, 5*time.Millisecond, "the device recovers once the fault is gone")
			n, _ := find(last(sink), "hw.errors", errs)
			assert.GreaterOrEqual(t, n, 2.0, "the error counter never goes back")
		})
	}
}

// The e2e scenario in miniature: a scripted bus_timeout makes hw.errors{timeout} rise and
// hw.status leave ok, and the device recovers when the fault window ends.
func TestScriptedBusTimeout(t *testing.T) {
	cfg := testConfig(defaultDevices()...)
	cfg.Sim.Faults = []hardware.FaultSpec{{At: 100 * time.Millisecond, Duration: 400 * time.Millisecond, Device: "tank_temp", Kind: hardware.FaultBusTimeout}}
	sink := startMetrics(t, cfg, componenttest.NewNopHost())
	id := "onewire1/28-000000000000"
	var sawDegraded bool
	require.Eventually(t, func() bool {
		md := last(sink)
		n, _ := find(md, "hw.errors", map[string]any{"hw.id": id, "error.type": "timeout"})
		ok, _ := find(md, "hw.status", map[string]any{"hw.id": id, "hw.state": "ok"})
		if ok == 0 && n > 0 {
			sawDegraded = true
		}
		return sawDegraded && ok == 1
	}, 10*time.Second, 2*time.Millisecond)
	_, hasTemp := find(last(sink), "hw.temperature", map[string]any{"hw.id": id})
	assert.True(t, hasTemp, "readings are back")
}

// fakeLoop is a controlloop extension as the receiver sees it.
type fakeLoop struct {
	component.StartFunc
	component.ShutdownFunc
	owned map[string]bool
	reg   *hardware.Registry

	mu       sync.Mutex
	collects int
	drained  int
}

func (f *fakeLoop) CollectMetrics(ms pmetric.Metrics) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.collects++
	rm := ms.ResourceMetrics().AppendEmpty()
	m := rm.ScopeMetrics().AppendEmpty().Metrics().AppendEmpty()
	m.SetName("controlloop.process_value")
	dp := m.SetEmptyGauge().DataPoints().AppendEmpty()
	dp.SetDoubleValue(55)
	dp.Attributes().PutStr("loop", "oven")
	return nil
}

// DrainLogs gives one alarm event per call, once.
func (f *fakeLoop) DrainLogs(ld plog.Logs) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.drained++
	lr := ld.ResourceLogs().AppendEmpty().ScopeLogs().AppendEmpty().LogRecords().AppendEmpty()
	lr.Body().SetStr("alarm raised")
	lr.SetTimestamp(pcommon.NewTimestampFromTime(time.Now()))
	return 1
}

func (f *fakeLoop) DrainTraces(td ptrace.Traces) int {
	s := td.ResourceSpans().AppendEmpty().ScopeSpans().AppendEmpty().Spans().AppendEmpty()
	s.SetName("SET_TEMP_SETTINGS")
	return 1
}

func (f *fakeLoop) OwnsDevice(name string) bool { return f.owned[name] }

func (f *fakeLoop) HardwareRegistry() *hardware.Registry { return f.reg }

type hostWith map[component.ID]component.Component

func (h hostWith) GetExtensions() map[component.ID]component.Component { return h }

func TestControlLoopBridge(t *testing.T) {
	loop := &fakeLoop{owned: map[string]bool{"tank_temp": true}, reg: backends.NewRegistry(nil)}
	host := hostWith{component.MustNewIDWithName("controlloop", "oven"): loop}
	cfg := testConfig(defaultDevices()...)
	cfg.ControlLoop = new(component.MustNewIDWithName("controlloop", "oven"))

	f := NewFactory()
	set := receivertest.NewNopSettings(metadata.Type)
	msink, lsink, tsink := new(consumertest.MetricsSink), new(consumertest.LogsSink), new(consumertest.TracesSink)
	mr, err := f.CreateMetrics(context.Background(), set, cfg, msink)
	require.NoError(t, err)
	lr, err := f.CreateLogs(context.Background(), set, cfg, lsink)
	require.NoError(t, err)
	tr, err := f.CreateTraces(context.Background(), set, cfg, tsink)
	require.NoError(t, err)
	for _, c := range []component.Component{mr, lr, tr} {
		require.NoError(t, c.Start(context.Background(), host))
	}
	require.Eventually(t, func() bool {
		return len(msink.AllMetrics()) >= 3 && lsink.LogRecordCount() >= 3 && tsink.SpanCount() >= 3
	}, 5*time.Second, 5*time.Millisecond)
	for _, c := range []component.Component{mr, lr, tr} {
		require.NoError(t, c.Shutdown(context.Background()))
	}

	loop.mu.Lock()
	collects, drained := loop.collects, loop.drained
	loop.mu.Unlock()
	assert.Equal(t, len(msink.AllMetrics()), collects, "one scrape loop serves the three pipelines")
	assert.Equal(t, drained, lsink.LogRecordCount(), "every drained event is forwarded once, the last ones at shutdown")

	md := last(msink)
	v, ok := find(md, "controlloop.process_value", map[string]any{"loop": "oven"})
	require.True(t, ok, "the loop's metrics ride along")
	assert.Equal(t, 55.0, v)
	_, ok = find(md, "hw.temperature", map[string]any{"hw.name": "tank_temp"})
	assert.False(t, ok, "a device the loop owns is not read by the receiver")
	_, ok = find(md, "hw.status", map[string]any{"hw.id": "onewire1/28-000000000000"})
	assert.False(t, ok)
	_, ok = find(md, "hw.voltage", map[string]any{"hw.name": "supply"})
	assert.True(t, ok, "the other devices still are")
}

func TestControlLoopKeyErrors(t *testing.T) {
	tests := []struct {
		name string
		host component.Host
		want string
	}{
		{"missing", componenttest.NewNopHost(), `controlloop: extension "controlloop/oven" is not running; add it to service.extensions`},
		{"wrong type", hostWith{component.MustNewIDWithName("controlloop", "oven"): struct {
			component.StartFunc
			component.ShutdownFunc
		}{}}, `controlloop: extension "controlloop/oven" is a struct`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := testConfig()
			cfg.ControlLoop = new(component.MustNewIDWithName("controlloop", "oven"))
			rcv, err := NewFactory().CreateMetrics(context.Background(), receivertest.NewNopSettings(metadata.Type), cfg, consumertest.NewNop())
			require.NoError(t, err)
			err = rcv.Start(context.Background(), tt.host)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.want)
			require.NoError(t, rcv.Shutdown(context.Background()))
		})
	}
}

// A controlloop extension that the receiver does not name keeps its hardware to itself:
// the receiver says so at start.
func TestWarnsOfAControlLoopItDoesNotName(t *testing.T) {
	core, logs := observer.New(zap.WarnLevel)
	set := receivertest.NewNopSettings(metadata.Type)
	set.Logger = zap.New(core)
	loop := &fakeLoop{reg: backends.NewRegistry(nil)}
	host := hostWith{component.MustNewIDWithName("controlloop", "oven"): loop}
	rcv, err := NewFactory().CreateMetrics(context.Background(), set, testConfig(defaultDevices()...), consumertest.NewNop())
	require.NoError(t, err)
	require.NoError(t, rcv.Start(context.Background(), host))
	require.NoError(t, rcv.Shutdown(context.Background()))
	warns := logs.FilterMessageSnippet("`controlloop` does not name it").All()
	require.Len(t, warns, 1)
	assert.Equal(t, []any{"controlloop/oven"}, warns[0].ContextMap()["extensions"])

	core, logs = observer.New(zap.WarnLevel)
	set.Logger = zap.New(core)
	cfg := testConfig(defaultDevices()...)
	cfg.ControlLoop = new(component.MustNewIDWithName("controlloop", "oven"))
	rcv, err = NewFactory().CreateMetrics(context.Background(), set, cfg, consumertest.NewNop())
	require.NoError(t, err)
	require.NoError(t, rcv.Start(context.Background(), host))
	require.NoError(t, rcv.Shutdown(context.Background()))
	assert.Zero(t, logs.FilterMessageSnippet("does not name it").Len(), "named: no warning")
}

func TestStartFailsOnBadHardware(t *testing.T) {
	cfg := testConfig(hardware.DeviceConfig{Name: "tank", Kind: hardware.KindDS18B20})
	reg := backends.NewRegistry(nil)
	other, err := reg.Open(hardware.Config{Sim: hardware.SimConfig{Seed: 1}}, hardware.Settings{})
	require.NoError(t, err)
	defer func() { require.NoError(t, other.Close()) }()
	cfg.Sim.Seed = 2
	rcv, err := NewFactory().CreateMetrics(context.Background(), receivertest.NewNopSettings(metadata.Type), cfg, consumertest.NewNop())
	require.NoError(t, err)
	rcv.(*handle).r.registry = reg
	err = rcv.Start(context.Background(), componenttest.NewNopHost())
	require.ErrorContains(t, err, "hardware receiver: sim: the sim plant is already running with a different configuration")
	require.NoError(t, rcv.Shutdown(context.Background()))
}

var _ receiver.Metrics = (*handle)(nil)
