package sloburnprocessor // import "github.com/fieldcol/fieldcol/processors/sloburnprocessor"

import (
	"bytes"
	"context"
	"encoding/gob"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/extension/xextension/storage"
	"go.uber.org/zap"

	"github.com/fieldcol/fieldcol/processors/sloburnprocessor/internal/streams"
	"github.com/fieldcol/fieldcol/processors/sloburnprocessor/internal/window"
)

// The checkpoint is one value under one key; its layout has a version so that a future
// change can refuse, rather than misread, an old one.
const (
	checkpointKey     = "state"
	checkpointVersion = 1
	// emittedKey holds the slo.events values of the last emit, written before they are sent:
	// after a crash the checkpoint is up to checkpoint_interval old, and restarting the
	// counters from it would make them go backwards (Prometheus reads that as a reset and
	// counts the lifetime totals again). They restart from these values instead.
	emittedKey = "emitted"
)

type checkpoint struct {
	Version int
	// Inputs fingerprints the selectors: stream keys are hashes that include the input's
	// position, so streams are restored only when the inputs are the same.
	Inputs  string
	SLOs    []sloCheckpoint
	Streams []streams.Saved
	// Origin is the start of the windows' history (Unix ns); 0 in checkpoints written before
	// it was kept, which then count from the oldest series start.
	Origin int64
}

// emitted is the record under emittedKey.
type emitted struct {
	Series []emittedSeries
}

type emittedSeries struct {
	SLO, Key  string
	Res, DP   [][2]string
	Good, Bad float64
	Start     int64
	Overflow  bool
}

type sloCheckpoint struct {
	Name     string
	Windows  []time.Duration
	GoodForm bool
	Groups   []groupCheckpoint
}

type groupCheckpoint struct {
	Key             string
	Res, DP         [][2]string
	Cum             window.Pair
	Good, Bad       float64
	Start, LastSeen int64
	Overflow        bool
	Buckets         []window.Pair
	Heads           []int64
}

// openStorage connects to the configured storage extension and restores its checkpoint. A
// checkpoint that cannot be read is logged and dropped: the processor starts empty rather
// than not at all.
func (p *sloburn) openStorage(ctx context.Context, host component.Host) error {
	id := *p.cfg.Storage
	ext, ok := host.GetExtensions()[id]
	if !ok {
		return fmt.Errorf("storage: extension %q is not configured; add it under extensions and service.extensions", id)
	}
	se, ok := ext.(storage.Extension)
	if !ok {
		return fmt.Errorf("storage: extension %q is not a storage extension (use e.g. file_storage)", id)
	}
	client, err := se.GetClient(ctx, component.KindProcessor, p.id, "")
	if err != nil {
		return fmt.Errorf("storage: opening a client of %q: %w", id, err)
	}
	p.client = client
	data, err := client.Get(ctx, checkpointKey)
	switch {
	case err != nil:
		p.logger.Warn("Cannot read the SLO checkpoint; starting with empty windows", zap.Error(err))
	case data != nil:
		n, err := p.restore(data)
		if err != nil {
			p.logger.Warn("Discarding an unreadable SLO checkpoint; starting with empty windows", zap.Error(err))
			break
		}
		p.logger.Info("Restored the SLO windows from the checkpoint", zap.Int("series", n))
	}
	data, err = client.Get(ctx, emittedKey)
	switch {
	case err != nil:
		p.logger.Warn("Cannot read the slo.events values last emitted; after a crash they may step back once", zap.Error(err))
	case data != nil:
		if err := p.restoreEmitted(data); err != nil {
			p.logger.Warn("Discarding unreadable slo.events values last emitted; after a crash they may step back once", zap.Error(err))
		}
	}
	return nil
}

// saveEmitted writes the slo.events values that collect just computed, before they are sent.
func (p *sloburn) saveEmitted(ctx context.Context) {
	var rec emitted
	p.mu.Lock()
	for _, s := range p.slos {
		for _, g := range s.allGroups() {
			rec.Series = append(rec.Series, emittedSeries{SLO: s.name, Key: g.key, Res: pairs(g.res), DP: pairs(g.dp),
				Good: g.good, Bad: g.bad, Start: g.start, Overflow: g.overflow})
		}
	}
	p.mu.Unlock()
	var buf bytes.Buffer
	err := gob.NewEncoder(&buf).Encode(&rec)
	if err == nil {
		err = p.client.Set(ctx, emittedKey, buf.Bytes())
	}
	if err != nil {
		p.logger.Warn("Cannot write the slo.events values being emitted; after a crash they may step back once", zap.Error(err))
	}
}

// restoreEmitted raises each series' slo.events to the values last emitted: the counters
// continue from there and never go backwards. For a series the checkpoint restored, the
// values are a floor: a cumulative input's next point brings its counts up to date (its
// stream was restored too), and events counted between the checkpoint and the crash are not
// counted twice. A series that started after the last checkpoint (or with no checkpoint at
// all) has nothing restored: its counts from now on add to the values emitted.
func (p *sloburn) restoreEmitted(data []byte) error {
	var rec emitted
	if err := gob.NewDecoder(bytes.NewReader(data)).Decode(&rec); err != nil {
		return fmt.Errorf("decoding the slo.events values last emitted: %w", err)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, e := range rec.Series {
		i := slices.IndexFunc(p.slos, func(s *slo) bool { return s.name == e.SLO })
		if i < 0 {
			continue
		}
		s := p.slos[i]
		var g *group
		switch {
		case e.Overflow && s.overflow != nil:
			g = s.overflow
		case e.Overflow:
			g = &group{series: s.plan.NewSeries(), start: e.Start, lastSeen: e.Start, overflow: true}
			s.overflow = g
		case s.groups[e.Key] != nil:
			g = s.groups[e.Key]
		case p.nSeries >= p.cfg.MaxSeries:
			continue
		default:
			// Not in the checkpoint: nothing of it was restored, so what it counts from now on
			// adds to what was emitted.
			g = &group{key: e.Key, res: kvs(e.Res), dp: kvs(e.DP), series: s.plan.NewSeries(), start: e.Start, lastSeen: p.now().UnixNano(),
				baseGood: e.Good, baseBad: e.Bad}
			for _, x := range g.res {
				g.resKey += x.k + "=" + x.v + "\x00"
			}
			s.groups[g.key] = g
			p.nSeries++
		}
		if g.start == e.Start {
			g.good, g.bad = max(g.good, e.Good), max(g.bad, e.Bad)
		}
	}
	return nil
}

// saveCheckpoint writes the state; failures are logged, since the windows still work.
func (p *sloburn) saveCheckpoint(ctx context.Context) {
	data, err := p.snapshot()
	if err == nil {
		err = p.client.Set(ctx, checkpointKey, data)
	}
	if err != nil {
		p.logger.Warn("Cannot write the SLO checkpoint; a restart will start with empty windows", zap.Error(err))
	}
}

func (p *sloburn) snapshot() ([]byte, error) {
	p.mu.Lock()
	cp := checkpoint{Version: checkpointVersion, Inputs: p.inputs, Streams: p.tracker.Save(), Origin: p.origin}
	for _, s := range p.slos {
		sc := sloCheckpoint{Name: s.name, Windows: s.plan.Windows(), GoodForm: s.goodForm}
		for _, g := range s.allGroups() {
			buckets, heads := g.series.State()
			sc.Groups = append(sc.Groups, groupCheckpoint{
				Key: g.key, Res: pairs(g.res), DP: pairs(g.dp), Cum: g.cum, Good: g.good, Bad: g.bad,
				Start: g.start, LastSeen: g.lastSeen, Overflow: g.overflow, Buckets: buckets, Heads: heads,
			})
		}
		cp.SLOs = append(cp.SLOs, sc)
	}
	p.mu.Unlock()
	var buf bytes.Buffer
	if err := gob.NewEncoder(&buf).Encode(&cp); err != nil {
		return nil, fmt.Errorf("encoding the SLO checkpoint: %w", err)
	}
	return buf.Bytes(), nil
}

// restore loads a checkpoint into an empty processor and returns how many series it
// restored. SLOs whose windows or indicator form changed are left out, and so are the
// streams when the selectors changed.
func (p *sloburn) restore(data []byte) (int, error) {
	var cp checkpoint
	if err := gob.NewDecoder(bytes.NewReader(data)).Decode(&cp); err != nil {
		return 0, fmt.Errorf("decoding the SLO checkpoint: %w", err)
	}
	if cp.Version != checkpointVersion {
		return 0, fmt.Errorf("SLO checkpoint version %d, this processor reads %d", cp.Version, checkpointVersion)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	var errs []error
	n := 0
	for _, sc := range cp.SLOs {
		i := slices.IndexFunc(p.slos, func(s *slo) bool { return s.name == sc.Name })
		if i < 0 {
			continue
		}
		s := p.slos[i]
		if !slices.Equal(sc.Windows, s.plan.Windows()) || sc.GoodForm != s.goodForm {
			p.logger.Info("The windows or the indicator of an SLO changed; its checkpoint is not used", zap.String("slo", s.name))
			continue
		}
		for _, gc := range sc.Groups {
			if !gc.Overflow && p.nSeries >= p.cfg.MaxSeries {
				break
			}
			series, err := s.plan.Restore(gc.Buckets, gc.Heads)
			if err != nil {
				errs = append(errs, fmt.Errorf("slo %s: %w", s.name, err))
				continue
			}
			g := &group{
				key: gc.Key, res: kvs(gc.Res), dp: kvs(gc.DP), series: series, cum: gc.Cum,
				good: gc.Good, bad: gc.Bad, start: gc.Start, lastSeen: gc.LastSeen, overflow: gc.Overflow,
			}
			for _, x := range g.res {
				g.resKey += x.k + "=" + x.v + "\x00"
			}
			if g.overflow {
				s.overflow = g
				continue
			}
			s.groups[g.key] = g
			p.nSeries++
			n++
		}
	}
	if cp.Inputs == p.inputs {
		p.tracker.Restore(cp.Streams)
	}
	// The windows' history starts where the checkpoint's did (older checkpoints: at the
	// oldest series they hold), unless nothing was restored.
	origin := cp.Origin
	for _, s := range p.slos {
		for _, g := range s.allGroups() {
			if origin == 0 || g.start < origin {
				origin = g.start
			}
		}
	}
	if n > 0 && origin > 0 && origin < p.origin {
		p.origin = origin
	}
	return n, errors.Join(errs...)
}

// allGroups lists the series of an SLO, its overflow series last.
func (s *slo) allGroups() []*group {
	out := make([]*group, 0, len(s.groups)+1)
	for _, g := range s.groups {
		out = append(out, g)
	}
	if s.overflow != nil {
		out = append(out, s.overflow)
	}
	return out
}

func pairs(in []kv) [][2]string {
	out := make([][2]string, len(in))
	for i, x := range in {
		out[i] = [2]string{x.k, x.v}
	}
	return out
}

func kvs(in [][2]string) []kv {
	var out []kv
	for _, x := range in {
		out = append(out, kv{x[0], x[1]})
	}
	return out
}

// inputsFingerprint describes every input in the order their ids were given.
func inputsFingerprint(ins []input) string {
	var b strings.Builder
	for _, in := range ins {
		fmt.Fprintf(&b, "%d|%s|%d|%s\n", in.id, in.slo.name, in.role, in.sel)
	}
	return b.String()
}
