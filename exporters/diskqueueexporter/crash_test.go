package diskqueueexporter

import (
	"bufio"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/exporter"
	"go.opentelemetry.io/collector/pdata/plog/plogotlp"

	"github.com/fieldcol/fieldcol/exporters/diskqueueexporter/internal/metadata"
)

const (
	crashChildEnv    = "FIELDCOL_DISKQUEUE_CRASH_CHILD"
	crashDirEnv      = "FIELDCOL_DISKQUEUE_CRASH_DIR"
	crashEndpointEnv = "FIELDCOL_DISKQUEUE_CRASH_ENDPOINT"
	crashCycleEnv    = "FIELDCOL_DISKQUEUE_CRASH_CYCLE"
)

// crashSettings gives every child the same exporter id, hence the same queue directory.
func crashSettings() exporter.Settings {
	set := nopSettings()
	set.ID = component.NewIDWithName(metadata.Type, "crash")
	return set
}

func crashConfig(dir, endpoint string) *Config {
	cfg := testExporterConfig(dir, endpoint)
	// Small segments so that kills land during rotations and segment deletions too.
	cfg.SegmentSize = 4 << 10
	cfg.FsyncInterval = time.Millisecond
	// Frequent checkpoints, so that the power-cut tests' cuts land in checkpoint writes too
	// (the delivered log makes a kill independent of this interval).
	cfg.CheckpointInterval = 10 * time.Millisecond
	// Two consumers keep the queue busy enough for the power-cut tests' cuts to land in
	// rotations, checkpoints and deletions.
	cfg.NumConsumers = 2
	// One queue record (two log records) a request.
	cfg.SendBatchMaxBytes = 1
	return cfg
}

// killConfig is crashConfig with the shipped default of one request in flight, for
// TestCrashRecovery: a kill must resend at most that request, two records. With more
// consumers a kill also resends the batches accepted after an earlier one that was still
// being retried (the delivered position only moves over a contiguous run).
func killConfig(dir, endpoint string) *Config {
	cfg := crashConfig(dir, endpoint)
	cfg.NumConsumers = 1
	return cfg
}

// TestCrashRecovery runs the exporter in a child process and SIGKILLs it at random moments
// (start-up and repair, append, fsync, rotation, send, ack, checkpoint, deletion), then checks
// that every record the child saw acknowledged reached the sink at least once.
func TestCrashRecovery(t *testing.T) {
	cycles := 200
	if os.Getenv("FIELDCOL_SOAK") == "1" {
		cycles = 1000
	}
	sink := newSink(t)
	sink.failPermille.Store(100)
	dir := t.TempDir()
	acked := map[string]bool{}
	for cycle := range cycles {
		for _, id := range runCrashChild(t, dir, sink.srv.URL, cycle) {
			acked[id] = true
		}
	}
	require.Greater(t, len(acked), cycles, "children must get records acknowledged between kills")

	// A final, clean run drains what the killed children left behind.
	sink.failPermille.Store(0)
	exp := startLogs(t, killConfig(dir, sink.srv.URL), crashSettings())
	var missing []string
	assert.Eventually(t, func() bool {
		missing = missing[:0]
		for id := range acked {
			if !sink.has(id) {
				missing = append(missing, id)
			}
		}
		return len(missing) == 0
	}, 30*time.Second, 20*time.Millisecond)
	require.NoError(t, exp.Shutdown(context.Background()))
	require.Empty(t, missing, "records acknowledged to the pipeline were lost")

	// Every delivered batch is recorded, so a kill resends at most the request in flight,
	// of at most perRequest records.
	dupes := 0
	for _, n := range countIDs(sink.received()) {
		dupes += n - 1
	}
	cfg := killConfig(dir, sink.srv.URL)
	perRequest := 2 * (cfg.SendBatchMaxBytes/minCrashBody(t) + 1)
	bound := cycles * cfg.NumConsumers * perRequest
	t.Logf("%d cycles, %d records acknowledged, all delivered; %d duplicates (%.3f %% of acknowledged; bound %d: %d requests of at most %d records in flight a kill)",
		cycles, len(acked), dupes, 100*float64(dupes)/float64(len(acked)), bound, cfg.NumConsumers, perRequest)
	assert.LessOrEqual(t, dupes, bound, "a kill resent more than what was in flight")
}

func countIDs(ids []string) map[string]int {
	n := map[string]int{}
	for _, id := range ids {
		n[id]++
	}
	return n
}

// minCrashBody is the smallest queue record the crash child writes: two log records with
// the shortest ids it prints.
func minCrashBody(t *testing.T) int {
	body, err := plogotlp.NewExportRequestFromLogs(makeLogs("c0-w0-0-a", "c0-w0-0-b")).MarshalProto()
	require.NoError(t, err)
	return len(body)
}

// runCrashChild starts one child and kills it after a random delay; it returns the ids the
// child printed as acknowledged before it died.
func runCrashChild(t *testing.T, dir, endpoint string, cycle int) []string {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChild$")
	cmd.Env = append(os.Environ(),
		crashChildEnv+"=1", crashDirEnv+"="+dir, crashEndpointEnv+"="+endpoint, crashCycleEnv+"="+strconv.Itoa(cycle))
	out, err := cmd.StdoutPipe()
	require.NoError(t, err)
	cmd.Stderr = nil
	require.NoError(t, cmd.Start())
	// 3 to 60 ms covers start-up (exec, open, tail repair) as well as steady writing. Every
	// fourth kill counts from the child's first acknowledged record, so that kills land in
	// steady writing even when a loaded machine makes start-up take the whole window.
	delay := time.Duration(3+rand.IntN(58)) * time.Millisecond //nolint:gosec // test timing
	kill := func() { _ = cmd.Process.Kill() }
	var timer *time.Timer
	if cycle%4 != 3 {
		timer = time.AfterFunc(delay, kill)
	}
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()

	var ids []string
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		// A line cut by the kill has no "ack " prefix match or is incomplete; the scanner
		// only hands out complete lines, and a partial last line fails the parse below.
		if id, ok := strings.CutPrefix(sc.Text(), "ack "); ok && strings.HasSuffix(id, ";") {
			if timer == nil {
				timer = time.AfterFunc(delay, kill)
			}
			ids = append(ids, strings.TrimSuffix(id, ";"))
		}
	}
	_ = cmd.Wait()
	return ids
}

// TestCrashChild is the child side of TestCrashRecovery; it does nothing in a normal run.
func TestCrashChild(t *testing.T) {
	if os.Getenv(crashChildEnv) != "1" {
		t.Skip("only runs as the child of TestCrashRecovery")
	}
	cycle := os.Getenv(crashCycleEnv)
	exp, err := NewFactory().CreateLogs(context.Background(), crashSettings(), killConfig(os.Getenv(crashDirEnv), os.Getenv(crashEndpointEnv)))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	if err := exp.Start(context.Background(), nopHost()); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	var mu sync.Mutex
	var wg sync.WaitGroup
	deadline := time.Now().Add(10 * time.Second)
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; time.Now().Before(deadline); i++ {
				batch := []string{fmt.Sprintf("c%s-w%d-%d-a", cycle, w, i), fmt.Sprintf("c%s-w%d-%d-b", cycle, w, i)}
				if err := exp.ConsumeLogs(context.Background(), makeLogs(batch...)); err != nil {
					continue
				}
				// Printed only after the pipeline call returned nil: these are the records
				// the exporter promised to keep.
				mu.Lock()
				_, _ = fmt.Fprintf(os.Stdout, "ack %s;\nack %s;\n", batch[0], batch[1])
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	_ = exp.Shutdown(context.Background())
	os.Exit(0)
}
