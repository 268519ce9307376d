package edge

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"

	"github.com/fieldcol/fieldcol/e2e/internal/harness"
	"github.com/fieldcol/fieldcol/internal/otlpsink"
)

// Footprint targets of the edge on a Pi Zero 2 W (512 MiB): docs/footprint.md.
const (
	footprintMaxArm64Binary = 60_000_000 // bytes, stripped linux/arm64
	footprintMaxLoadRSS     = 80 << 20   // bytes, under 1,000 data points/s
	footprintRate           = 1000       // data points a second
)

// footprintDuration is how long each phase (idle, load) lasts: 60 s for `make footprint`,
// shorter with FIELDCOL_FOOTPRINT_SECONDS for a quick look.
func footprintDuration(t *testing.T) time.Duration {
	s := os.Getenv("FIELDCOL_FOOTPRINT_SECONDS")
	if s == "" {
		return 60 * time.Second
	}
	n, err := strconv.Atoi(s)
	require.NoError(t, err, "FIELDCOL_FOOTPRINT_SECONDS")
	return time.Duration(n) * time.Second
}

// procRSS is the resident set of pid in bytes (VmRSS of /proc/PID/status).
func procRSS(t *testing.T, pid int) int64 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	require.NoError(t, err)
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			require.NoError(t, err)
			return kb << 10
		}
	}
	t.Fatalf("no VmRSS in /proc/%d/status", pid)
	return 0
}

// procCPU is the CPU time pid has used (utime + stime of /proc/PID/stat).
func procCPU(t *testing.T, pid int) time.Duration {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	require.NoError(t, err)
	// The command name may hold spaces: fields count from after its closing parenthesis.
	fields := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+2:]))
	utime, err := strconv.ParseInt(fields[11], 10, 64)
	require.NoError(t, err)
	stime, err := strconv.ParseInt(fields[12], 10, 64)
	require.NoError(t, err)
	// USER_HZ is 100 on every Linux architecture Go supports.
	return time.Duration(utime+stime) * 10 * time.Millisecond
}

// watchRSS samples the RSS every second for d and returns the last and the highest sample.
func watchRSS(t *testing.T, pid int, d time.Duration) (last, peak int64) {
	t.Helper()
	end := time.Now().Add(d)
	for time.Now().Before(end) {
		last = procRSS(t, pid)
		peak = max(peak, last)
		time.Sleep(time.Second)
	}
	return last, peak
}

// loadBatch is 100 gauge points over 100 series, as 10 applications on the Pi with 10
// metrics each would send every 100 ms.
func loadBatch(now time.Time) pmetric.Metrics {
	md := pmetric.NewMetrics()
	for app := 0; app < 10; app++ {
		rm := md.ResourceMetrics().AppendEmpty()
		rm.Resource().Attributes().PutStr("service.name", fmt.Sprintf("app-%d", app))
		ms := rm.ScopeMetrics().AppendEmpty().Metrics()
		for m := 0; m < 10; m++ {
			g := ms.AppendEmpty()
			g.SetName(fmt.Sprintf("footprint.load.m%d", m))
			dp := g.SetEmptyGauge().DataPoints().AppendEmpty()
			dp.SetTimestamp(pcommon.NewTimestampFromTime(now))
			dp.SetDoubleValue(float64(now.UnixNano()%1000) / 10)
			dp.Attributes().PutStr("line", "A")
		}
	}
	return md
}

// TestFootprint measures the edge as a Pi runs it (default config, GOMEMLIMIT of the unit):
// binary sizes, RSS idle and under 1,000 OTLP data points/s, and the CPU share of that load.
// It runs only under `make footprint` (FIELDCOL_FOOTPRINT=1): two minutes of wall time that
// make test does not afford. It fails when a target of docs/footprint.md is missed.
func TestFootprint(t *testing.T) {
	if os.Getenv("FIELDCOL_FOOTPRINT") != "1" {
		t.Skip("make footprint runs it (FIELDCOL_FOOTPRINT=1)")
	}
	phase := footprintDuration(t)

	var sizes []string
	for _, dir := range []string{"dist", "bin"} {
		entries, err := filepath.Glob(filepath.Join(harness.Root(), dir, "fieldcol*"))
		require.NoError(t, err)
		sort.Strings(entries)
		for _, p := range entries {
			st, err := os.Stat(p)
			require.NoError(t, err)
			sizes = append(sizes, fmt.Sprintf("| `%s/%s` | %.1f MB (%d bytes) |", dir, filepath.Base(p), float64(st.Size())/1e6, st.Size()))
			if filepath.Base(p) == "fieldcol-edge_linux_arm64" {
				assert.LessOrEqual(t, st.Size(), int64(footprintMaxArm64Binary), "the stripped arm64 edge is over 60 MB")
			}
		}
	}

	edge := harness.StartCollector(t, harness.Binary(t, "fieldcol-edge"), []string{harness.Shipped("distributions/edge/config.yaml")}, "GOMEMLIMIT=80MiB")
	pid := edge.Proc.Pid()
	idleLast, idlePeak := watchRSS(t, pid, phase)

	client, err := otlpsink.Dial(edge.OTLPGRPC)
	require.NoError(t, err)
	defer client.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	type result struct{ sent, failed int }
	done := make(chan result)
	cpu0, t0 := procCPU(t, pid), time.Now()
	go func() {
		var r result
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		end := time.Now().Add(phase)
		for now := range tick.C {
			if now.After(end) || ctx.Err() != nil {
				break
			}
			sctx, scancel := context.WithTimeout(ctx, 5*time.Second)
			if err := client.SendMetrics(sctx, loadBatch(now)); err != nil {
				r.failed += footprintRate / 10
			} else {
				r.sent += footprintRate / 10
			}
			scancel()
		}
		done <- r
	}()
	loadLast, loadPeak := watchRSS(t, pid, phase)
	r := <-done
	cpu := procCPU(t, pid) - cpu0
	wall := time.Since(t0)
	share := 100 * cpu.Seconds() / wall.Seconds()

	mib := func(b int64) string { return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20)) }
	t.Logf("\n| binary | size |\n| --- | --- |\n%s\n\n"+
		"| fieldcol-edge, default config, GOMEMLIMIT=80MiB | RSS (last / peak) | CPU |\n| --- | --- | --- |\n"+
		"| idle %s | %s / %s | |\n| %d data points/s of OTLP/gRPC for %s (%d accepted, %d refused) | %s / %s | %.1f %% of one core |",
		strings.Join(sizes, "\n"), phase, mib(idleLast), mib(idlePeak),
		footprintRate, phase, r.sent, r.failed, mib(loadLast), mib(loadPeak), share)

	assert.Zero(t, r.failed, "the edge refused load (memory_limiter?)")
	assert.GreaterOrEqual(t, r.sent, int(phase.Seconds())*footprintRate*9/10, "the load generator fell behind")
	assert.LessOrEqual(t, loadPeak, int64(footprintMaxLoadRSS), "RSS under load is over 80 MiB")
	edge.Stop(t)
}
