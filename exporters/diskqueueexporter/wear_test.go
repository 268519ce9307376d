package diskqueueexporter

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/fieldcol/fieldcol/exporters/diskqueueexporter/internal/sdcard"
)

// fakeEMMC builds a sysfs tree in which the device holding dir is an eMMC disk that reports
// life_time and pre_eol_info.
func fakeEMMC(t *testing.T, dir, lifeTime, preEOL string) string {
	major, minor, err := sdcard.DeviceOf(dir)
	require.NoError(t, err)
	sys := t.TempDir()
	disk := filepath.Join(sys, "devices", "mmcblk0")
	require.NoError(t, os.MkdirAll(filepath.Join(disk, "device"), 0o755))
	require.NoError(t, os.MkdirAll(filepath.Join(sys, "dev", "block"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(disk, "device", "life_time"), []byte(lifeTime), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(disk, "device", "pre_eol_info"), []byte(preEOL), 0o644))
	require.NoError(t, os.Symlink(disk, filepath.Join(sys, "dev", "block", fmt.Sprintf("%d:%d", major, minor))))
	return sys
}

// metricValue is the value of the named metric's point whose attributes include attrs.
func metricValue(t *testing.T, tel *componenttest.Telemetry, name string, attrs ...attribute.KeyValue) (float64, bool) {
	t.Helper()
	m, err := tel.GetMetric(name)
	if err != nil {
		return 0, false
	}
	switch d := m.Data.(type) {
	case metricdata.Sum[int64]:
		return pointValue(d.DataPoints, attrs)
	case metricdata.Gauge[int64]:
		return pointValue(d.DataPoints, attrs)
	case metricdata.Gauge[float64]:
		return pointValue(d.DataPoints, attrs)
	}
	return 0, false
}

func pointValue[N int64 | float64](points []metricdata.DataPoint[N], attrs []attribute.KeyValue) (float64, bool) {
	for _, p := range points {
		ok := true
		for _, kv := range attrs {
			v, found := p.Attributes.Value(kv.Key)
			ok = ok && found && v == kv.Value
		}
		if ok {
			return float64(p.Value), true
		}
	}
	return 0, false
}

// TestWearView: the queue's own write amplification (bytes written per byte acknowledged),
// the process's writes, fsyncs, the eMMC estimates from sysfs and the projected life.
func TestWearView(t *testing.T) {
	sink := newSink(t)
	tel := componenttest.NewTelemetry()
	t.Cleanup(func() { require.NoError(t, tel.Shutdown(context.Background())) })
	set, _ := observedSettings(tel)
	dir := t.TempDir()
	cfg := testExporterConfig(dir, sink.srv.URL)
	cfg.DeviceEndurance = 1 << 40
	// The exporter reads a fake sysfs in which the device under dir is an eMMC.
	sys := fakeEMMC(t, dir, "0x02 0x04\n", "0x01\n")
	wearRoots = func() (string, string) { return "/proc", sys }
	t.Cleanup(func() { wearRoots = defaultWearRoots })
	exp := startLogs(t, cfg, set)
	for _, id := range ids("wear", 0, 50) {
		require.NoError(t, exp.ConsumeLogs(context.Background(), makeLogs(id)))
	}
	require.Eventually(t, func() bool { return len(sink.received()) == 50 }, 10*time.Second, 10*time.Millisecond)

	logs := attribute.String("signal", "logs")
	accepted, ok := metricValue(t, tel, "otelcol.exporter.diskqueue.bytes.accepted", logs)
	require.True(t, ok)
	written, ok := metricValue(t, tel, "otelcol.exporter.diskqueue.bytes.written", logs, attribute.String("source", "queue"))
	require.True(t, ok)
	assert.Positive(t, accepted)
	assert.Greater(t, written, accepted, "framing, checkpoints and the delivered log come on top")
	t.Logf("queue write amplification %.2f (%0.f bytes written for %0.f acknowledged)", written/accepted, written, accepted)
	_, ok = metricValue(t, tel, "otelcol.exporter.diskqueue.bytes.written", logs, attribute.String("source", "process"))
	assert.True(t, ok, "/proc/self/io is read")
	fsyncs, ok := metricValue(t, tel, "otelcol.exporter.diskqueue.fsyncs", logs)
	require.True(t, ok)
	assert.Positive(t, fsyncs)
	used, ok := metricValue(t, tel, "otelcol.exporter.diskqueue.device.life.used", logs, attribute.String("emmc.area", "b"))
	require.True(t, ok, "the fake eMMC's life_time is read")
	assert.InDelta(t, 0.4, used, 1e-9)
	eol, ok := metricValue(t, tel, "otelcol.exporter.diskqueue.device.pre_eol", logs)
	require.True(t, ok)
	assert.InDelta(t, 1, eol, 0)
	require.NoError(t, exp.Shutdown(context.Background()))
}

func TestProjectedLife(t *testing.T) {
	w := &wearView{start: time.Now().Add(-100 * time.Second), startWritten: 1000}
	life, ok := w.projectedLife(1e9, 1000+100*1000, 0.5) // 1 kB/s, half the rated life used
	require.True(t, ok)
	assert.InDelta(t, 0.5e9/1000, life, 0.5e9/1000*0.01)
	_, ok = w.projectedLife(0, 5000, 0)
	assert.False(t, ok, "no endurance configured")
	_, ok = w.projectedLife(1e9, 1000, 0)
	assert.False(t, ok, "nothing written yet")
}
