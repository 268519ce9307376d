package drills

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/fieldcol/fieldcol/e2e/internal/harness"
	"github.com/fieldcol/fieldcol/internal/otlpsink"
	"github.com/fieldcol/fieldcol/internal/promtest"
)

// The chaos drills of the resilience plan (docs/drills.md). Every drill runs in two sizes:
// the fast one in `make test`, and the full one (longer outages, more records) under
// `make drills`, which sets FIELDCOL_DRILLS=1. Each prints one line of measured figures.

// drillFull says whether this is `make drills` (full length) rather than `make test`.
func drillFull() bool { return os.Getenv("FIELDCOL_DRILLS") == "1" }

// fullDrillOnly skips a drill too long for make test's budget (the fast subset stays under
// about two minutes); `make drills` runs it.
func fullDrillOnly(t *testing.T) {
	t.Helper()
	if !drillFull() {
		t.Skip("a full drill: runs under make drills (FIELDCOL_DRILLS=1)")
	}
}

// drillDevice is the device.id of every drill edge, so the alerts carry a known label.
const drillDevice = "drill-pi"

// drillFigures are what a drill measured; nothing here is assumed.
type drillFigures struct {
	name       string
	detect     time.Duration // fault injected -> first sign of it (safe state, counter, scrape down)
	recover    time.Duration // fault removed -> normal again (loop running, backlog delivered)
	lost       int           // records acknowledged to the sender that never arrived
	duplicated int           // arrivals beyond the first of a record
	acked      int           // records acknowledged to the sender (the base of lost)
	alerts     []string      // alerts Prometheus fired with the shipped rules during the drill
	note       string
}

// report prints the drill's line (in `go test -v` output, one per drill, grep "^DRILL") and,
// when FIELDCOL_DRILLS_REPORT names a file, appends it there as a row of docs/drills.md's table.
func (f drillFigures) report(t *testing.T) {
	t.Helper()
	alerts := "none"
	if len(f.alerts) > 0 {
		alerts = strings.Join(f.alerts, ",")
	}
	status := "ok"
	if t.Failed() {
		status = "FAILED"
	}
	line := fmt.Sprintf("DRILL %-16s %-6s detect=%-8s recover=%-8s lost=%d/%d duplicated=%d alerts=%s %s",
		f.name, status, ms(f.detect), ms(f.recover), f.lost, f.acked, f.duplicated, alerts, f.note)
	fmt.Println(line)
	if path := os.Getenv("FIELDCOL_DRILLS_REPORT"); path != "" {
		row := fmt.Sprintf("| %s | %s | %s | %s | %d of %d | %d | %s | %s |\n",
			f.name, status, ms(f.detect), ms(f.recover), f.lost, f.acked, f.duplicated, alerts, f.note)
		file, err := os.OpenFile(path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
		require.NoError(t, err)
		_, err = file.WriteString(row)
		require.NoError(t, err)
		require.NoError(t, file.Close())
	}
}

func ms(d time.Duration) string {
	if d == 0 {
		return "-"
	}
	return d.Round(time.Millisecond).String()
}

// drillEdge is fieldcol-edge with the shipped config, fast sensor and SLO intervals (so
// Prometheus sees changes within seconds) and the drill's device id.
func drillEdge(t *testing.T, extraConfigs []string, env ...string) harness.CollectorSpec {
	t.Helper()
	configs := append([]string{harness.Shipped("distributions/edge/config.yaml")}, extraConfigs...)
	base := []string{"FIELDCOL_HW_INTERVAL=1s", "FIELDCOL_SLO_EMIT_INTERVAL=2s", "FIELDCOL_DEVICE_ID=" + drillDevice}
	return harness.CollectorSpec{Bin: harness.Binary(t, "fieldcol-edge"), Configs: configs, Env: append(base, env...)}
}

// startDrillEdge starts a drillEdge on free ports.
func startDrillEdge(t *testing.T, extraConfigs []string, env ...string) *harness.Collector {
	t.Helper()
	return drillEdge(t, extraConfigs, env...).Start(t)
}

// startDrillProm starts Prometheus scraping metricsAddr with every shipped rule file, so the
// alerts a drill reports are the ones production would fire.
func startDrillProm(t *testing.T, metricsAddr string) *promtest.Server {
	t.Helper()
	return promtest.Start(t, promtest.Options{ScrapeTargets: []string{metricsAddr}, RuleFiles: harness.ShippedRuleFiles(t)})
}

// alertWatch records every alert that Prometheus reports firing, and when it first did,
// polling ALERTS until the test ends.
type alertWatch struct {
	mu    sync.Mutex
	first map[string]time.Time // "AlertName{loop,alarm}" -> first seen firing
}

func watchAlerts(t *testing.T, prom *promtest.Server) *alertWatch {
	w := &alertWatch{first: map[string]time.Time{}}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(250 * time.Millisecond)
		defer tick.Stop()
		for {
			qctx, qcancel := context.WithTimeout(ctx, 5*time.Second)
			samples, err := prom.Query(qctx, `ALERTS{alertstate="firing"}`, time.Time{})
			qcancel()
			if err == nil {
				now := time.Now()
				w.mu.Lock()
				for _, s := range samples {
					key := alertKey(s.Labels)
					if _, seen := w.first[key]; !seen {
						w.first[key] = now
					}
				}
				w.mu.Unlock()
			}
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
		}
	}()
	t.Cleanup(func() { cancel(); <-done })
	return w
}

func alertKey(labels map[string]string) string {
	var extra []string
	for _, k := range []string{"loop", "alarm", "error_type", "reason"} {
		if v := labels[k]; v != "" {
			extra = append(extra, v)
		}
	}
	if len(extra) == 0 {
		return labels["alertname"]
	}
	return labels["alertname"] + "{" + strings.Join(extra, ",") + "}"
}

// firedSinceAll returns every alert seen firing at or after since, sorted.
func (w *alertWatch) firedSinceAll(since time.Time) []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []string
	for k, at := range w.first {
		if !at.Before(since) {
			out = append(out, k)
		}
	}
	sort.Strings(out)
	return out
}

// waitFiring waits until an alert whose key starts with prefix fires and returns when it
// was first seen.
func (w *alertWatch) waitFiring(t *testing.T, prefix string, timeout time.Duration) time.Time {
	t.Helper()
	var at time.Time
	harness.WaitUntil(t, timeout, 250*time.Millisecond, func() (bool, string) {
		w.mu.Lock()
		defer w.mu.Unlock()
		for k, first := range w.first {
			if strings.HasPrefix(k, prefix) {
				at = first
				return true, ""
			}
		}
		return false, fmt.Sprintf("alert %s did not fire; firing so far: %v", prefix, w.first)
	})
	return at
}

// loopView is the part of GET /api/v1/loops/{name} the drills judge.
type loopView struct {
	state   string
	safe    bool
	output  float64
	cycle   uint64
	latched []string
}

func (v loopView) running() bool { return v.state == "running" && !v.safe }

func (v loopView) isLatched(alarm string) bool {
	for _, a := range v.latched {
		if a == alarm {
			return true
		}
	}
	return false
}

func getLoop(t *testing.T, edge *harness.Collector, name string) loopView {
	t.Helper()
	status, answer := edge.Call(t, http.MethodGet, "/api/v1/loops/"+name, harness.APIToken, "")
	require.Equal(t, http.StatusOK, status, "GET loop %s: %v", name, answer)
	v := loopView{}
	v.state, _ = answer["state"].(string)
	v.safe, _ = answer["safe_state"].(bool)
	v.output, _ = answer["output"].(float64)
	cycle, _ := answer["cycle"].(float64)
	v.cycle = uint64(cycle)
	alarms, _ := answer["alarms"].([]any)
	for _, a := range alarms {
		if m, ok := a.(map[string]any); ok && m["latched"] == true {
			name, _ := m["name"].(string)
			v.latched = append(v.latched, name)
		}
	}
	return v
}

// waitLoop polls a loop every 5 ms until cond holds and returns the view that satisfied it;
// the fine polling is what makes detection times measured to a few milliseconds.
func waitLoop(t *testing.T, edge *harness.Collector, name string, timeout time.Duration, cond func(loopView) bool) loopView {
	t.Helper()
	var v loopView
	harness.WaitUntil(t, timeout, 5*time.Millisecond, func() (bool, string) {
		v = getLoop(t, edge, name)
		return cond(v), fmt.Sprintf("loop %s: %+v", name, v)
	})
	return v
}

// simFault injects or clears a fault of the sim plant through the command API.
func simFault(t *testing.T, edge *harness.Collector, body string) {
	t.Helper()
	status, answer := edge.Call(t, http.MethodPost, "/api/v1/sim/faults", harness.APIToken, body)
	require.Equal(t, http.StatusOK, status, "%s: %v", body, answer)
}

// ackUntilAccepted sends ACK_ALARM until the loop accepts it: the first tries may meet the
// fault's last invalid reading (409). Bounded by the timeout, paced below the rate limit.
func ackUntilAccepted(t *testing.T, edge *harness.Collector, loop string, timeout time.Duration) {
	t.Helper()
	harness.WaitUntil(t, timeout, 300*time.Millisecond, func() (bool, string) {
		status, answer := edge.Call(t, http.MethodPost, "/api/v1/commands", harness.APIToken,
			fmt.Sprintf(`{"command":"ACK_ALARM","loop":%q}`, loop))
		return status == http.StatusOK, fmt.Sprintf("ACK_ALARM %s: %d %v", loop, status, answer)
	})
}

// recordStream is an application on the Pi that sends numbered log records over OTLP/gRPC,
// one a request, and remembers which the edge acknowledged (a nil answer means on disk).
type recordStream struct {
	run    string
	cancel context.CancelFunc
	done   chan struct{}

	mu    sync.Mutex
	acked map[int]bool
	sent  int
}

// startRecords sends up to max records to addr, one every interval, until stopped. A failed
// send is not retried: that record was not acknowledged, so losing it is allowed.
func startRecords(t *testing.T, addr, run string, interval time.Duration, max int) *recordStream {
	t.Helper()
	client, err := otlpsink.Dial(addr)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	s := &recordStream{run: run, cancel: cancel, done: make(chan struct{}), acked: map[int]bool{}}
	go func() {
		defer close(s.done)
		defer client.Close()
		for i := 0; i < max; i++ {
			sctx, scancel := context.WithTimeout(ctx, 3*time.Second)
			err := client.SendLogs(sctx, harness.Record(run, i))
			scancel()
			s.mu.Lock()
			s.sent = i + 1
			if err == nil {
				s.acked[i] = true
			}
			s.mu.Unlock()
			select {
			case <-ctx.Done():
				return
			case <-time.After(interval):
			}
		}
	}()
	t.Cleanup(s.stop)
	return s
}

// stop ends the stream and waits for its last send to finish (at most its 3 s timeout).
func (s *recordStream) stop() { s.cancel(); <-s.done }

func (s *recordStream) ackedCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.acked)
}

// delivery judges a stopped stream against what arrived: acknowledged records missing,
// duplicates, and first arrivals out of send order.
type delivery struct{ acked, lost, duplicated, outOfOrder int }

func judgeDelivery(s *recordStream, seen []int) delivery {
	s.mu.Lock()
	defer s.mu.Unlock()
	d := delivery{acked: len(s.acked)}
	first := map[int]bool{}
	last := -1
	for _, n := range seen {
		if first[n] {
			d.duplicated++
			continue
		}
		first[n] = true
		if n < last {
			d.outOfOrder++
		}
		last = n
	}
	for n := range s.acked {
		if !first[n] {
			d.lost++
		}
	}
	return d
}

// waitDelivered waits until every acknowledged record of the stopped stream arrived, and
// returns when that was first seen and the judgement at that point (or at the timeout).
func waitDelivered(t *testing.T, sink *otlpsink.Sink, s *recordStream, timeout time.Duration) (time.Time, delivery) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		d := judgeDelivery(s, harness.RecordArrivals(t, sink, s.run))
		if d.lost == 0 || time.Now().After(deadline) {
			return time.Now(), d
		}
		time.Sleep(100 * time.Millisecond)
	}
}
