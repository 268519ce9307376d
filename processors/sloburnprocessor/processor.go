package sloburnprocessor // import "github.com/fieldcol/fieldcol/processors/sloburnprocessor"

import (
	"context"
	"fmt"
	"math"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/cespare/xxhash/v2"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/extension/xextension/storage"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/processor"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.uber.org/zap"

	"github.com/fieldcol/fieldcol/processors/sloburnprocessor/internal/burn"
	"github.com/fieldcol/fieldcol/processors/sloburnprocessor/internal/metadata"
	"github.com/fieldcol/fieldcol/processors/sloburnprocessor/internal/selector"
	"github.com/fieldcol/fieldcol/processors/sloburnprocessor/internal/streams"
	"github.com/fieldcol/fieldcol/processors/sloburnprocessor/internal/window"
)

// role says which counter of an SLO a selected stream feeds.
type role int

const (
	roleTotal   role = iota // every event
	rolePart                // the bad events (bad SLI) or the good ones (good SLI)
	roleLatency             // a histogram: count is the total, count up to the threshold the good
)

// result is what became of a data point; the values index resultNames.
type result int

const (
	resAccepted result = iota
	resBaseline
	resReset
	resOutOfOrder
	resTooOld
	resStreamOverflow
	resNotABucketBound
	resUnsupported
	resFuture
	resDelayed
	numResults
)

var resultNames = [numResults]string{"accepted", "baseline", "reset", "out_of_order", "too_old", "stream_overflow", "not_a_bucket_bound", "unsupported", "future", "delayed"}

// futureSlack is how far ahead of the processor's clock a point may be stamped before it
// counts as from the future: clocks of one host or one LAN agree to well under a second.
const futureSlack = int64(time.Second)

// clockLogEvery spaces the log lines about senders' clocks.
const clockLogEvery = int64(time.Minute)

// input is one selector of one SLO.
type input struct {
	id  uint64 // distinguishes the streams of different inputs that read the same points
	slo *slo
	sel *selector.Selector
	role
}

// slo is the compiled configuration and the state of one SLO.
type slo struct {
	name      string
	objective float64
	// goodForm: the Part of each window pair counts good events (good or latency SLI),
	// otherwise bad ones.
	goodForm  bool
	threshold float64
	period    time.Duration
	conds     []burn.Condition
	windows   []time.Duration // burn-rate windows, in the order slo.burn_rate is emitted
	// Precomputed for collect: the distinct severities in config order, and for each
	// condition the index of its severity and of its two windows in windows.
	severities          []string
	condSeverity        []int
	condLong, condShort []int
	plan                *window.Plan
	groupBy             []string
	groups              map[string]*group
	overflow            *group
}

// group is one SLO series: the SLO for one value of its group_by attributes.
type group struct {
	key     string
	res, dp []kv // group_by attributes found on the resource, and on the data point
	resKey  string
	series  *window.Series
	cum     window.Pair // events since the group was created
	good    float64     // slo.events values last emitted, kept monotonic
	bad     float64
	// Offsets of slo.events for a series restored only from the values last emitted (it
	// started after the last checkpoint): its counts since the restart add to them.
	baseGood, baseBad float64
	start             int64 // Unix ns
	lastSeen          int64 // Unix ns, processor clock
	overflow          bool
}

type kv struct{ k, v string }

type sloburn struct {
	id      component.ID
	cfg     *Config
	logger  *zap.Logger
	tel     *metadata.TelemetryBuilder
	next    consumer.Metrics
	now     func() time.Time
	started time.Time

	mu         sync.Mutex
	slos       []*slo
	byMetric   map[string][]input
	tracker    *streams.Tracker
	streamIdle time.Duration
	nSeries    int
	keyBuf     []byte
	warned     map[*slo]bool
	counts     [numResults]int64
	overflowed int64
	ratios     []float64 // scratch of collect: the error ratio of each window
	inputs     string    // inputsFingerprint, for the checkpoint
	// origin is the start of the state: windows hold nothing from before it (processor start,
	// or the origin of the restored checkpoint). Window coverage is measured from it.
	origin int64
	// lastClockLog is when a sender's clock was last logged (Unix ns, processor clock).
	lastClockLog int64

	client storage.Client // nil without a storage extension

	stop chan struct{}
	done chan struct{}
}

func newSLOBurn(cfg *Config, set processor.Settings, next consumer.Metrics, now func() time.Time) (*sloburn, error) {
	tel, err := metadata.NewTelemetryBuilder(set.TelemetrySettings)
	if err != nil {
		return nil, fmt.Errorf("creating the self-telemetry: %w", err)
	}
	p := &sloburn{
		id:       set.ID,
		cfg:      cfg,
		logger:   set.Logger,
		tel:      tel,
		next:     next,
		now:      now,
		started:  now(),
		byMetric: map[string][]input{},
		warned:   map[*slo]bool{},
	}
	p.origin = p.started.UnixNano()
	p.tracker = streams.New(cfg.MaxStreams, p.started)
	var nextID uint64
	var all []input
	for i := range cfg.SLOs {
		sc := &cfg.SLOs[i]
		s := &slo{
			name:      sc.Name,
			objective: sc.Objective,
			goodForm:  sc.Bad == "",
			threshold: sc.Latency.Threshold,
			period:    sc.period(),
			conds:     sc.conditions(),
			groupBy:   sc.GroupBy,
			groups:    map[string]*group{},
		}
		s.windows = burn.Windows(s.conds)
		sort.Slice(s.windows, func(a, b int) bool { return s.windows[a] < s.windows[b] })
		for _, c := range s.conds {
			sev := slices.Index(s.severities, c.Severity)
			if sev < 0 {
				sev = len(s.severities)
				s.severities = append(s.severities, c.Severity)
			}
			s.condSeverity = append(s.condSeverity, sev)
			s.condLong = append(s.condLong, slices.Index(s.windows, c.Long))
			s.condShort = append(s.condShort, slices.Index(s.windows, c.Short))
		}
		s.plan = window.NewPlan(append(append([]time.Duration{}, s.windows...), s.period), cfg.EmitInterval, maxBucketsPerWindow)
		for _, w := range s.windows {
			p.streamIdle = max(p.streamIdle, w)
		}
		p.slos = append(p.slos, s)

		add := func(text string, r role) error {
			sel, err := selector.Parse(text)
			if err != nil {
				return err
			}
			nextID++
			in := input{id: nextID, slo: s, sel: sel, role: r}
			p.byMetric[sel.Metric] = append(p.byMetric[sel.Metric], in)
			all = append(all, in)
			return nil
		}
		var errs []error
		if sc.Latency.Histogram != "" {
			errs = append(errs, add(sc.Latency.Histogram, roleLatency))
		} else {
			errs = append(errs, add(sc.Total, roleTotal), add(sc.Bad+sc.Good, rolePart))
		}
		for _, err := range errs {
			if err != nil {
				return nil, fmt.Errorf("slos[%d]: %w", i, err)
			}
		}
	}
	p.inputs = inputsFingerprint(all)
	return p, nil
}

func (p *sloburn) start(ctx context.Context, host component.Host) error {
	if p.cfg.Storage != nil {
		if err := p.openStorage(ctx, host); err != nil {
			return err
		}
	}
	p.stop = make(chan struct{})
	p.done = make(chan struct{})
	go p.loop()
	return nil
}

// loop emits at multiples of emit_interval since the Unix epoch, computing the windows at
// that tick rather than at the instant the timer fired: window edges then fall on bucket
// edges (exactly, for the 5m window and the default 15s), and every collector of a fleet
// stamps its slo.* points on the same grid.
func (p *sloburn) loop() {
	defer close(p.done)
	next := nextTick(time.Now(), p.cfg.EmitInterval)
	timer := time.NewTimer(time.Until(next))
	defer timer.Stop()
	lastCheckpoint := time.Now()
	for {
		select {
		case <-p.stop:
			return
		case <-timer.C:
			p.emit(context.Background(), next)
			if p.client != nil && p.cfg.CheckpointInterval > 0 && time.Since(lastCheckpoint) >= p.cfg.CheckpointInterval {
				p.saveCheckpoint(context.Background())
				lastCheckpoint = time.Now()
			}
			// After a stall (a suspended process), skip the ticks that were missed.
			next = nextTick(time.Now(), p.cfg.EmitInterval)
			timer.Reset(time.Until(next))
		}
	}
}

// nextTick is the first multiple of interval since the Unix epoch after t.
func nextTick(t time.Time, interval time.Duration) time.Time {
	ns := t.UnixNano()
	return time.Unix(0, (ns/int64(interval)+1)*int64(interval))
}

// shutdown stops the ticker and emits once more, so that the last events reach the
// exporters, which the collector shuts down after the processors.
func (p *sloburn) shutdown(ctx context.Context) error {
	if p.stop != nil {
		close(p.stop)
		<-p.done
		p.stop = nil
		p.emit(ctx, p.now())
	}
	var err error
	if p.client != nil {
		p.saveCheckpoint(ctx)
		err = p.client.Close(ctx)
		p.client = nil
	}
	p.tel.Shutdown()
	return err
}

// emit computes the slo.* metrics at time at and sends them down the pipeline.
func (p *sloburn) emit(ctx context.Context, at time.Time) {
	began := time.Now()
	md := p.collect(at)
	p.tel.ProcessorSloburnEmitDuration.Record(ctx, time.Since(began).Seconds())
	if md.DataPointCount() == 0 {
		return
	}
	if p.client != nil {
		p.saveEmitted(ctx)
	}
	if err := p.next.ConsumeMetrics(ctx, md); err != nil {
		p.logger.Warn("The next consumer refused the slo.* metrics; they are computed again at the next emit", zap.Error(err))
	}
}

// processMetrics feeds the SLOs from a batch and returns the batch unchanged.
func (p *sloburn) processMetrics(ctx context.Context, md pmetric.Metrics) (pmetric.Metrics, error) {
	p.mu.Lock()
	p.ingest(md, p.now().UnixNano())
	counts := p.counts
	overflowed := p.overflowed
	p.counts = [numResults]int64{}
	p.overflowed = 0
	p.mu.Unlock()
	for r, n := range counts {
		if n > 0 {
			p.tel.ProcessorSloburnPoints.Add(ctx, n, metric.WithAttributeSet(resultSets[r]))
		}
	}
	if overflowed > 0 {
		p.tel.ProcessorSloburnSeriesOverflow.Add(ctx, overflowed)
	}
	return md, nil
}

var resultSets = func() (out [numResults]attribute.Set) {
	for i, n := range resultNames {
		out[i] = attribute.NewSet(attribute.String("result", n))
	}
	return out
}()

// attrs lets selectors read a data point's attributes, then its resource's.
type attrs struct{ dp, res pcommon.Map }

func (a *attrs) Get(key string) (string, bool) {
	if v, ok := a.dp.Get(key); ok {
		return v.AsString(), true
	}
	if v, ok := a.res.Get(key); ok {
		return v.AsString(), true
	}
	return "", false
}

// point is what ingest reads from one data point before handing it to observe.
type point struct {
	attrs
	resHash    uint64
	cumulative bool
	start, ts  int64
	at         int64  // where the increase lands in the windows: placeInTime
	clock      result // resAccepted, or resFuture / resDelayed when ts was not used
	v          streams.Values
	// The hash of the point's attributes, computed once for all the inputs that select it.
	dpHash   uint64
	dpHashed bool
}

func (p *sloburn) ingest(md pmetric.Metrics, now int64) {
	var pt point
	rms := md.ResourceMetrics()
	for i := 0; i < rms.Len(); i++ {
		rm := rms.At(i)
		pt.res = rm.Resource().Attributes()
		pt.resHash = hashAttrs(pt.res)
		sms := rm.ScopeMetrics()
		for j := 0; j < sms.Len(); j++ {
			ms := sms.At(j).Metrics()
			for k := 0; k < ms.Len(); k++ {
				m := ms.At(k)
				ins := p.byMetric[m.Name()]
				if len(ins) == 0 {
					continue
				}
				p.ingestMetric(m, ins, &pt, now)
			}
		}
	}
}

func (p *sloburn) ingestMetric(m pmetric.Metric, ins []input, pt *point, now int64) {
	switch m.Type() {
	case pmetric.MetricTypeSum:
		sum := m.Sum()
		dps := sum.DataPoints()
		if !sum.IsMonotonic() {
			// An up-down counter is not a count of events.
			p.counts[resUnsupported] += int64(dps.Len())
			return
		}
		pt.cumulative = sum.AggregationTemporality() == pmetric.AggregationTemporalityCumulative
		for i := 0; i < dps.Len(); i++ {
			dp := dps.At(i)
			if dp.Flags().NoRecordedValue() {
				continue
			}
			v := dp.DoubleValue()
			if dp.ValueType() == pmetric.NumberDataPointValueTypeInt {
				v = float64(dp.IntValue())
			}
			pt.dp, pt.start, pt.ts = dp.Attributes(), int64(dp.StartTimestamp()), int64(dp.Timestamp())
			p.placeInTime(pt, now)
			pt.v = streams.Values{v, 0}
			pt.dpHashed = false
			for _, in := range ins {
				if !in.sel.Matches(&pt.attrs) {
					continue
				}
				if in.role == roleLatency {
					p.counts[resUnsupported]++ // a latency SLI needs a histogram
					continue
				}
				p.observe(in, pt, now)
			}
		}
	case pmetric.MetricTypeHistogram:
		h := m.Histogram()
		pt.cumulative = h.AggregationTemporality() == pmetric.AggregationTemporalityCumulative
		dps := h.DataPoints()
		for i := 0; i < dps.Len(); i++ {
			dp := dps.At(i)
			if dp.Flags().NoRecordedValue() {
				continue
			}
			pt.dp, pt.start, pt.ts = dp.Attributes(), int64(dp.StartTimestamp()), int64(dp.Timestamp())
			p.placeInTime(pt, now)
			pt.dpHashed = false
			for _, in := range ins {
				if !in.sel.Matches(&pt.attrs) {
					continue
				}
				pt.v = streams.Values{float64(dp.Count()), 0}
				if in.role == roleLatency {
					good, ok := countUpTo(dp, in.slo.threshold)
					if !ok {
						p.counts[resNotABucketBound]++
						p.warnBound(in.slo, m.Name(), dp.ExplicitBounds().AsRaw())
						continue
					}
					pt.v[1] = good
				}
				p.observe(in, pt, now)
			}
		}
	default:
		n := 0
		switch m.Type() {
		case pmetric.MetricTypeGauge:
			n = m.Gauge().DataPoints().Len()
		case pmetric.MetricTypeExponentialHistogram:
			n = m.ExponentialHistogram().DataPoints().Len()
		case pmetric.MetricTypeSummary:
			n = m.Summary().DataPoints().Len()
		}
		p.counts[resUnsupported] += int64(n)
	}
}

// countUpTo is the number of observations at or below threshold, which must be one of the
// histogram's bucket bounds: bucket i counts the observations in (bounds[i-1], bounds[i]].
func countUpTo(dp pmetric.HistogramDataPoint, threshold float64) (float64, bool) {
	bounds := dp.ExplicitBounds()
	counts := dp.BucketCounts()
	var n uint64
	for i := 0; i < bounds.Len() && i < counts.Len(); i++ {
		n += counts.At(i)
		// Bounds converted from durations (500ms -> 0.5 s) may differ in the last bit.
		if math.Abs(bounds.At(i)-threshold) <= 1e-9*threshold {
			return float64(n), true
		}
	}
	return 0, false
}

func (p *sloburn) warnBound(s *slo, metricName string, bounds []float64) {
	if p.warned[s] {
		return
	}
	p.warned[s] = true
	p.logger.Warn("latency threshold is not a bucket bound of the histogram: add it to the histogram's buckets (e.g. the span_metrics connector's histogram.explicit.buckets); these points are ignored",
		zap.String("slo", s.name), zap.String("metric", metricName), zap.Float64("threshold", s.threshold), zap.Float64s("bounds", bounds))
}

func (p *sloburn) observe(in input, pt *point, now int64) {
	d := pt.v
	reset := false
	// Where the increase lands in the windows, in Unix ms. A cumulative increase lands just
	// after the stream's previous point, as Prometheus' rate() and increase() over [t-w, t]
	// count the increase between two samples only when the earlier one is in the range too:
	// so after a gap the whole increase leaves each window when the gap's first sample does,
	// not a gap-length later.
	place := pt.at / int64(time.Millisecond)
	if pt.cumulative {
		if !pt.dpHashed {
			pt.dpHash, pt.dpHashed = hashAttrs(pt.dp), true
		}
		key := mix(mix(in.id^pt.resHash) ^ pt.dpHash)
		var r streams.Result
		// A stream from the future remembers the processor's now, not its own time.
		at := pt.ts
		if at <= 0 || at > now {
			at = now
		}
		var prevAt int64
		d, r, prevAt = p.tracker.Delta(key, streams.Point{Start: pt.start, Time: at, At: pt.at, V: pt.v}, now)
		if prevAt > 0 {
			place = min(prevAt/int64(time.Millisecond)+1, place)
		}
		switch r {
		case streams.OutOfOrder:
			p.counts[resOutOfOrder]++
			return
		case streams.Overflow:
			p.counts[resStreamOverflow]++
			return
		case streams.Baseline:
			p.counts[resBaseline]++
			// The series exists from its first point on, with zero events.
			p.groupFor(in.slo, &pt.attrs, now)
			return
		case streams.Reset:
			p.counts[resReset]++
			reset = true
		case streams.Increase:
		}
	}
	var pair window.Pair
	switch in.role {
	case roleTotal:
		pair.Total = d[0]
	case rolePart:
		pair.Part = d[0]
	case roleLatency:
		pair = window.Pair{Total: d[0], Part: d[1]}
	}
	g := p.groupFor(in.slo, &pt.attrs, now)
	g.cum = g.cum.Add(pair)
	switch {
	case !g.series.Add(place, pair):
		// Still in slo.events: those events did happen, Prometheus just sees them late.
		p.counts[resTooOld]++
	case pt.clock != resAccepted:
		p.counts[pt.clock]++
	case !reset:
		p.counts[resAccepted]++
	}
}

// placeInTime sets pt.at, the time the point's increase is attributed to, and pt.clock.
//   - A point stamped in the future (a sender's clock ahead) would move the rings past the
//     present and clear what they hold, and, kept as a stream's last time, make every
//     correctly stamped point after it look out of order: it counts at the processor's
//     now, and its stream remembers now as its time (result future).
//   - A point older than max_delay (a sender's clock behind, a Pi without RTC, or data that
//     waited in a queue) counts at the processor's now too, so that the short windows see
//     it (result delayed); with max_delay 0 it keeps its own time.
//   - A point without a time counts now.
func (p *sloburn) placeInTime(pt *point, now int64) {
	pt.at, pt.clock = pt.ts, resAccepted
	switch {
	case pt.ts <= 0:
		pt.at = now
	case pt.ts > now+futureSlack:
		pt.at, pt.clock = now, resFuture
	case pt.ts > now:
		pt.at = now
	case p.cfg.MaxDelay > 0 && now-pt.ts > int64(p.cfg.MaxDelay):
		pt.at, pt.clock = now, resDelayed
	}
	if pt.clock != resAccepted && now-p.lastClockLog >= clockLogEvery {
		p.lastClockLog = now
		what := "ahead of"
		if pt.clock == resDelayed {
			what = "behind"
		}
		p.logger.Warn("A sender's points are stamped "+what+" this collector's clock (a skewed clock, or delivery delayed in a queue); they count at their arrival time. Check the sender's time synchronization (NTP, an RTC).",
			zap.Duration("offset", time.Duration(pt.ts-now)), zap.Any("resource", pt.res.AsRaw()))
	}
}

// groupFor finds or creates the series of s for the group_by values of a data point.
func (p *sloburn) groupFor(s *slo, a *attrs, now int64) *group {
	buf := p.keyBuf[:0]
	for _, k := range s.groupBy {
		if v, ok := a.dp.Get(k); ok {
			buf = append(append(append(buf, 'd'), v.AsString()...), 0)
		} else if v, ok := a.res.Get(k); ok {
			buf = append(append(append(buf, 'r'), v.AsString()...), 0)
		} else {
			buf = append(buf, '-', 0)
		}
	}
	p.keyBuf = buf
	if g, ok := s.groups[string(buf)]; ok {
		g.lastSeen = now
		return g
	}
	if p.nSeries >= p.cfg.MaxSeries {
		p.overflowed++
		if s.overflow == nil {
			s.overflow = &group{series: s.plan.NewSeries(), start: now, overflow: true}
		}
		s.overflow.lastSeen = now
		return s.overflow
	}
	g := &group{key: string(buf), series: s.plan.NewSeries(), start: now, lastSeen: now}
	for _, k := range s.groupBy {
		if v, ok := a.dp.Get(k); ok {
			g.dp = append(g.dp, kv{k, v.AsString()})
		} else if v, ok := a.res.Get(k); ok {
			g.res = append(g.res, kv{k, v.AsString()})
		}
	}
	for _, x := range g.res {
		g.resKey += x.k + "=" + x.v + "\x00"
	}
	s.groups[g.key] = g
	p.nSeries++
	return g
}

// hashAttrs hashes a map independently of its order: the sum of one hash per attribute.
func hashAttrs(m pcommon.Map) uint64 {
	var h uint64
	for k, v := range m.All() {
		h += mix(xxhash.Sum64String(k) ^ (xxhash.Sum64String(v.AsString()) * 0x9e3779b97f4a7c15))
	}
	return h
}

// mix is the finalizer of splitmix64: it spreads every input bit over the output.
func mix(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}
