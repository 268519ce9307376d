package drills

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/fieldcol/fieldcol/e2e/internal/harness"
	"github.com/fieldcol/fieldcol/internal/otlpsink"
)

// mountTmpfs mounts a tmpfs of size bytes for the test, standing for the Pi's small state
// partition, and unmounts it when the test ends (after the collectors started later have
// stopped: cleanups run last-in first-out). It needs root; without it the drill skips on a
// developer's machine and fails under CI=true, where a drill must never pass by not running.
func mountTmpfs(t *testing.T, size int64) string {
	t.Helper()
	dir := t.TempDir()
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, fmt.Sprintf("size=%d", size)); err != nil {
		if os.Getenv("CI") != "true" && (errors.Is(err, syscall.EPERM) || errors.Is(err, syscall.EACCES)) {
			t.Skipf("mounting a tmpfs needs root: %v (CI=true turns this skip into a failure)", err)
		}
		t.Fatalf("mounting a tmpfs on %s: %v", dir, err)
	}
	t.Cleanup(func() {
		if err := syscall.Unmount(dir, 0); err != nil {
			t.Errorf("unmounting the tmpfs: %v", err)
		}
	})
	return dir
}

// fillUp writes a ballast file until the file system answers ENOSPC, as a runaway log of
// another program would; bounded by the file system's size.
func fillUp(t *testing.T, dir string, size int64) string {
	t.Helper()
	path := filepath.Join(dir, "ballast")
	f, err := os.Create(path)
	require.NoError(t, err)
	defer f.Close()
	chunk := make([]byte, 64<<10)
	for written := int64(0); written <= size; written += int64(len(chunk)) {
		if _, err := f.Write(chunk); err != nil {
			require.ErrorIs(t, err, syscall.ENOSPC)
			return path
		}
	}
	t.Fatalf("wrote %d bytes to a %d-byte tmpfs without ENOSPC", size, size)
	return ""
}

// Drill 3, filesystem exhaustion: the partition of the disk queue and the latch file (a
// small tmpfs) fills up with another program's data while an application sends records and
// the gateway is up. The disk queue counts its failed writes and applies when_full; the
// control loop keeps running and still goes safe on a sensor fault, though its latch cannot
// be persisted; once space returns, forwarding resumes by itself.
//
// Three policies. The shipped `drop_oldest` deletes only the queue's own oldest data; on a
// disk full of someone else's data it soon has nothing of its own left and then refuses
// the incoming batches with a retryable error (refused{reason="full"}) instead of answering
// success for what it did not keep. `drop_newest` refuses at once. `block`'s backpressure
// holds the senders until their deadline. Under none of them may an acknowledged record be
// lost beyond what drop_oldest counted as dropped from its own data.
func TestDrillFilesystemExhaustion(t *testing.T) {
	fullDrillOnly(t)
	for _, policy := range []string{"drop_oldest", "drop_newest", "block"} {
		t.Run(policy, func(t *testing.T) { filesystemDrill(t, policy) })
	}
}

func filesystemDrill(t *testing.T, policy string) {
	const size = 24 << 20
	disk := mountTmpfs(t, size)
	sink := otlpsink.Start(t)
	gateway := sink.ServeHTTP(t)
	var extra []string
	if policy != "drop_oldest" {
		extra = append(extra, harness.Overlay(t, "exporters:\n  diskqueue:\n    when_full: "+policy+"\n"))
	}
	edge := startDrillEdge(t, extra, harness.GatewayAt(gateway),
		"FIELDCOL_DISKQUEUE_DIR="+filepath.Join(disk, "diskqueue"),
		"FIELDCOL_LATCH_FILE="+filepath.Join(disk, "latches.json"))
	prom := startDrillProm(t, edge.Metrics)
	alerts := watchAlerts(t, prom)
	begin := time.Now()
	waitLoop(t, edge, "oven", 60*time.Second, loopView.running)

	records := startRecords(t, edge.OTLPGRPC, t.Name(), 20*time.Millisecond, 100000)
	harness.WaitUntil(t, 30*time.Second, 50*time.Millisecond, func() (bool, string) {
		return records.ackedCount() >= 50, fmt.Sprintf("%d records acknowledged", records.ackedCount())
	})

	enospc := func() float64 {
		v, err := edge.ScrapeSum("otelcol_exporter_diskqueue_write_errors", `error_type="enospc"`)
		if err != nil {
			return -1
		}
		return v
	}
	full := time.Now()
	ballast := fillUp(t, disk, size)
	harness.WaitUntil(t, 30*time.Second, 20*time.Millisecond, func() (bool, string) {
		return enospc() > 0, fmt.Sprintf("enospc write errors: %v", enospc())
	})
	detect := time.Since(full)

	// The control loop does not depend on the disk: it keeps its rate and its safety.
	before := getLoop(t, edge, "oven")
	time.Sleep(3 * time.Second)
	during := getLoop(t, edge, "oven")
	assert.True(t, during.running(), "a full disk must not stop the oven: %+v", during)
	assert.GreaterOrEqual(t, during.cycle-before.cycle, uint64(15), "the loop slowed on a full disk")
	injected := time.Now()
	simFault(t, edge, `{"device":"oven_temp","kind":"nan"}`)
	// Safe at once; the latch is shown only once it is on disk, which a full disk refuses,
	// so it is reported, not required (the loop stays safe either way).
	safe := waitLoop(t, edge, "oven", 5*time.Second, func(v loopView) bool { return v.safe })
	safeAfter := time.Since(injected)
	assert.Zero(t, safe.output)
	latchShown := getLoop(t, edge, "oven").isLatched("sensor_fault")

	// The alert that pages for a full disk, through the pipeline into Prometheus.
	alertState := "DiskQueueWriteErrors fired"
	if policy != "block" {
		alerts.waitFiring(t, "DiskQueueWriteErrors", 120*time.Second)
	} else {
		// With block, the metrics pipeline that carries the edge's own counters to
		// Prometheus waits on the same full queue: measure whether the alert gets out.
		waitFor := 60 * time.Second
		deadline := time.Now().Add(waitFor)
		for len(alerts.firedSinceAll(full)) == 0 && time.Now().Before(deadline) {
			time.Sleep(250 * time.Millisecond)
		}
		if len(alerts.firedSinceAll(full)) == 0 {
			alertState = fmt.Sprintf("no alert within %s: the blocked pipeline also holds the edge's own metrics", waitFor)
		}
	}
	require.False(t, edge.Proc.Exited(), "the edge died on a full disk")

	freed := time.Now()
	require.NoError(t, os.Remove(ballast))
	records.mu.Lock()
	firstAfter := records.sent
	records.mu.Unlock()
	// Normal again when a record sent after the space returned reaches the gateway.
	harness.WaitUntil(t, 60*time.Second, 50*time.Millisecond, func() (bool, string) {
		for _, n := range harness.RecordArrivals(t, sink, records.run) {
			if n >= firstAfter {
				return true, ""
			}
		}
		return false, fmt.Sprintf("no record sent after the space returned (from %d) arrived", firstAfter)
	})
	recover := time.Since(freed)
	simFault(t, edge, `{"device":"oven_temp","clear":true}`)
	ackUntilAccepted(t, edge, "oven", 10*time.Second)
	waitLoop(t, edge, "oven", 10*time.Second, loopView.running)

	records.stop()
	// drop_oldest has lost what it dropped for good: once the edge's logs queue is empty,
	// nothing more can arrive, so waiting out the whole timeout would measure nothing.
	harness.WaitUntil(t, 30*time.Second, 100*time.Millisecond, func() (bool, string) {
		v, err := edge.ScrapeSum("otelcol_exporter_diskqueue_records", `signal="logs"`)
		return err == nil && v == 0, fmt.Sprintf("logs backlog %v (%v)", v, err)
	})
	_, d := waitDelivered(t, sink, records, 5*time.Second)
	dropped, err := edge.ScrapeSum("otelcol_exporter_diskqueue_dropped", `signal="logs"`, `reason="full"`)
	require.NoError(t, err)
	refusedFull, err := edge.ScrapeSum("otelcol_exporter_diskqueue_refused", `signal="logs"`, `reason="full"`)
	require.NoError(t, err)
	assert.Zero(t, d.outOfOrder, "records arrived out of order")
	// Whatever was lost was the queue's own data, dropped by drop_oldest and counted (the
	// logs queue also carries the control loop's events, so the counter may exceed the
	// loss); drop_newest and block never drop what they acknowledged.
	assert.LessOrEqual(t, float64(d.lost), dropped, "acknowledged records lost beyond what when_full counted")
	if policy != "drop_oldest" {
		assert.Zero(t, d.lost, "acknowledged records lost under %s", policy)
	}
	refused := 0
	records.mu.Lock()
	refused = records.sent - len(records.acked)
	records.mu.Unlock()

	fig := drillFigures{name: "fs-full/" + policy, detect: detect, recover: recover, lost: d.lost, duplicated: d.duplicated, acked: d.acked,
		alerts: alerts.firedSinceAll(begin),
		note: fmt.Sprintf("%.0f counted dropped (full), %.0f batches counted refused (full), %d records refused to the sender; loop safe %s after a fault on the full disk (latch shown on the full disk: %t); %s",
			dropped, refusedFull, refused, safeAfter.Round(time.Millisecond), latchShown, alertState)}
	fig.report(t)
	edge.Stop(t)
}
