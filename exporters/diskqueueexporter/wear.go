package diskqueueexporter

import (
	"context"
	"errors"
	"os"
	"sync"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.uber.org/zap"

	"github.com/fieldcol/fieldcol/exporters/diskqueueexporter/internal/sdcard"
)

// wearView is the SD card's view of the exporter: what the process writes to storage since
// start (/proc/self/io), the device's own estimates where it has them, and the projected
// life against device_endurance. procRoot and sysRoot are "/proc" and "/sys" but for tests.
type wearView struct {
	procRoot, sysRoot string
	start             time.Time
	startWritten      int64 // -1 when /proc/self/io cannot be read

	once sync.Once // the first unreadable estimate is logged, not every one
}

// wearRoots gives the procfs and sysfs roots of new exporters; tests point sysfs at a fake.
var wearRoots = defaultWearRoots

func defaultWearRoots() (procRoot, sysRoot string) { return "/proc", "/sys" }

func newWearView(procRoot, sysRoot string) *wearView {
	w := &wearView{procRoot: procRoot, sysRoot: sysRoot, start: time.Now(), startWritten: -1}
	if n, err := sdcard.ProcessWriteBytes(procRoot); err == nil {
		w.startWritten = n
	}
	return w
}

// health reads the eMMC estimates of the device under dir; ok is false for a device
// without them (an SD card) or a directory that cannot be examined.
func (w *wearView) health(dir string, logger *zap.Logger) (sdcard.Health, bool) {
	major, minor, err := sdcard.DeviceOf(dir)
	if err != nil {
		return sdcard.Health{}, false
	}
	h, err := sdcard.ReadHealth(w.sysRoot, major, minor)
	if err != nil {
		if !errors.Is(err, sdcard.ErrNoHealth) {
			w.once.Do(func() { logger.Warn("diskqueue cannot read the storage's life-time estimates", zap.Error(err)) })
		}
		return sdcard.Health{}, false
	}
	return h, true
}

// projectedLife is the seconds until endurance bytes are written at the process's write
// rate since start, less the share an eMMC device reports used; ok is false when it cannot
// be known yet (no endurance configured, nothing written, /proc unreadable).
func (w *wearView) projectedLife(endurance int64, written int64, used float64) (float64, bool) {
	if endurance <= 0 || w.startWritten < 0 || written <= w.startWritten {
		return 0, false
	}
	rate := float64(written-w.startWritten) / time.Since(w.start).Seconds()
	left := float64(endurance) * max(0, 1-used)
	return left / rate, true
}

// registerWear reports the wear metrics of the exporter's queue and of the process.
func (e *diskQueueExporter) registerWear() error {
	w := e.wear
	processAttrs := metric.WithAttributes(attribute.String("signal", e.signal.String()), attribute.String("source", "process"))
	queueAttrs := metric.WithAttributes(attribute.String("signal", e.signal.String()), attribute.String("source", "queue"))
	return errors.Join(
		e.telemetry.RegisterExporterDiskqueueBytesAcceptedCallback(func(_ context.Context, o metric.Int64Observer) error {
			if q := e.q.Load(); q != nil {
				o.Observe(q.Wear().Accepted, e.signalObserve())
			}
			return nil
		}),
		e.telemetry.RegisterExporterDiskqueueBytesWrittenCallback(func(_ context.Context, o metric.Int64Observer) error {
			if q := e.q.Load(); q != nil {
				o.Observe(q.Wear().Written, queueAttrs)
			}
			if n, err := sdcard.ProcessWriteBytes(w.procRoot); err == nil {
				o.Observe(n, processAttrs)
			}
			return nil
		}),
		e.telemetry.RegisterExporterDiskqueueFsyncsCallback(func(_ context.Context, o metric.Int64Observer) error {
			if q := e.q.Load(); q != nil {
				o.Observe(q.Wear().Fsyncs, e.signalObserve())
			}
			return nil
		}),
		e.telemetry.RegisterExporterDiskqueueDeviceLifeUsedCallback(func(_ context.Context, o metric.Float64Observer) error {
			if h, ok := w.health(e.queueDirOrRoot(), e.set.Logger); ok {
				o.Observe(h.LifeUsedA, metric.WithAttributes(attribute.String("signal", e.signal.String()), attribute.String("emmc.area", "a")))
				o.Observe(h.LifeUsedB, metric.WithAttributes(attribute.String("signal", e.signal.String()), attribute.String("emmc.area", "b")))
			}
			return nil
		}),
		e.telemetry.RegisterExporterDiskqueueDevicePreEolCallback(func(_ context.Context, o metric.Int64Observer) error {
			if h, ok := w.health(e.queueDirOrRoot(), e.set.Logger); ok && h.PreEOL > 0 {
				o.Observe(int64(h.PreEOL), e.signalObserve())
			}
			return nil
		}),
		e.telemetry.RegisterExporterDiskqueueDeviceLifeProjectedCallback(func(_ context.Context, o metric.Float64Observer) error {
			if e.cfg.DeviceEndurance <= 0 {
				return nil
			}
			written, err := sdcard.ProcessWriteBytes(w.procRoot)
			if err != nil {
				return nil
			}
			var used float64
			if h, ok := w.health(e.queueDirOrRoot(), e.set.Logger); ok {
				used = max(h.LifeUsedA, h.LifeUsedB)
			}
			if life, ok := w.projectedLife(e.cfg.DeviceEndurance, written, used); ok {
				o.Observe(life, e.signalObserve())
			}
			return nil
		}),
	)
}

// queueDirOrRoot is the queue directory, or the configured root while the queue directory
// does not exist yet (degraded): both live on the device that wears.
func (e *diskQueueExporter) queueDirOrRoot() string {
	if _, err := os.Stat(e.queueDir()); err == nil {
		return e.queueDir()
	}
	return e.cfg.Directory
}
