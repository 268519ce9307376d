package diskqueue

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/open-telemetry/opentelemetry-collector-contrib/extension/storage/filestorage"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/confmap"
	"go.opentelemetry.io/collector/exporter"
	"go.opentelemetry.io/collector/exporter/exportertest"
	"go.opentelemetry.io/collector/exporter/otlphttpexporter"
	"go.opentelemetry.io/collector/extension/extensiontest"
	"go.opentelemetry.io/collector/pdata/plog"

	"golang.org/x/sys/unix"

	"github.com/fieldcol/fieldcol/exporters/diskqueueexporter"
	"github.com/fieldcol/fieldcol/internal/faultfs"
)

const (
	recordSize      = 1024 // bytes of each log record's body
	recordsPerCall  = 100  // records in one pipeline call (one ConsumeLogs)
	callers         = 8    // concurrent pipeline callers (receivers' goroutines)
	manyCallers     = 32   // a busier edge: many local clients at once
	backlogBytes    = 1 << 30
	backlogCallSize = 1000
)

var root string

// slowDiskEnv makes the test binary a faultfs server (see slowDisk) instead of a benchmark.
const slowDiskEnv = "FIELDCOL_BENCH_SLOWDISK_ROOT"

func TestMain(m *testing.M) {
	if r := os.Getenv(slowDiskEnv); r != "" {
		os.Exit(serveSlowDisk(r))
	}
	dir, err := os.MkdirTemp("", "fieldcol-bench-diskqueue-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	root = dir
	code := m.Run()
	_ = os.RemoveAll(dir)
	os.Exit(code)
}

// sink is an OTLP/HTTP receiver that accepts everything, as a healthy gateway does.
func sink(b *testing.B) (string, *atomic.Int64) {
	var bytesIn atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n, _ := io.Copy(io.Discard, r.Body)
		bytesIn.Add(n)
		w.WriteHeader(http.StatusOK)
	}))
	b.Cleanup(srv.Close)
	return srv.URL, &bytesIn
}

// logLine returns a recordSize-byte body that reads like a controller's log line: a
// timestamp, levels, names, random readings and trace ids. It compresses about as well as
// real logs do (a run of one repeated byte would flatter compression).
func logLine(r *rand.Rand) string {
	levels := []string{"INFO", "WARN", "DEBUG", "ERROR"}
	loops := []string{"heater-1", "heater-2", "motor-a", "motor-b", "conveyor"}
	var sb strings.Builder
	for sb.Len() < recordSize {
		fmt.Fprintf(&sb, "2026-11-26T01:%02d:%02d.%03dZ %s loop=%s pv=%.3f sp=%.1f duty=%.4f cycle=%d trace=%016x%016x span=%016x msg=%q ",
			r.IntN(60), r.IntN(60), r.IntN(1000), levels[r.IntN(len(levels))], loops[r.IntN(len(loops))],
			20+r.Float64()*80, 75.0, r.Float64(), r.IntN(1_000_000), r.Uint64(), r.Uint64(), r.Uint64(),
			"cycle completed within deadline")
	}
	return sb.String()[:recordSize]
}

func makeLogs(n int) plog.Logs {
	r := rand.New(rand.NewPCG(1, 2)) //nolint:gosec // deterministic benchmark data
	ld := plog.NewLogs()
	lrs := ld.ResourceLogs().AppendEmpty().ScopeLogs().AppendEmpty().LogRecords()
	for range n {
		lr := lrs.AppendEmpty()
		lr.SetTimestamp(1)
		lr.Body().SetStr(logLine(r))
	}
	return ld
}

type host struct {
	ext map[component.ID]component.Component
}

func (h host) GetExtensions() map[component.ID]component.Component { return h.ext }

func newDir(b *testing.B, name string) string {
	dir, err := os.MkdirTemp(root, name+"-")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = os.RemoveAll(dir) })
	return dir
}

// drive calls ConsumeLogs b.N times from callers goroutines and reports records/s, MB/s
// and the p99 latency of the pipeline's call.
func drive(b *testing.B, exp exporter.Logs, callers int) {
	ld := makeLogs(recordsPerCall)
	ld.MarkReadOnly()
	lat := make([][]time.Duration, callers)
	var next atomic.Int64
	var wg sync.WaitGroup
	b.ResetTimer()
	start := time.Now()
	for c := range callers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for next.Add(1) <= int64(b.N) {
				t0 := time.Now()
				if err := exp.ConsumeLogs(context.Background(), ld); err != nil {
					b.Error(err)
					return
				}
				lat[c] = append(lat[c], time.Since(t0))
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	all := slices.Concat(lat...)
	slices.Sort(all)
	records := float64(b.N * recordsPerCall)
	b.ReportMetric(records/elapsed.Seconds(), "records/s")
	b.ReportMetric(records*recordSize/elapsed.Seconds()/1e6, "MB/s")
	if len(all) > 0 {
		b.ReportMetric(float64(all[len(all)*99/100].Microseconds())/1000, "p99-ms")
	}
}

func diskqueueConfig(dir, endpoint, fsync string) *diskqueueexporter.Config {
	cfg := diskqueueexporter.NewFactory().CreateDefaultConfig().(*diskqueueexporter.Config)
	cfg.Directory = dir
	cfg.Fsync = diskqueueexporter.FsyncMode(fsync)
	cfg.MaxSize = 8 << 30
	cfg.SegmentSize = 64 << 20
	cfg.HTTP.Endpoint = endpoint
	cfg.HTTP.Compression = ""
	cfg.NumConsumers = 2
	return cfg
}

func BenchmarkDiskqueue(b *testing.B) {
	for _, v := range []struct{ fsync, compression string }{
		{"batch", "none"}, {"always", "none"}, {"never", "none"}, {"batch", "zstd"},
	} {
		name := "fsync=" + v.fsync
		if v.compression != "none" {
			name += ",compression=" + v.compression
		}
		b.Run(name, func(b *testing.B) {
			runDiskqueue(b, v.fsync, v.compression, callers)
		})
	}
}

// BenchmarkOTLPHTTPFileStorage is the peer: core's otlphttp exporter whose sending queue is
// persisted by contrib's file_storage extension (one bbolt transaction per request).
func BenchmarkOTLPHTTPFileStorage(b *testing.B) {
	for _, fsync := range []bool{true, false} {
		b.Run(fmt.Sprintf("fsync=%t", fsync), func(b *testing.B) {
			runPeer(b, fsync, callers)
		})
	}
}

// BenchmarkCallers repeats the two durable headline configurations with 1, 2 and 32
// concurrent callers: one caller is a Pi with a single local application, where group
// commit has no one to share an fsync with; 32 is a busy edge.
func BenchmarkCallers(b *testing.B) {
	for _, n := range []int{1, 2, manyCallers} {
		b.Run(fmt.Sprintf("callers=%d/diskqueue/fsync=batch", n), func(b *testing.B) {
			runDiskqueue(b, "batch", "none", n)
		})
		b.Run(fmt.Sprintf("callers=%d/otlphttp_file_storage/fsync=true", n), func(b *testing.B) {
			runPeer(b, true, n)
		})
	}
}

// BenchmarkSlowFsync runs both durable queues on a device whose fsync takes what an SD
// card's does: faultfs (FUSE, root and /dev/fuse needed, skipped otherwise) delays every
// fsync by 2 ms and one in ten by 18 ms more (2 to 20 ms). Both pay the same FUSE overhead
// on every write, so the rows compare with each other, not with the fast-disk rows.
func BenchmarkSlowFsync(b *testing.B) {
	for _, n := range []int{1, 2, callers, manyCallers} {
		b.Run(fmt.Sprintf("callers=%d/diskqueue/fsync=batch", n), func(b *testing.B) {
			dir := slowDisk(b)
			url, _ := sink(b)
			exp := startDiskqueue(b, diskqueueConfig(dir, url, "batch"))
			drive(b, exp, n)
			if err := exp.Shutdown(context.Background()); err != nil {
				b.Fatal(err)
			}
		})
		b.Run(fmt.Sprintf("callers=%d/otlphttp_file_storage/fsync=true", n), func(b *testing.B) {
			runPeerIn(b, slowDisk(b), true, n)
		})
	}
}

// slowDisk mounts a faultfs with SD-card fsync times for the benchmark and returns its
// directory. The FUSE server runs in a child process: bbolt maps its file, and a page fault
// on a mapping served by the faulting process itself deadlocks with the garbage
// collector's stop-the-world.
func slowDisk(b *testing.B) string {
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), slowDiskEnv+"="+newDir(b, "slowdisk"))
	stdin, err := cmd.StdinPipe()
	if err != nil {
		b.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		_ = stdin.Close() // the child unmounts and exits
		_ = cmd.Wait()
	})
	line, err := bufio.NewReader(stdout).ReadString('\n')
	dir, ok := strings.CutPrefix(strings.TrimSpace(line), "mounted ")
	if err != nil || !ok {
		b.Skipf("no slow disk: %q %v", line, err)
	}
	return dir
}

// serveSlowDisk is the child of slowDisk: it mounts a faultfs over root whose fsyncs take
// 2 ms, and one in ten 18 ms more, prints the mount point and serves until stdin closes.
func serveSlowDisk(root string) int {
	if err := faultfs.Available(); err != nil {
		fmt.Printf("unavailable %v\n", err)
		return 0
	}
	fsys, err := faultfs.Mount(root, faultfs.Options{Seed: 1, Schedule: faultfs.Schedule{SlowFsync: 18 * time.Millisecond, SlowFsyncRate: 0.1}})
	if err != nil {
		fmt.Printf("unavailable %v\n", err)
		return 0
	}
	fsys.SetFsyncDelay(2 * time.Millisecond)
	fmt.Printf("mounted %s\n", fsys.Dir())
	_, _ = io.Copy(io.Discard, os.Stdin)
	if err := fsys.Unmount(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

func runDiskqueue(b *testing.B, fsync, compression string, callers int) {
	url, _ := sink(b)
	cfg := diskqueueConfig(newDir(b, "dq"), url, fsync)
	cfg.Compression = diskqueueexporter.Compression(compression)
	exp := startDiskqueue(b, cfg)
	drive(b, exp, callers)
	if err := exp.Shutdown(context.Background()); err != nil {
		b.Fatal(err)
	}
}

func startDiskqueue(b *testing.B, cfg *diskqueueexporter.Config) exporter.Logs {
	f := diskqueueexporter.NewFactory()
	exp, err := f.CreateLogs(context.Background(), exportertest.NewNopSettings(f.Type()), cfg)
	if err != nil {
		b.Fatal(err)
	}
	if err := exp.Start(context.Background(), host{}); err != nil {
		b.Fatal(err)
	}
	return exp
}

func runPeer(b *testing.B, fsync bool, callers int) {
	runPeerIn(b, newDir(b, "fs"), fsync, callers)
}

func runPeerIn(b *testing.B, dir string, fsync bool, callers int) {
	url, _ := sink(b)
	ext, h, err := peerStorage(dir, fsync)
	if err != nil {
		b.Fatal(err)
	}
	exp, err := peerExporter(url, h, "")
	if err != nil {
		b.Fatal(err)
	}
	drive(b, exp, callers)
	if err := errors.Join(exp.Shutdown(context.Background()), ext.Shutdown(context.Background())); err != nil {
		b.Fatal(err)
	}
}

var (
	backlogOnce sync.Once
	backlogDir  string
	backlogErr  error
)

// fillBacklog writes 1 GiB of records into a diskqueue that has no endpoint (so nothing is
// sent), once per process.
func fillBacklog() (string, error) {
	backlogOnce.Do(func() {
		backlogDir = filepath.Join(root, "backlog")
		cfg := diskqueueConfig(backlogDir, "", "never")
		f := diskqueueexporter.NewFactory()
		set := exportertest.NewNopSettings(f.Type())
		set.ID = component.MustNewIDWithName("diskqueue", "backlog")
		exp, err := f.CreateLogs(context.Background(), set, cfg)
		if err != nil {
			backlogErr = err
			return
		}
		if backlogErr = exp.Start(context.Background(), host{}); backlogErr != nil {
			return
		}
		ld := makeLogs(backlogCallSize)
		ld.MarkReadOnly()
		for written := 0; written < backlogBytes; written += backlogCallSize * recordSize {
			if backlogErr = exp.ConsumeLogs(context.Background(), ld); backlogErr != nil {
				return
			}
		}
		backlogErr = exp.Shutdown(context.Background())
	})
	return backlogDir, backlogErr
}

// BenchmarkOpenBacklog1GiB times Start of a diskqueue exporter over a 1 GiB backlog: the
// directory scan, the checkpoint and the validation of the tail segment only.
func BenchmarkOpenBacklog1GiB(b *testing.B) {
	dir, err := fillBacklog()
	if err != nil {
		b.Fatal(err)
	}
	f := diskqueueexporter.NewFactory()
	set := exportertest.NewNopSettings(f.Type())
	set.ID = component.MustNewIDWithName("diskqueue", "backlog")
	cfg := diskqueueConfig(dir, "", "batch")
	b.ResetTimer()
	for range b.N {
		b.StopTimer()
		evict(b, dir)
		b.StartTimer()
		exp, err := f.CreateLogs(context.Background(), set, cfg)
		if err != nil {
			b.Fatal(err)
		}
		if err := exp.Start(context.Background(), host{}); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		if err := exp.Shutdown(context.Background()); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
}

// BenchmarkDrainBacklog1GiB reads a 1 GiB backlog off the disk and sends it to the sink:
// the cold-read rate of a large backlog after an outage.
func BenchmarkDrainBacklog1GiB(b *testing.B) {
	dir, err := fillBacklog()
	if err != nil {
		b.Fatal(err)
	}
	for range b.N {
		b.StopTimer()
		work := newDir(b, "drain")
		if err := os.CopyFS(work, os.DirFS(dir)); err != nil {
			b.Fatal(err)
		}
		evict(b, work)
		url, bytesIn := sink(b)
		f := diskqueueexporter.NewFactory()
		set := exportertest.NewNopSettings(f.Type())
		set.ID = component.MustNewIDWithName("diskqueue", "backlog")
		cfg := diskqueueConfig(work, url, "batch")
		cfg.SendBatchMaxBytes = 4 << 20
		exp, err := f.CreateLogs(context.Background(), set, cfg)
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		start := time.Now()
		if err := exp.Start(context.Background(), host{}); err != nil {
			b.Fatal(err)
		}
		for bytesIn.Load() < backlogBytes {
			time.Sleep(5 * time.Millisecond)
		}
		elapsed := time.Since(start)
		b.StopTimer()
		b.ReportMetric(float64(bytesIn.Load())/elapsed.Seconds()/1e6, "MB/s")
		if err := exp.Shutdown(context.Background()); err != nil {
			b.Fatal(err)
		}
	}
}

// evict drops the files under dir from the page cache (fadvise DONTNEED after an fsync), so
// opens and drains read from the disk as after a reboot, without touching other processes'
// cache the way drop_caches would.
func evict(b *testing.B, dir string) {
	err := filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		f, err := os.Open(path)
		if err != nil {
			return err
		}
		defer func() { _ = f.Close() }()
		if err := f.Sync(); err != nil {
			return err
		}
		return unix.Fadvise(int(f.Fd()), 0, 0, unix.FADV_DONTNEED)
	})
	if err != nil {
		b.Fatal(err)
	}
}

var (
	peerOnce sync.Once
	peerDir  string
	peerErr  error
)

// peerStorage starts a file_storage extension over dir.
func peerStorage(dir string, fsync bool) (component.Component, host, error) {
	storageID := component.MustNewID("file_storage")
	sf := filestorage.NewFactory()
	scfg := sf.CreateDefaultConfig().(*filestorage.Config)
	scfg.Directory = dir
	scfg.FSync = fsync
	sset := extensiontest.NewNopSettings(sf.Type())
	sset.ID = storageID
	ext, err := sf.Create(context.Background(), sset, scfg)
	if err != nil {
		return nil, host{}, err
	}
	h := host{ext: map[component.ID]component.Component{storageID: ext}}
	return ext, h, ext.Start(context.Background(), h)
}

// peerExporter starts the otlphttp exporter with a persistent queue on h's file_storage.
// retry, when set, is the fixed retry interval (for a gateway kept down while filling).
func peerExporter(url string, h host, retry string) (exporter.Logs, error) {
	f := otlphttpexporter.NewFactory()
	cfg := f.CreateDefaultConfig()
	settings := map[string]any{
		"endpoint":    url,
		"compression": "none",
		"sending_queue": map[string]any{
			"storage":           "file_storage",
			"queue_size":        1 << 20,
			"sizer":             "requests",
			"num_consumers":     2,
			"block_on_overflow": true,
		},
	}
	if retry != "" {
		settings["retry_on_failure"] = map[string]any{"initial_interval": retry, "max_interval": retry}
	}
	if err := confmap.NewFromStringMap(settings).Unmarshal(cfg); err != nil {
		return nil, err
	}
	set := exportertest.NewNopSettings(f.Type())
	set.ID = component.MustNewIDWithName("otlp_http", "backlog")
	exp, err := f.CreateLogs(context.Background(), set, cfg)
	if err != nil {
		return nil, err
	}
	return exp, exp.Start(context.Background(), h)
}

// fillPeerBacklog queues 1 GiB in the persistent sending queue while the gateway answers
// 503, once per process (fsync off to fill it quickly; it does not change the reads).
func fillPeerBacklog(b *testing.B) (string, error) {
	peerOnce.Do(func() {
		down := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			w.WriteHeader(http.StatusServiceUnavailable)
		}))
		defer down.Close()
		peerDir = filepath.Join(root, "peer-backlog")
		if peerErr = os.MkdirAll(peerDir, 0o750); peerErr != nil {
			return
		}
		ext, h, err := peerStorage(peerDir, false)
		if err != nil {
			peerErr = err
			return
		}
		exp, err := peerExporter(down.URL, h, "1s")
		if err != nil {
			peerErr = err
			return
		}
		ld := makeLogs(backlogCallSize)
		ld.MarkReadOnly()
		for written := 0; written < backlogBytes; written += backlogCallSize * recordSize {
			if peerErr = exp.ConsumeLogs(context.Background(), ld); peerErr != nil {
				return
			}
		}
		peerErr = errors.Join(exp.Shutdown(context.Background()), ext.Shutdown(context.Background()))
	})
	if peerErr != nil {
		b.Fatal(peerErr)
	}
	return peerDir, peerErr
}

// BenchmarkPeerOpenBacklog1GiB times the start of file_storage plus the otlphttp
// exporter's persistent queue over a 1 GiB backlog, from a cold page cache.
func BenchmarkPeerOpenBacklog1GiB(b *testing.B) {
	dir, _ := fillPeerBacklog(b)
	for range b.N {
		b.StopTimer()
		work := newDir(b, "peer-open")
		if err := os.CopyFS(work, os.DirFS(dir)); err != nil {
			b.Fatal(err)
		}
		evict(b, work)
		down := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			w.WriteHeader(http.StatusServiceUnavailable)
		}))
		b.StartTimer()
		ext, h, err := peerStorage(work, true)
		if err != nil {
			b.Fatal(err)
		}
		exp, err := peerExporter(down.URL, h, "1s")
		if err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		if err := errors.Join(exp.Shutdown(context.Background()), ext.Shutdown(context.Background())); err != nil {
			b.Fatal(err)
		}
		down.Close()
	}
}

// BenchmarkPeerDrainBacklog1GiB sends the persistent queue's 1 GiB backlog to the sink from
// a cold page cache.
func BenchmarkPeerDrainBacklog1GiB(b *testing.B) {
	dir, _ := fillPeerBacklog(b)
	for range b.N {
		b.StopTimer()
		work := newDir(b, "peer-drain")
		if err := os.CopyFS(work, os.DirFS(dir)); err != nil {
			b.Fatal(err)
		}
		evict(b, work)
		url, bytesIn := sink(b)
		b.StartTimer()
		start := time.Now()
		ext, h, err := peerStorage(work, true)
		if err != nil {
			b.Fatal(err)
		}
		exp, err := peerExporter(url, h, "1s")
		if err != nil {
			b.Fatal(err)
		}
		// The persistent queue may hold slightly less than the diskqueue run (requests in
		// flight at shutdown are kept too), so wait for 99% of it.
		for bytesIn.Load() < backlogBytes*99/100 {
			time.Sleep(5 * time.Millisecond)
		}
		elapsed := time.Since(start)
		b.StopTimer()
		b.ReportMetric(float64(bytesIn.Load())/elapsed.Seconds()/1e6, "MB/s")
		if err := errors.Join(exp.Shutdown(context.Background()), ext.Shutdown(context.Background())); err != nil {
			b.Fatal(err)
		}
	}
}
