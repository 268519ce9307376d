package edge

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/fieldcol/fieldcol/e2e/internal/harness"
	"github.com/fieldcol/fieldcol/internal/otlpsink"
)

// degradedValues reads otelcol_exporter_diskqueue_degraded by signal from a Prometheus text
// exposition.
func degradedValues(body string) map[string]string {
	out := map[string]string{}
	for _, line := range strings.Split(body, "\n") {
		if !strings.HasPrefix(line, "otelcol_exporter_diskqueue_degraded{") {
			continue
		}
		_, rest, _ := strings.Cut(line, `signal="`)
		signal, _, _ := strings.Cut(rest, `"`)
		fields := strings.Fields(line)
		out[signal] = fields[len(fields)-1]
	}
	return out
}

// loopsRunning returns every loop of GET /api/v1/loops whose state is not running, and the
// cycle counters of all of them.
func loopsRunning(t *testing.T, edge *harness.Collector) (notRunning []string, cycles map[string]float64) {
	t.Helper()
	code, answer := edge.Call(t, http.MethodGet, "/api/v1/loops", harness.APIToken, "")
	require.Equal(t, http.StatusOK, code, "GET /api/v1/loops: %v", answer)
	loops, _ := answer["loops"].([]any)
	require.NotEmpty(t, loops, "GET /api/v1/loops: %v", answer)
	cycles = map[string]float64{}
	for _, l := range loops {
		m, _ := l.(map[string]any)
		name, _ := m["name"].(string)
		if m["state"] != "running" {
			notRunning = append(notRunning, fmt.Sprintf("%s: %v", name, m["state"]))
		}
		cycles[name], _ = m["cycle"].(float64)
	}
	return notRunning, cycles
}

// TestEdgeKeepsItsLoopsWhenTheDiskQueueCannotStart is issue 18 on the built edge with the
// shipped config: the disk queue's directory passes validate but cannot be used at start (a
// regular file sits where the exporter creates its own sub-directory, as a botched restore
// or a mistaken `touch` leaves it). The collector starts anyway, the control loops run, an
// OTLP client of the edge gets a retryable UNAVAILABLE (never a success for what is not on
// disk), the degraded gauge reaches the edge's prometheus exporter, and once the file is
// gone the queue opens by itself and what the client sends reaches the gateway.
func TestEdgeKeepsItsLoopsWhenTheDiskQueueCannotStart(t *testing.T) {
	sink := otlpsink.Start(t)
	queueDir := filepath.Join(t.TempDir(), "diskqueue")
	require.NoError(t, os.Mkdir(queueDir, 0o750))
	// The edge's exporter is `diskqueue`: its queues live in <directory>/diskqueue/<signal>.
	obstacle := filepath.Join(queueDir, "diskqueue")
	require.NoError(t, os.WriteFile(obstacle, []byte("not a queue"), 0o600))
	// A short reopen backoff keeps the recovery within seconds (the shipped max is 60s).
	fastRetry := harness.Overlay(t, "exporters:\n  diskqueue:\n    retry_on_failure:\n      initial_interval: 200ms\n      max_interval: 1s\n")

	started := time.Now()
	edge := harness.StartCollector(t, harness.Binary(t, "fieldcol-edge"), []string{harness.Shipped("distributions/edge/config.yaml"), fastRetry},
		harness.GatewayAt(sink.ServeHTTP(t)), "FIELDCOL_DISKQUEUE_DIR="+queueDir, "FIELDCOL_HW_INTERVAL=1s", "FIELDCOL_DEVICE_ID=pi-degraded-1")
	t.Logf("edge healthy %s after start with an unusable queue directory", time.Since(started).Round(time.Millisecond))

	// Loops start safe and go to running once their sensors have valid readings.
	var first map[string]float64
	harness.WaitUntil(t, 30*time.Second, 100*time.Millisecond, func() (bool, string) {
		var notRunning []string
		notRunning, first = loopsRunning(t, edge)
		return len(notRunning) == 0, fmt.Sprintf("the control loops must run although the disk queue cannot: %v", notRunning)
	})
	t.Logf("loops running %s after start", time.Since(started).Round(time.Millisecond))
	harness.WaitUntil(t, 10*time.Second, 100*time.Millisecond, func() (bool, string) {
		_, now := loopsRunning(t, edge)
		for name, c := range first {
			if now[name] <= c {
				return false, fmt.Sprintf("loop %s is not cycling: %v then %v", name, first, now)
			}
		}
		return true, ""
	})

	client, err := otlpsink.Dial(edge.OTLPGRPC)
	require.NoError(t, err)
	defer client.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	err = client.SendLogs(ctx, harness.SampleLogs(t.Name()+"-refused"))
	cancel()
	require.Error(t, err, "nothing is acknowledged that is not on disk")
	assert.Equal(t, codes.Unavailable, status.Code(err), "a retryable refusal, so the client keeps the batch: %v", err)

	// The collector's own metrics reach the prometheus exporter through its OTLP push (every
	// 15 s): the metrics pipeline fans out to prometheus as well as to the refusing queue.
	var values map[string]string
	harness.WaitUntil(t, 60*time.Second, 500*time.Millisecond, func() (bool, string) {
		values = degradedValues(harness.HTTPGet(t, "http://"+edge.Metrics+"/metrics"))
		return values["logs"] == "1" && values["metrics"] == "1" && values["traces"] == "1",
			fmt.Sprintf("otelcol_exporter_diskqueue_degraded by signal: %v", values)
	})
	log := edge.Proc.Log()
	assert.Contains(t, log, "diskqueue cannot open its queue and runs degraded")
	assert.Contains(t, log, "a file is in the way", "the log says what to do")

	// The operator removes the file: the exporter recovers without a restart.
	fixed := time.Now()
	require.NoError(t, os.Remove(obstacle))
	run := t.Name() + "-after-fix"
	harness.WaitUntil(t, 30*time.Second, 200*time.Millisecond, func() (bool, string) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		err := client.SendLogs(ctx, harness.SampleLogs(run))
		return err == nil, fmt.Sprintf("still refused: %v", err)
	})
	t.Logf("accepting again %s after the obstacle was removed", time.Since(fixed).Round(time.Millisecond))
	harness.WaitUntil(t, 30*time.Second, 200*time.Millisecond, func() (bool, string) {
		return harness.PickLogs(sink.Logs(), run).LogRecordCount() == 3, "the gateway did not get the records accepted after recovery"
	})
	harness.WaitUntil(t, 60*time.Second, 500*time.Millisecond, func() (bool, string) {
		values = degradedValues(harness.HTTPGet(t, "http://"+edge.Metrics+"/metrics"))
		return values["logs"] == "0" && values["metrics"] == "0" && values["traces"] == "0",
			fmt.Sprintf("otelcol_exporter_diskqueue_degraded by signal: %v", values)
	})
	assert.Contains(t, edge.Proc.Log(), "diskqueue opened its queue and accepts batches again")
	notRunning, _ := loopsRunning(t, edge)
	assert.Empty(t, notRunning, "the loops still run after the recovery")

	edge.Stop(t)
}

// TestValidateRefusesADiskQueueDirectoryThatIsAFile: what validate can know, it refuses,
// naming the key.
func TestValidateRefusesADiskQueueDirectoryThatIsAFile(t *testing.T) {
	file := filepath.Join(t.TempDir(), "diskqueue")
	require.NoError(t, os.WriteFile(file, nil, 0o600))
	for name, dir := range map[string]string{"a regular file": file, "under a regular file": filepath.Join(file, "queue")} {
		t.Run(name, func(t *testing.T) {
			cmd := exec.Command(harness.Binary(t, "fieldcol-edge"), "validate", "--config", harness.Shipped("distributions/edge/config.yaml"))
			cmd.Env = append(append(os.Environ(), harness.CommonEnv(t)...), "FIELDCOL_DISKQUEUE_DIR="+dir)
			out, err := cmd.CombinedOutput()
			require.Error(t, err, "%s", out)
			assert.Contains(t, string(out), fmt.Sprintf("directory %q", dir), "the message names the key and the path")
			assert.Contains(t, string(out), "is a regular file")
		})
	}
}
