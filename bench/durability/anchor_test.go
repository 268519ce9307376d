package durability

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/open-telemetry/opentelemetry-collector-contrib/extension/storage/filestorage"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/confmap"
	"go.opentelemetry.io/collector/exporter"
	"go.opentelemetry.io/collector/exporter/exportertest"
	"go.opentelemetry.io/collector/exporter/otlphttpexporter"
	"go.opentelemetry.io/collector/extension/extensiontest"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/fieldcol/fieldcol/exporters/diskqueueexporter"
	"github.com/fieldcol/fieldcol/internal/faultfs"
	"github.com/fieldcol/fieldcol/internal/otlpsink"
)

const (
	childEnv    = "FIELDCOL_ANCHOR_CHILD"
	dirEnv      = "FIELDCOL_ANCHOR_DIR"
	endpointEnv = "FIELDCOL_ANCHOR_ENDPOINT"
	cycleEnv    = "FIELDCOL_ANCHOR_CYCLE"
	drainEnv    = "FIELDCOL_ANCHOR_DRAIN"
)

// subjects are the queues under test, by name.
var subjects = []string{"diskqueue fsync=batch", "file_storage fsync=true", "file_storage fsync=false"}

// running is a started subject.
type running struct {
	exp   exporter.Logs
	comps []component.Component
}

func (r *running) stop() error {
	errs := []error{r.exp.Shutdown(context.Background())}
	for _, c := range r.comps {
		errs = append(errs, c.Shutdown(context.Background()))
	}
	return errors.Join(errs...)
}

type host struct {
	ext map[component.ID]component.Component
}

func (h host) GetExtensions() map[component.ID]component.Component { return h.ext }

// startSubject starts the named queue on dir, sending to endpoint. Both are configured to
// retry fast and to send small requests, so that a run has a backlog, sends, acks and (for
// diskqueue) rotations and deletions within tens of milliseconds.
func startSubject(name, dir, endpoint string, logger *zap.Logger) (*running, error) {
	ctx := context.Background()
	if strings.HasPrefix(name, "diskqueue") {
		f := diskqueueexporter.NewFactory()
		cfg := f.CreateDefaultConfig()
		settings := map[string]any{
			"directory":            dir,
			"segment_size":         4096,
			"fsync":                "batch",
			"fsync_interval":       "1ms",
			"num_consumers":        2,
			"send_batch_max_bytes": 2048,
			"http":                 map[string]any{"endpoint": endpoint, "compression": "none"},
			"retry_on_failure":     map[string]any{"initial_interval": "5ms", "max_interval": "20ms"},
		}
		// What a power cut resends is bounded by checkpoint_interval: a run can set it.
		if v := os.Getenv("FIELDCOL_ANCHOR_CHECKPOINT_INTERVAL"); v != "" {
			settings["checkpoint_interval"] = v
		}
		if err := confmap.NewFromStringMap(settings).Unmarshal(cfg); err != nil {
			return nil, err
		}
		set := exportertest.NewNopSettings(f.Type())
		set.ID = component.MustNewIDWithName("diskqueue", "anchor")
		set.Logger = logger
		exp, err := f.CreateLogs(ctx, set, cfg)
		if err != nil {
			return nil, err
		}
		r := &running{exp: exp}
		if err := exp.Start(ctx, host{}); err != nil {
			_ = r.stop()
			return nil, err
		}
		return r, nil
	}

	storageID := component.MustNewID("file_storage")
	sf := filestorage.NewFactory()
	scfg := sf.CreateDefaultConfig().(*filestorage.Config)
	scfg.Directory = dir
	scfg.FSync = strings.HasSuffix(name, "fsync=true")
	sset := extensiontest.NewNopSettings(sf.Type())
	sset.ID = storageID
	sset.Logger = logger
	ext, err := sf.Create(ctx, sset, scfg)
	if err != nil {
		return nil, err
	}
	h := host{ext: map[component.ID]component.Component{storageID: ext}}
	if err := ext.Start(ctx, h); err != nil {
		return nil, fmt.Errorf("file_storage: %w", err)
	}
	f := otlphttpexporter.NewFactory()
	cfg := f.CreateDefaultConfig()
	if err := confmap.NewFromStringMap(map[string]any{
		"endpoint":    endpoint,
		"compression": "none",
		"sending_queue": map[string]any{
			"storage":           "file_storage",
			"queue_size":        1 << 20,
			"sizer":             "requests",
			"num_consumers":     2,
			"block_on_overflow": true,
		},
		"retry_on_failure": map[string]any{"initial_interval": "5ms", "max_interval": "20ms"},
	}).Unmarshal(cfg); err != nil {
		return nil, err
	}
	set := exportertest.NewNopSettings(f.Type())
	set.ID = component.MustNewIDWithName("otlp_http", "anchor")
	set.Logger = logger
	exp, err := f.CreateLogs(ctx, set, cfg)
	if err != nil {
		_ = ext.Shutdown(ctx)
		return nil, err
	}
	r := &running{exp: exp, comps: []component.Component{ext}}
	if err := exp.Start(ctx, h); err != nil {
		_ = r.stop()
		return nil, err
	}
	return r, nil
}

// sink is internal/otlpsink over OTLP/HTTP, refusing a share of requests as a flaky
// gateway does so that a backlog stays on disk, counting every record body it accepted.
type sink struct {
	*otlpsink.Sink
	url     string
	counted int // requests already in seen
	seen    map[string]int
}

func newSink(t *testing.T) *sink {
	s := otlpsink.Start(t)
	return &sink{Sink: s, url: s.ServeHTTP(t), seen: map[string]int{}}
}

func (s *sink) count(ids map[string]bool) (delivered, dupes int) {
	logs := s.Logs()
	for _, ld := range logs[s.counted:] {
		for _, body := range otlpsink.LogBodies(ld) {
			s.seen[body]++
		}
	}
	s.counted = len(logs)
	for id := range ids {
		if n := s.seen[id]; n > 0 {
			delivered++
			dupes += n - 1
		}
	}
	return delivered, dupes
}

// outOfOrder counts records that first arrived after a later record of the same sender
// (one of a child's four writers, whose records it numbers in order).
func (s *sink) outOfOrder() int {
	seen := map[string]bool{}
	furthest := map[string]int{}
	n := 0
	for _, ld := range s.Logs() {
		for _, body := range otlpsink.LogBodies(ld) {
			if seen[body] {
				continue
			}
			seen[body] = true
			// c<cycle>-w<writer>-<i>-<a|b>
			parts := strings.Split(body, "-")
			if len(parts) != 4 {
				continue
			}
			i, err := strconv.Atoi(parts[2])
			if err != nil {
				continue
			}
			idx, sender := 2*i, parts[0]+"-"+parts[1]
			if parts[3] == "b" {
				idx++
			}
			if f, ok := furthest[sender]; ok && idx < f {
				n++
				continue
			}
			furthest[sender] = idx
		}
	}
	return n
}

// result is what one subject's run measured.
type result struct {
	subject        string
	cuts           int
	acked          int
	lost           int
	dupes          int
	openFailures   int
	firstOpenError string
	logs           map[string]int // warning and error messages of the children, by message
	blocksLost     int
	entriesUndone  int
	outOfOrder     int // records a sender acknowledged after another that arrived before them
}

// TestPowerCutAnchors cuts the power under each subject on the same harness and reports
// records acknowledged, lost and duplicated, queues that failed to open after a cut and
// what the logs said. It fails if diskqueue loses an acknowledged record or fails to
// open; the anchors' losses are findings, reported, not failures.
func TestPowerCutAnchors(t *testing.T) {
	faultfs.Require(t)
	compare(t, "cuts", cycles(t, 20, 200), runCuts)
}

// TestKillAnchors is TestPowerCutAnchors with kill -9 instead of power cuts, on a plain
// directory: the page cache survives, so what is resent is what was in flight (diskqueue
// records every delivered batch) or what the queue had not yet recorded as delivered.
func TestKillAnchors(t *testing.T) {
	compare(t, "kills", cycles(t, 40, 1000), runKills)
}

// cycles is the number of cuts or kills per subject: short, soak, or FIELDCOL_ANCHOR_CUTS.
func cycles(t *testing.T, short, soak int) int {
	n := short
	if os.Getenv("FIELDCOL_SOAK") == "1" {
		n = soak
	}
	if v := os.Getenv("FIELDCOL_ANCHOR_CUTS"); v != "" {
		var err error
		n, err = strconv.Atoi(v)
		require.NoError(t, err, "FIELDCOL_ANCHOR_CUTS")
	}
	return n
}

// compare runs every subject through n cuts or kills and logs their results side by side,
// duplicates also as a share of the records acknowledged.
func compare(t *testing.T, what string, n int, run func(t *testing.T, subj string, n int) result) {
	var results []result
	for _, subj := range subjects {
		t.Run(strings.ReplaceAll(subj, " ", "_"), func(t *testing.T) {
			res := run(t, subj, n)
			results = append(results, res)
			require.Positive(t, res.acked, "the harness must get records acknowledged between %s", what)
			if strings.HasPrefix(subj, "diskqueue") {
				assert.Zero(t, res.lost, "diskqueue lost acknowledged records")
				assert.Zero(t, res.openFailures, "diskqueue failed to open after one of the %s", what)
			}
		})
	}
	for _, r := range results {
		var msgs []string
		for m, n := range r.logs {
			msgs = append(msgs, fmt.Sprintf("%dx %q", n, m))
		}
		sort.Strings(msgs)
		t.Logf("%-26s %s %d, acked %d, lost %d, duplicates %d (%.3f %%), out of order %d, failed to open %d (%s); %d unsynced blocks dropped, %d directory entries undone; logs: %s",
			r.subject, what, r.cuts, r.acked, r.lost, r.dupes, 100*float64(r.dupes)/float64(max(r.acked, 1)), r.outOfOrder, r.openFailures, r.firstOpenError, r.blocksLost, r.entriesUndone, strings.Join(msgs, "; "))
	}
}

// TestFirstStartPowerCut cuts the power during a subject's very first run, before any
// clean stop: the queue's files and directories are new, and only the fsyncs the subject
// makes itself keep their names. Each run starts on a fresh disk.
func TestFirstStartPowerCut(t *testing.T) {
	faultfs.Require(t)
	runs := 5
	if os.Getenv("FIELDCOL_SOAK") == "1" {
		runs = 50
	}
	for _, subj := range subjects {
		t.Run(strings.ReplaceAll(subj, " ", "_"), func(t *testing.T) {
			s := newSink(t)
			acked := map[string]bool{}
			failed, firstErr := 0, ""
			for run := range runs {
				s.RefuseShare(1000) // nothing leaves before the cut
				root := t.TempDir()
				fsys := faultfs.MountT(t, root, faultfs.Options{Seed: uint64(run)}) //nolint:gosec // run >= 0
				c := runChild(t, fsys, subj, s.url, run)
				runAcked := map[string]bool{}
				for _, id := range c.acked {
					runAcked[id] = true
					acked[id] = true
				}
				s.RefuseShare(0)
				fsys = faultfs.MountT(t, root, faultfs.Options{})
				d := drainChild(t, fsys, subj, s, runAcked)
				require.NoError(t, fsys.Unmount())
				if d.startErr != "" {
					failed++
					if firstErr == "" {
						firstErr = d.startErr
					}
				}
			}
			delivered, dupes := s.count(acked)
			require.Positive(t, len(acked), "the harness must get records acknowledged before the cut")
			t.Logf("%-26s first-start cuts %d, acked %d, lost %d, duplicates %d, failed to open %d %s",
				subj, runs, len(acked), len(acked)-delivered, dupes, failed, firstErr)
			if strings.HasPrefix(subj, "diskqueue") {
				assert.Equal(t, len(acked), delivered, "diskqueue lost acknowledged records")
				assert.Zero(t, failed)
			}
		})
	}
}

// disk is where a child's queue lives: a faultfs mount (power cuts) or a plain directory
// (kill -9). CutWith ends the child with kill and, on a mount, rolls back what was not
// durable.
type disk interface {
	Dir() string
	Backing() string
	CutWith(kill func()) (faultfs.CutReport, error)
}

// plainDir is a disk where the end of a child is only a kill -9.
type plainDir string

func (d plainDir) Dir() string     { return string(d) }
func (d plainDir) Backing() string { return string(d) }
func (plainDir) CutWith(kill func()) (faultfs.CutReport, error) {
	kill()
	return faultfs.CutReport{}, nil
}

// runCuts runs one subject through cuts power cuts on one directory, then drains.
func runCuts(t *testing.T, subj string, cuts int) result {
	root := t.TempDir()
	return runCycles(t, subj, cuts, func(cycle int) (disk, func()) {
		opts := faultfs.Options{}
		if cycle >= 0 {
			opts = faultfs.Options{Seed: uint64(cycle), TornWrites: cycle%2 == 1} //nolint:gosec // cycle >= 0
		}
		fsys := faultfs.MountT(t, root, opts)
		return fsys, func() { require.NoError(t, fsys.Unmount()) }
	})
}

// runKills runs one subject through kills kill -9s on one directory, then drains.
func runKills(t *testing.T, subj string, kills int) result {
	dir := plainDir(t.TempDir())
	return runCycles(t, subj, kills, func(int) (disk, func()) { return dir, func() {} })
}

// runCycles runs one subject through n ends of a child on one directory, then drains.
// attach gives the disk for a cycle (-1 for the first start and the drain) and its release.
func runCycles(t *testing.T, subj string, n int, attach func(cycle int) (disk, func())) result {
	res := result{subject: subj, logs: map[string]int{}}
	s := newSink(t)
	s.RefuseShare(100)
	acked := map[string]bool{}

	// A first clean start and stop creates the queue's files and makes their names
	// durable, as a collector that ran once before its first power cut has.
	d, release := attach(-1)
	r, err := startSubject(subj, d.Dir(), s.url, zap.NewNop())
	require.NoError(t, err)
	require.NoError(t, r.stop())
	release()

	limit := time.Duration(n)*(1200*time.Millisecond+window(t)) + time.Minute // about 0.3 s a cycle here at the default window
	deadline := time.Now().Add(limit)
	for cycle := range n {
		require.True(t, time.Now().Before(deadline), "%s: only %d of %d cycles in %v", subj, cycle, n, limit)
		d, release := attach(cycle)
		c := runChild(t, d, subj, s.url, cycle)
		for _, id := range c.acked {
			acked[id] = true
		}
		for m, k := range c.logs {
			res.logs[m] += k
		}
		res.blocksLost += c.report.BlocksLost
		res.entriesUndone += c.report.EntriesUndone
		res.cuts++
		if c.startErr != "" {
			res.openFailures++
			if res.firstOpenError == "" {
				res.firstOpenError = c.startErr
			}
			// The queue cannot open: an operator deletes it so the collector runs
			// again. Whatever it held is lost, which the final count shows.
			entries, err := os.ReadDir(d.Backing())
			require.NoError(t, err)
			for _, e := range entries {
				require.NoError(t, os.RemoveAll(filepath.Join(d.Backing(), e.Name())))
			}
		}
		release()
	}

	// Power back for good: drain to a healthy sink until everything acknowledged arrived
	// or nothing new arrived for two seconds. The drain runs in a child too: a queue that
	// a cut corrupted may panic on open (bbolt does), which must not take the test down.
	s.RefuseShare(0)
	d, release = attach(-1)
	dr := drainChild(t, d, subj, s, acked)
	for m, k := range dr.logs {
		res.logs[m] += k
	}
	if dr.startErr != "" {
		res.openFailures++
		if res.firstOpenError == "" {
			res.firstOpenError = dr.startErr
		}
	}
	release()
	delivered, dupes := s.count(acked)
	res.acked, res.lost, res.dupes = len(acked), len(acked)-delivered, dupes
	res.outOfOrder = s.outOfOrder()
	return res
}

// childRun is what one child did before the cut.
type childRun struct {
	acked    []string
	startErr string
	logs     map[string]int
	report   faultfs.CutReport
}

// child is a running child process and what it reported.
type child struct {
	cmd         *exec.Cmd
	exited      chan struct{}
	firstAck    chan struct{} // closed at the child's first acknowledged record
	run         childRun
	startFailed atomic.Bool
}

// spawn starts a child on the mount; drain children send their backlog and write nothing.
func spawn(t *testing.T, fsys disk, subj, endpoint string, cycle int, drain bool) *child {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestPowerCutChild$")
	cmd.Env = append(os.Environ(), childEnv+"="+subj, dirEnv+"="+fsys.Dir(), endpointEnv+"="+endpoint, cycleEnv+"="+strconv.Itoa(cycle))
	if drain {
		cmd.Env = append(cmd.Env, drainEnv+"=1")
	}
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	stderr, err := cmd.StderrPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	c := &child{cmd: cmd, exited: make(chan struct{}), firstAck: make(chan struct{}), run: childRun{logs: map[string]int{}}}
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			line := sc.Text()
			if id, ok := strings.CutPrefix(line, "ack "); ok && strings.HasSuffix(id, ";") {
				if len(c.run.acked) == 0 {
					close(c.firstAck)
				}
				c.run.acked = append(c.run.acked, strings.TrimSuffix(id, ";"))
			} else if msg, ok := strings.CutPrefix(line, "startfail "); ok {
				c.run.startErr = msg
				c.startFailed.Store(true)
			}
		}
	}()
	go func() {
		defer wg.Done()
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			var entry struct {
				Msg string `json:"msg"`
			}
			if json.Unmarshal(sc.Bytes(), &entry) == nil && entry.Msg != "" {
				c.run.logs[entry.Msg]++
			} else if msg, ok := strings.CutPrefix(sc.Text(), "panic: "); ok && !c.startFailed.Load() {
				// The process crashed: as far as the collector goes, it cannot run
				// on this queue (it would crash again at every start).
				c.run.startErr = "panic: " + msg
				c.run.logs["panic: "+msg]++
				c.startFailed.Store(true)
			}
		}
	}()
	go func() {
		wg.Wait()
		close(c.exited)
	}()
	return c
}

// runChild starts a child on the disk and cuts the power (or kills it) 10 to 120 ms later, counted from
// the start or, every other cycle, from its first acknowledged record (at once when the
// child failed to start or crashed).
func runChild(t *testing.T, fsys disk, subj, endpoint string, cycle int) childRun {
	t.Helper()
	c := spawn(t, fsys, subj, endpoint, cycle, false)
	// Every other cut is timed from the child's first acknowledged record, so that cuts land
	// in steady writing even when a loaded machine makes start-up take the whole window.
	if cycle%2 == 1 {
		select {
		case <-c.firstAck:
		case <-c.exited:
		}
	}
	delay := 10*time.Millisecond + rand.N(window(t)) //nolint:gosec // test timing
	select {
	case <-time.After(delay):
	case <-c.exited:
	}
	var err error
	c.run.report, err = fsys.CutWith(func() { _ = c.cmd.Process.Kill() })
	require.NoError(t, err)
	<-c.exited
	_ = c.cmd.Wait()
	if !c.startFailed.Load() {
		c.run.startErr = ""
	}
	return c.run
}

// window is the range of the random delay before a cut or kill: 110 ms, or
// FIELDCOL_ANCHOR_WINDOW (a duration) for runs where each child acknowledges more.
func window(t *testing.T) time.Duration {
	v := os.Getenv("FIELDCOL_ANCHOR_WINDOW")
	if v == "" {
		return 110 * time.Millisecond
	}
	d, err := time.ParseDuration(v)
	require.NoError(t, err, "FIELDCOL_ANCHOR_WINDOW")
	require.Positive(t, d, "FIELDCOL_ANCHOR_WINDOW")
	return d
}

// drainChild runs a drain child until every acknowledged record arrived, nothing new
// arrived for two seconds, or the child died; then stops it.
func drainChild(t *testing.T, fsys disk, subj string, s *sink, acked map[string]bool) childRun {
	t.Helper()
	c := spawn(t, fsys, subj, s.url, -1, true)
	last, lastChange := -1, time.Now()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for done := false; !done && time.Since(lastChange) < 2*time.Second; {
		select {
		case <-c.exited:
			done = true
		case <-tick.C:
			delivered, _ := s.count(acked)
			if delivered == len(acked) {
				done = true
			}
			if delivered != last {
				last, lastChange = delivered, time.Now()
			}
		}
	}
	_ = c.cmd.Process.Kill()
	<-c.exited
	_ = c.cmd.Wait()
	if !c.startFailed.Load() {
		c.run.startErr = ""
	}
	return c.run
}

// TestPowerCutChild is the child side of the anchors; it does nothing in a normal run.
func TestPowerCutChild(t *testing.T) {
	subj := os.Getenv(childEnv)
	if subj == "" {
		t.Skip("only runs as the child of TestPowerCutAnchors")
	}
	enc := zapcore.NewJSONEncoder(zap.NewProductionEncoderConfig())
	logger := zap.New(zapcore.NewCore(enc, zapcore.Lock(os.Stderr), zapcore.WarnLevel))
	r, err := startSubject(subj, os.Getenv(dirEnv), os.Getenv(endpointEnv), logger)
	if err != nil {
		fmt.Printf("startfail %s\n", strings.ReplaceAll(err.Error(), "\n", " "))
		os.Exit(3)
	}
	if os.Getenv(drainEnv) == "1" {
		// Send the backlog until the parent, satisfied, kills the process.
		time.Sleep(30 * time.Second) //nolint:forbidigo // the parent ends this process
		_ = r.stop()
		os.Exit(0)
	}
	cycle := os.Getenv(cycleEnv)
	var mu sync.Mutex
	var wg sync.WaitGroup
	deadline := time.Now().Add(20 * time.Second)
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; time.Now().Before(deadline); i++ {
				a, b := fmt.Sprintf("c%s-w%d-%d-a", cycle, w, i), fmt.Sprintf("c%s-w%d-%d-b", cycle, w, i)
				ld := plog.NewLogs()
				lrs := ld.ResourceLogs().AppendEmpty().ScopeLogs().AppendEmpty().LogRecords()
				lrs.AppendEmpty().Body().SetStr(a)
				lrs.AppendEmpty().Body().SetStr(b)
				if err := r.exp.ConsumeLogs(context.Background(), ld); err != nil {
					continue
				}
				// Printed only once the pipeline call returned nil: the queue promised
				// to keep these.
				mu.Lock()
				fmt.Printf("ack %s;\nack %s;\n", a, b)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	_ = r.stop()
	os.Exit(0)
}
