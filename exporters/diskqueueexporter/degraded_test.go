package diskqueueexporter

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/consumer/consumererror"
	"go.opentelemetry.io/collector/exporter"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/fieldcol/fieldcol/exporters/diskqueueexporter/internal/metadatatest"
	"github.com/fieldcol/fieldcol/internal/faultfs"
)

// degradedGauge reads otelcol.exporter.diskqueue.degraded for signal logs (-1 when absent).
func degradedGauge(t *testing.T, tel *componenttest.Telemetry) int64 {
	m, err := tel.GetMetric("otelcol.exporter.diskqueue.degraded")
	if err != nil {
		return -1
	}
	g, ok := m.Data.(metricdata.Gauge[int64])
	require.True(t, ok, "degraded is an int64 gauge")
	for _, dp := range g.DataPoints {
		if v, _ := dp.Attributes.Value("signal"); v.AsString() == "logs" {
			return dp.Value
		}
	}
	return -1
}

// observedSettings records the exporter's telemetry and its logs from info up.
func observedSettings(tel *componenttest.Telemetry) (exporter.Settings, *observer.ObservedLogs) {
	core, logs := observer.New(zapcore.InfoLevel)
	set := metadatatest.NewSettings(tel)
	set.Logger = zap.New(core)
	return set, logs
}

// ownErrors are the exporter's error logs, without exporterhelper's "Exporting failed" line
// that core writes for every batch an exporter refuses.
func ownErrors(logs *observer.ObservedLogs) []observer.LoggedEntry {
	return logs.Filter(func(e observer.LoggedEntry) bool {
		return e.Level == zapcore.ErrorLevel && !strings.HasPrefix(e.Message, "Exporting failed")
	}).All()
}

// TestDegradedStartRecoversByItself: a queue directory that cannot be used at start leaves
// Start successful and the exporter refusing every batch with a retryable error, counted, the
// degraded gauge at 1 and one error log saying what to do; once the operator fixes the
// directory the exporter opens its queue by itself and delivers what it accepts from then on.
func TestDegradedStartRecoversByItself(t *testing.T) {
	tests := []struct {
		name string
		// obstruct makes base unusable and returns the exporter's directory and the fix.
		obstruct   func(t *testing.T, base string) (dir string, fix func())
		wantAdvice string
	}{
		{
			name: "directory is a regular file",
			obstruct: func(t *testing.T, base string) (string, func()) {
				dir := filepath.Join(base, "queue")
				require.NoError(t, os.WriteFile(dir, []byte("not a queue"), 0o600))
				return dir, func() {
					require.NoError(t, os.Remove(dir))
					require.NoError(t, os.Mkdir(dir, 0o750))
				}
			},
			wantAdvice: "a file is in the way",
		},
		{
			name: "parent is a regular file",
			obstruct: func(t *testing.T, base string) (string, func()) {
				parent := filepath.Join(base, "state")
				require.NoError(t, os.WriteFile(parent, []byte("not a directory"), 0o600))
				return filepath.Join(parent, "diskqueue"), func() { require.NoError(t, os.Remove(parent)) }
			},
			wantAdvice: "a file is in the way",
		},
		{
			name:       "read-only directory",
			obstruct:   readOnly,
			wantAdvice: "read",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir, fix := tt.obstruct(t, t.TempDir())
			sink := newSink(t)
			tel := componenttest.NewTelemetry()
			t.Cleanup(func() { require.NoError(t, tel.Shutdown(context.Background())) })
			set, logs := observedSettings(tel)
			exp := startLogs(t, testExporterConfig(dir, sink.srv.URL), set)

			for i := range 3 {
				err := exp.ConsumeLogs(context.Background(), makeLogs("refused"))
				require.ErrorIs(t, err, errDegraded, "attempt %d: nothing is acknowledged without a queue", i)
				assert.False(t, consumererror.IsPermanent(err), "the client must retry, not drop: %v", err)
			}
			assert.Equal(t, int64(1), degradedGauge(t, tel))
			metadatatest.AssertEqualExporterDiskqueueRefused(t, tel, []metricdata.DataPoint[int64]{{
				Attributes: attribute.NewSet(attribute.String("signal", "logs"), attribute.String("reason", "degraded")), Value: 3,
			}, {
				Attributes: attribute.NewSet(attribute.String("signal", "logs"), attribute.String("reason", "full")), Value: 0,
			}}, metricdatatestIgnore()...)
			// The background retry fails every few milliseconds: still one log line, not one a retry.
			assert.Never(t, func() bool { return len(ownErrors(logs)) > 1 }, 100*time.Millisecond, 10*time.Millisecond)
			errorLogs := ownErrors(logs)
			require.Len(t, errorLogs, 1, "one error log per state change, got %v", errorLogs)
			assert.Contains(t, errorLogs[0].ContextMap()["what_to_do"], tt.wantAdvice)
			assert.Contains(t, errorLogs[0].ContextMap()["directory"], dir)

			fix()
			require.Eventually(t, func() bool {
				return exp.ConsumeLogs(context.Background(), makeLogs("after-fix")) == nil
			}, 10*time.Second, 10*time.Millisecond, "the exporter recovers without a restart")
			assert.Equal(t, int64(0), degradedGauge(t, tel))
			require.Eventually(t, func() bool { return sink.has("after-fix") }, 10*time.Second, 10*time.Millisecond)
			assert.False(t, sink.has("refused"), "a refused batch was never stored")
			assert.Len(t, logs.FilterMessage("diskqueue opened its queue and accepts batches again").All(), 1)
			require.NoError(t, exp.Shutdown(context.Background()))
		})
	}
}

// readOnly makes base read-only: a read-only tmpfs as root (permission bits do not stop
// root), mode 0500 otherwise.
func readOnly(t *testing.T, base string) (string, func()) {
	dir := filepath.Join(base, "diskqueue")
	if os.Geteuid() != 0 {
		require.NoError(t, os.Chmod(base, 0o500))
		t.Cleanup(func() { _ = os.Chmod(base, 0o700) })
		return dir, func() { require.NoError(t, os.Chmod(base, 0o700)) }
	}
	if err := syscall.Mount("tmpfs", base, "tmpfs", syscall.MS_RDONLY, "size=4m"); err != nil {
		t.Skipf("running as root, where mode 0500 does not stop writes, and a read-only tmpfs cannot be mounted here: %v", err)
	}
	t.Cleanup(func() { _ = syscall.Unmount(base, syscall.MNT_DETACH) })
	return dir, func() {
		require.NoError(t, syscall.Mount("tmpfs", base, "tmpfs", syscall.MS_REMOUNT, "size=4m"))
	}
}

// TestDegradedWhileAnotherExporterHoldsTheQueue: a lock held by another exporter with the
// same id (or another collector) degrades the second one until the first lets go.
func TestDegradedWhileAnotherExporterHoldsTheQueue(t *testing.T) {
	dir := t.TempDir()
	sink := newSink(t)
	first := startLogs(t, testExporterConfig(dir, sink.srv.URL), crashSettings())
	tel := componenttest.NewTelemetry()
	t.Cleanup(func() { require.NoError(t, tel.Shutdown(context.Background())) })
	set, logs := observedSettings(tel)
	set.ID = crashSettings().ID // the same id is the same queue directory
	second := startLogs(t, testExporterConfig(dir, sink.srv.URL), set)
	require.ErrorIs(t, second.ConsumeLogs(context.Background(), makeLogs("refused")), errDegraded)
	assert.Equal(t, int64(1), degradedGauge(t, tel))
	require.Len(t, ownErrors(logs), 1)
	assert.Contains(t, ownErrors(logs)[0].ContextMap()["what_to_do"], "another collector or exporter holds this queue")

	require.NoError(t, first.Shutdown(context.Background()))
	require.Eventually(t, func() bool {
		return second.ConsumeLogs(context.Background(), makeLogs("second")) == nil
	}, 10*time.Second, 10*time.Millisecond)
	require.Eventually(t, func() bool { return sink.has("second") }, 10*time.Second, 10*time.Millisecond)
	require.NoError(t, second.Shutdown(context.Background()))
}

// TestDegradedShutdownIsClean: a degraded exporter stops its retry and returns no error
// (goleak in TestMain catches a retry loop left running).
func TestDegradedShutdownIsClean(t *testing.T) {
	file := filepath.Join(t.TempDir(), "queue")
	require.NoError(t, os.WriteFile(file, nil, 0o600))
	for _, endpoint := range []string{"", "http://127.0.0.1:1"} {
		exp := startLogs(t, testExporterConfig(file, endpoint), nopSettings())
		require.ErrorIs(t, exp.ConsumeLogs(context.Background(), makeLogs("x")), errDegraded)
		start := time.Now()
		require.NoError(t, exp.Shutdown(context.Background()))
		assert.Less(t, time.Since(start), 2*time.Second, "shutdown does not wait for the retry's backoff")
	}
}

func TestAdviceByCause(t *testing.T) {
	tests := []struct {
		err  error
		want string
	}{
		{&os.PathError{Op: "mkdir", Path: "/q", Err: syscall.ENOTDIR}, "a file is in the way"},
		{&os.PathError{Op: "mkdir", Path: "/q", Err: syscall.EROFS}, "read-only"},
		{&os.PathError{Op: "open", Path: "/q/lock", Err: syscall.EACCES}, "may not write there"},
		{&os.PathError{Op: "mkdir", Path: "/q", Err: syscall.ENOSPC}, "full"},
		{&os.PathError{Op: "mkdir", Path: "/q", Err: syscall.EDQUOT}, "quota"},
		{&os.PathError{Op: "read", Path: "/q/x.seg", Err: syscall.EIO}, "dmesg"},
		{errors.New("something else"), "check the directory"},
	}
	for _, tt := range tests {
		assert.Contains(t, advice(tt.err), tt.want, "%v", tt.err)
	}
}

// TestDegradedByAFullDiskAtStart: ENOSPC while creating the queue directory (faultfs fails
// the fsync of its parent) degrades the exporter; the next retry, with space back, opens the
// queue and what is accepted from then on is delivered.
func TestDegradedByAFullDiskAtStart(t *testing.T) {
	fsys := faultfs.MountT(t, "", faultfs.Options{})
	fsys.FailNext(faultfs.OpDirFsync, "", syscall.ENOSPC)
	sink := newSink(t)
	tel := componenttest.NewTelemetry()
	t.Cleanup(func() { require.NoError(t, tel.Shutdown(context.Background())) })
	set, logs := observedSettings(tel)
	exp := startLogs(t, testExporterConfig(filepath.Join(fsys.Dir(), "diskqueue"), sink.srv.URL), set)
	require.Len(t, ownErrors(logs), 1, "the full disk at start is logged")
	assert.Contains(t, ownErrors(logs)[0].ContextMap()["what_to_do"], "full")
	require.Eventually(t, func() bool {
		return exp.ConsumeLogs(context.Background(), makeLogs("after-space")) == nil
	}, 10*time.Second, 10*time.Millisecond)
	assert.Equal(t, int64(0), degradedGauge(t, tel))
	require.Eventually(t, func() bool { return sink.has("after-space") }, 10*time.Second, 10*time.Millisecond)
	require.NoError(t, exp.Shutdown(context.Background()))
}
