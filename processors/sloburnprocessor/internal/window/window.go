// Package window keeps event counts in fixed-width time buckets, one ring per window length,
// so that the sum over a sliding window costs a fixed number of additions and the memory of a
// series is fixed when it is created, whatever the event rate.
//
// Bucket k of a ring of width g covers the half-open interval ((k-1)·g, k·g] of Unix
// milliseconds. A window of length w = n·g evaluated at a time t that is a multiple of g is
// therefore exactly (t-w, t]. Each ring's width is the finest multiple of a resolution (the
// processor's emit interval) that divides the window in at most a given number of buckets, so
// a window evaluated at multiples of the resolution is exact as long as it needs no more
// buckets than that; a longer window is exact at multiples of its coarser width and up to one
// bucket (1/max of the window) short in between.
package window

import (
	"fmt"
	"math"
	"time"
	"unsafe"
)

// empty marks a ring that has never received an increase.
const empty = math.MinInt64 / 2

// Pair is the increase of the two counters of an SLO: every event, and either the bad or the
// good ones (which one is the caller's business).
type Pair struct {
	Total float64
	Part  float64
}

// Add returns the sum of two pairs.
func (p Pair) Add(o Pair) Pair { return Pair{Total: p.Total + o.Total, Part: p.Part + o.Part} }

// Plan is the layout shared by every series of one SLO: which windows exist and where each
// ring sits in a series' bucket array.
type Plan struct {
	windows []time.Duration
	width   []int64 // bucket width of each ring, in milliseconds
	offset  []int   // first bucket of each ring in Series.buckets
	n       []int   // buckets of each ring
	total   int     // buckets of all rings
	longest int     // index of the longest window
}

// NewPlan lays out one ring for each distinct window. A ring's bucket width is the smallest
// multiple of resolution that divides the window into at most maxBuckets buckets; when no
// multiple of resolution divides the window, the window is cut into the largest number of
// whole-millisecond buckets up to maxBuckets. Windows are positive whole milliseconds.
func NewPlan(windows []time.Duration, resolution time.Duration, maxBuckets int) *Plan {
	p := &Plan{}
	seen := map[time.Duration]bool{}
	for _, w := range windows {
		if seen[w] {
			continue
		}
		seen[w] = true
		width := bucketWidth(w.Milliseconds(), resolution.Milliseconds(), int64(maxBuckets))
		n := int(w.Milliseconds() / width)
		p.offset = append(p.offset, p.total)
		p.windows = append(p.windows, w)
		p.width = append(p.width, width)
		p.n = append(p.n, n)
		p.total += n
		if w > p.windows[p.longest] {
			p.longest = len(p.windows) - 1
		}
	}
	return p
}

// bucketWidth is the finest width, in milliseconds, that cuts w into at most maxN buckets:
// a multiple of res when one divides w, otherwise any divisor of w.
func bucketWidth(w, res, maxN int64) int64 {
	if res > 0 && w%res == 0 {
		for m := (w/res + maxN - 1) / maxN; m*res <= w; m++ {
			if w%(m*res) == 0 {
				return m * res
			}
		}
	}
	for n := min(maxN, w); n > 1; n-- {
		if w%n == 0 {
			return w / n
		}
	}
	return w
}

// Windows lists the distinct windows of the plan in the order they were first given.
func (p *Plan) Windows() []time.Duration { return p.windows }

// BucketWidth is the resolution of window w, and zero if the plan does not hold w.
func (p *Plan) BucketWidth(w time.Duration) time.Duration {
	if i := p.ring(w); i >= 0 {
		return time.Duration(p.width[i]) * time.Millisecond
	}
	return 0
}

// StateBytes is the memory that one series of this plan holds: the Series header, its
// buckets and the head index of each ring. It does not count the caller's own bookkeeping.
func (p *Plan) StateBytes() int {
	return int(unsafe.Sizeof(Series{})) + p.total*int(unsafe.Sizeof(Pair{})) + len(p.windows)*8
}

func (p *Plan) ring(w time.Duration) int {
	for i, x := range p.windows {
		if x == w {
			return i
		}
	}
	return -1
}

// Series is the bucketed history of one SLO series.
type Series struct {
	plan    *Plan
	buckets []Pair
	heads   []int64 // absolute index of the newest bucket of each ring, or empty
}

// NewSeries allocates every bucket of a series up front.
func (p *Plan) NewSeries() *Series {
	s := &Series{plan: p, buckets: make([]Pair, p.total), heads: make([]int64, len(p.windows))}
	for i := range s.heads {
		s.heads[i] = empty
	}
	return s
}

// index returns the bucket that holds time ts: ((k-1)·g, k·g] -> k. Callers pass ts >= 0.
func index(ts, width int64) int64 {
	k := ts / width
	if ts%width != 0 && ts > 0 {
		k++
	}
	return k
}

// Add records an increase at Unix millisecond ts. It returns false when ts is older than
// every bucket of the longest window, so that the caller can count the loss; rings too short
// to hold ts skip it, since the windows they serve no longer cover ts.
func (s *Series) Add(ts int64, d Pair) bool {
	p := s.plan
	kept := false
	for r := range p.windows {
		k := index(ts, p.width[r])
		head := s.heads[r]
		switch {
		case k > head:
			s.advance(r, k)
		case k <= head-int64(p.n[r]):
			continue
		}
		b := &s.buckets[p.offset[r]+slot(k, p.n[r])]
		b.Total += d.Total
		b.Part += d.Part
		kept = true
	}
	return kept
}

// slot is k modulo n in [0, n): the ring position of bucket k, also for the buckets before
// the epoch that a window starting near time 0 asks for.
func slot(k int64, n int) int {
	m := int(k % int64(n))
	if m < 0 {
		m += n
	}
	return m
}

// advance moves ring r's head to k, clearing the buckets it reuses.
func (s *Series) advance(r int, k int64) {
	p := s.plan
	head := s.heads[r]
	n := p.n[r]
	ring := s.buckets[p.offset[r] : p.offset[r]+n]
	if head == empty || k-head >= int64(n) {
		clear(ring)
	} else {
		for i := head + 1; i <= k; i++ {
			ring[slot(i, n)] = Pair{}
		}
	}
	s.heads[r] = k
}

// Sum is the increase over window w ending at Unix millisecond now: the buckets whose index
// lies in (index(now)-n, index(now)]. It does not modify the series. A ring keeps only its
// newest n buckets, so now must not be earlier than the newest increase that was added.
func (s *Series) Sum(w time.Duration, now int64) Pair {
	p := s.plan
	r := p.ring(w)
	if r < 0 {
		return Pair{}
	}
	head := s.heads[r]
	if head == empty {
		return Pair{}
	}
	cur := index(now, p.width[r])
	// The ring holds (head-n, head]; the window asks for (cur-n, cur].
	lo := max(cur, head) - int64(p.n[r]) + 1
	hi := min(cur, head)
	var sum Pair
	for k := lo; k <= hi; k++ {
		b := s.buckets[p.offset[r]+slot(k, p.n[r])]
		sum.Total += b.Total
		sum.Part += b.Part
	}
	return sum
}

// LastActive is the end of the newest bucket of the longest window, in Unix milliseconds:
// when now is more than one window past it, the series holds nothing any more.
func (s *Series) LastActive() int64 {
	r := s.plan.longest
	if s.heads[r] == empty {
		return 0
	}
	return s.heads[r] * s.plan.width[r]
}

// State copies the buckets and ring heads of a series, for a checkpoint.
func (s *Series) State() (buckets []Pair, heads []int64) {
	return append([]Pair(nil), s.buckets...), append([]int64(nil), s.heads...)
}

// Restore rebuilds a series of this plan from State's output. It refuses state of another
// layout, which a change of the configured windows produces.
func (p *Plan) Restore(buckets []Pair, heads []int64) (*Series, error) {
	if len(buckets) != p.total || len(heads) != len(p.windows) {
		return nil, fmt.Errorf("saved series has %d buckets and %d rings, this plan %d and %d",
			len(buckets), len(heads), p.total, len(p.windows))
	}
	return &Series{plan: p, buckets: append([]Pair(nil), buckets...), heads: append([]int64(nil), heads...)}, nil
}
