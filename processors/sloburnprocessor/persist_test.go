package sloburnprocessor

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/extension/xextension/storage"
	"go.opentelemetry.io/collector/pdata/pmetric"

	"github.com/fieldcol/fieldcol/processors/sloburnprocessor/internal/window"
)

// memStorage is a storage extension that keeps its values in memory, shared by every client,
// like file_storage keeps them on disk across a restart.
type memStorage struct {
	component.StartFunc
	component.ShutdownFunc
	mu     sync.Mutex
	values map[string][]byte
	getErr error
}

func (m *memStorage) GetClient(context.Context, component.Kind, component.ID, string) (storage.Client, error) {
	return &memClient{m}, nil
}

type memClient struct{ m *memStorage }

func (c *memClient) Get(_ context.Context, key string) ([]byte, error) {
	c.m.mu.Lock()
	defer c.m.mu.Unlock()
	if c.m.getErr != nil {
		return nil, c.m.getErr
	}
	return c.m.values[key], nil
}

func (c *memClient) Set(_ context.Context, key string, value []byte) error {
	c.m.mu.Lock()
	defer c.m.mu.Unlock()
	c.m.values[key] = append([]byte(nil), value...)
	return nil
}

func (c *memClient) Delete(_ context.Context, key string) error {
	c.m.mu.Lock()
	defer c.m.mu.Unlock()
	delete(c.m.values, key)
	return nil
}

func (c *memClient) Batch(ctx context.Context, ops ...*storage.Operation) error {
	for _, op := range ops {
		var err error
		switch op.Type {
		case storage.Get:
			op.Value, err = c.Get(ctx, op.Key)
		case storage.Set:
			err = c.Set(ctx, op.Key, op.Value)
		case storage.Delete:
			err = c.Delete(ctx, op.Key)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func (*memClient) Close(context.Context) error { return nil }

// hostWith is a host whose extensions are the given ones.
type hostWith map[component.ID]component.Component

func (h hostWith) GetExtensions() map[component.ID]component.Component { return h }

var storageID = component.MustNewID("file_storage")

// restartable runs processors one after the other against the same storage.
func restartable(t *testing.T, cfg *Config, mem *memStorage) *harness {
	t.Helper()
	h := newHarness(t, cfg)
	require.NoError(t, h.p.start(context.Background(), hostWith{storageID: mem}))
	return h
}

func TestCheckpointSurvivesRestart(t *testing.T) {
	cfg := ovenConfig()
	cfg.Storage = &storageID
	cfg.SLOs[0].GroupBy = []string{"device.id"}
	mem := &memStorage{values: map[string][]byte{}}

	first := restartable(t, cfg, mem)
	src := epoch.Add(-time.Hour)
	send := func(h *harness, at time.Time, ok, overrun float64) {
		h.clk.t = at
		h.proc(counter("controlloop.cycles", pmetric.AggregationTemporalityCumulative, src, at, map[string]string{"device.id": "pi-1"},
			sample{attrsOf("loop", "oven", "outcome", "ok"), ok},
			sample{attrsOf("loop", "oven", "outcome", "overrun"), overrun}))
	}
	send(first, epoch.Add(time.Minute), 1000, 10)    // baseline
	send(first, epoch.Add(2*time.Minute), 1900, 110) // +900 ok, +100 overrun
	before := first.p.collect(first.clk.t)
	require.NoError(t, first.p.shutdown(context.Background()))
	require.NotEmpty(t, mem.values[checkpointKey], "shutdown writes the checkpoint")

	second := restartable(t, cfg, mem)
	second.clk.t = first.clk.t
	after := second.p.collect(second.clk.t)
	for _, w := range []string{"5m", "1h", "3d"} {
		assert.Equal(t, burnRate(t, before, "oven-deadline", w), burnRate(t, after, "oven-deadline", w), w)
	}
	assert.Equal(t, 100.0, value(t, after, metricEvents, attrsOf("outcome", "bad")))
	// The streams survived too: the next point is an increase, not a new baseline.
	send(second, epoch.Add(3*time.Minute), 2800, 210)
	next := second.p.collect(second.clk.t)
	assert.Equal(t, 200.0, value(t, next, metricEvents, attrsOf("outcome", "bad")))
	assert.Equal(t, map[string]int64{"accepted": 3}, pointsByResult(t, second))
	require.NoError(t, second.p.shutdown(context.Background()))
}

func TestCheckpointOfChangedConfig(t *testing.T) {
	cfg := ovenConfig()
	cfg.Storage = &storageID
	mem := &memStorage{values: map[string][]byte{}}
	first := restartable(t, cfg, mem)
	first.clk.t = epoch.Add(time.Minute)
	first.proc(counter("controlloop.cycles", pmetric.AggregationTemporalityDelta, time.Time{}, first.clk.t, nil,
		sample{attrsOf("loop", "oven", "outcome", "overrun"), 10}))
	require.NoError(t, first.p.shutdown(context.Background()))

	changed := ovenConfig()
	changed.Storage = &storageID
	changed.SLOs[0].Alerts = []AlertConfig{{Severity: "page", LongWindow: 2 * time.Hour, ShortWindow: 10 * time.Minute, Factor: 10}}
	second := restartable(t, changed, mem)
	// Other windows: the saved windows do not fit and are left out; slo.events continues
	// from the values last emitted, since a counter must not go backwards.
	for _, g := range second.p.slos[0].groups {
		assert.Equal(t, window.Pair{}, g.series.Sum(2*time.Hour, first.clk.t.UnixMilli()), "other windows: the saved series do not fit and are left out")
		assert.Equal(t, window.Pair{}, g.cum)
	}
	require.NoError(t, second.p.shutdown(context.Background()))
}

func TestCheckpointErrors(t *testing.T) {
	cfg := ovenConfig()
	cfg.Storage = &storageID
	h := newHarness(t, cfg)
	err := h.p.start(context.Background(), componenttest.NewNopHost())
	require.ErrorContains(t, err, `storage: extension "file_storage" is not configured`)

	h = newHarness(t, cfg)
	notStorage := &struct {
		component.StartFunc
		component.ShutdownFunc
	}{}
	err = h.p.start(context.Background(), hostWith{storageID: notStorage})
	require.ErrorContains(t, err, `storage: extension "file_storage" is not a storage extension`)

	// A corrupt checkpoint, or one that cannot be read, starts empty instead of failing.
	for _, mem := range []*memStorage{
		{values: map[string][]byte{checkpointKey: []byte("not gob")}},
		{values: map[string][]byte{}, getErr: errors.New("disk on fire")},
	} {
		h = restartable(t, cfg, mem)
		assert.Empty(t, h.p.slos[0].groups)
		require.NoError(t, h.p.shutdown(context.Background()))
	}
}

// TestCrashRestartKeepsCountersMonotonic: after a crash the checkpoint is older than the
// slo.events values last emitted; the counters continue from those values instead of
// stepping back (which Prometheus would read as a reset, counting the lifetime totals again),
// and a cumulative input's next point brings them up to date without counting twice.
func TestCrashRestartKeepsCountersMonotonic(t *testing.T) {
	for _, temporality := range []pmetric.AggregationTemporality{pmetric.AggregationTemporalityCumulative, pmetric.AggregationTemporalityDelta} {
		t.Run(temporality.String(), func(t *testing.T) {
			cfg := ovenConfig()
			cfg.Storage = &storageID
			mem := &memStorage{values: map[string][]byte{}}
			src := epoch.Add(-time.Hour)
			var ok, overrun float64 = 1000, 10
			send := func(h *harness, at time.Time, dOK, dOverrun float64) {
				h.clk.t = at
				ok, overrun = ok+dOK, overrun+dOverrun
				vOK, vOverrun := ok, overrun
				if temporality == pmetric.AggregationTemporalityDelta {
					vOK, vOverrun = dOK, dOverrun
				}
				h.proc(counter("controlloop.cycles", temporality, src, at, nil,
					sample{attrsOf("loop", "oven", "outcome", "ok"), vOK},
					sample{attrsOf("loop", "oven", "outcome", "overrun"), vOverrun}))
			}
			first := restartable(t, cfg, mem)
			// Its emit loop stops now (the test emits by hand); the end is a crash, no shutdown.
			close(first.p.stop)
			<-first.p.done
			send(first, epoch.Add(time.Minute), 0, 0) // a baseline (cumulative)
			send(first, epoch.Add(2*time.Minute), 900, 100)
			first.p.saveCheckpoint(context.Background()) // the last checkpoint before the crash
			send(first, epoch.Add(3*time.Minute), 900, 100)
			send(first, epoch.Add(4*time.Minute), 900, 100)
			first.p.emit(context.Background(), first.clk.t) // sent: bad 300 (delta) or 200
			emittedBad := value(t, first.sink.AllMetrics()[len(first.sink.AllMetrics())-1], metricEvents, attrsOf("outcome", "bad"))
			// kill -9: no shutdown, no checkpoint at the end.

			second := restartable(t, cfg, mem)
			second.clk.t = first.clk.t.Add(30 * time.Second)
			after := second.p.collect(second.clk.t)
			assert.Equal(t, emittedBad, value(t, after, metricEvents, attrsOf("outcome", "bad")), "continues from the value last emitted")
			send(second, epoch.Add(5*time.Minute), 900, 100)
			next := second.p.collect(second.clk.t)
			if temporality == pmetric.AggregationTemporalityCumulative {
				// The stream restored from the checkpoint sees +300 since it: exact, not 500.
				assert.Equal(t, 400.0, value(t, next, metricEvents, attrsOf("outcome", "bad")))
			} else {
				// The two deltas after the checkpoint are lost with the crash (their senders
				// had them acknowledged); the counter holds at the emitted value until what
				// the processor counts passes it: the events of one checkpoint interval are
				// absorbed, never counted twice.
				assert.Equal(t, emittedBad, value(t, next, metricEvents, attrsOf("outcome", "bad")))
				send(second, epoch.Add(6*time.Minute), 900, 100)
				next = second.p.collect(second.clk.t)
				assert.Equal(t, emittedBad, value(t, next, metricEvents, attrsOf("outcome", "bad")))
				send(second, epoch.Add(7*time.Minute), 900, 100)
				next = second.p.collect(second.clk.t)
				assert.Equal(t, 400.0, value(t, next, metricEvents, attrsOf("outcome", "bad")))
			}
			assert.GreaterOrEqual(t, value(t, next, metricEvents, attrsOf("outcome", "bad")), emittedBad)
			require.NoError(t, second.p.shutdown(context.Background()))
		})
	}
}

// TestCrashBeforeAnyCheckpoint: a series known only from the values last emitted (the crash
// came before its first checkpoint) continues from them, and what it counts after the restart
// adds to them instead of hiding under them.
func TestCrashBeforeAnyCheckpoint(t *testing.T) {
	cfg := ovenConfig()
	cfg.Storage = &storageID
	mem := &memStorage{values: map[string][]byte{}}
	src := epoch.Add(-time.Hour)
	send := func(h *harness, at time.Time, ok, overrun float64) {
		h.clk.t = at
		h.proc(cycles(src, at, ok, overrun))
	}
	first := restartable(t, cfg, mem)
	close(first.p.stop)
	<-first.p.done
	send(first, epoch.Add(time.Minute), 1000, 10)   // baseline
	send(first, epoch.Add(2*time.Minute), 1900, 60) // +50 overrun
	first.p.emit(context.Background(), first.clk.t)
	require.Empty(t, mem.values[checkpointKey], "no checkpoint before the crash")

	second := restartable(t, cfg, mem)
	send(second, epoch.Add(4*time.Minute), 3000, 100) // a baseline again: the streams were not saved
	send(second, epoch.Add(5*time.Minute), 3900, 130) // +30 overrun after the restart
	md := second.p.collect(second.clk.t)
	assert.Equal(t, 80.0, value(t, md, metricEvents, attrsOf("outcome", "bad")), "50 emitted before the crash + 30 after")
	assert.Equal(t, 900.0+900, value(t, md, metricEvents, attrsOf("outcome", "good")))
	require.NoError(t, second.p.shutdown(context.Background()))
}
