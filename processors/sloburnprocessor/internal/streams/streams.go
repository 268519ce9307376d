// Package streams turns the points of cumulative streams (counters and histograms) into
// increases, the way Prometheus' increase() reads counters: a value lower than the previous
// one, or a new start time, is a reset after which the whole new value counts.
package streams

import "time"

// Values are the one or two cumulative quantities of a stream: a counter's value, or a
// histogram's count and its count up to the SLO threshold.
type Values [2]float64

// Point is one cumulative observation, times in Unix nanoseconds.
type Point struct {
	Start int64
	Time  int64 // orders the stream's points
	// At is where the caller placed the point in its windows (its own time, or its arrival
	// for a skewed clock); Delta hands it back with the next point.
	At int64
	V  Values
}

// Result says what Delta did with a point.
type Result int

// The outcomes of Delta.
const (
	// Increase: the delta is the increase since the stream's previous point.
	Increase Result = iota
	// Baseline: first point of a stream that started before the processor did; what it
	// counted before cannot be told apart from what it counted before we watched.
	Baseline
	// Reset: the source restarted; the delta is the whole new value.
	Reset
	// OutOfOrder: the point is not newer than the last one and was ignored.
	OutOfOrder
	// Overflow: the table is full and the new stream was not tracked.
	Overflow
)

type state struct {
	last   Point
	seenAt int64 // processor clock when the stream last sent a point, Unix ns
}

// Tracker holds the last point of each stream, up to a fixed number of streams.
type Tracker struct {
	max     int
	started int64 // Unix ns when the processor started
	m       map[uint64]*state
}

// New tracks at most max streams; points of streams whose start time is not before started
// count from zero, since everything they counted happened while the processor was running.
func New(maxStreams int, started time.Time) *Tracker {
	return &Tracker{max: maxStreams, started: started.UnixNano(), m: make(map[uint64]*state)}
}

// Len is the number of streams tracked.
func (t *Tracker) Len() int { return len(t.m) }

// Delta returns the increase of stream key since its previous point, and the At of that
// previous point (0 for a stream's first point): Prometheus' increase() over a range counts
// the increase between two samples when both lie in the range, so the caller attributes it
// to the earlier one. now is the processor's clock, kept to forget idle streams.
func (t *Tracker) Delta(key uint64, p Point, now int64) (Values, Result, int64) {
	st, ok := t.m[key]
	if !ok {
		if len(t.m) >= t.max {
			return Values{}, Overflow, 0
		}
		t.m[key] = &state{last: p, seenAt: now}
		if p.Start != 0 && p.Start >= t.started {
			return p.V, Reset, 0
		}
		return Values{}, Baseline, 0
	}
	if p.Time <= st.last.Time {
		return Values{}, OutOfOrder, 0
	}
	prev := st.last
	st.last, st.seenAt = p, now
	if (p.Start != 0 && prev.Start != 0 && p.Start != prev.Start) || p.V[0] < prev.V[0] || p.V[1] < prev.V[1] {
		return p.V, Reset, prev.At
	}
	return Values{p.V[0] - prev.V[0], p.V[1] - prev.V[1]}, Increase, prev.At
}

// Forget drops the streams that sent nothing since idleSince (Unix ns), and returns how many
// it dropped. A stream that comes back later starts from a baseline again.
func (t *Tracker) Forget(idleSince int64) int {
	n := 0
	for k, st := range t.m {
		if st.seenAt < idleSince {
			delete(t.m, k)
			n++
		}
	}
	return n
}

// Saved is one stream in a checkpoint.
type Saved struct {
	Key    uint64
	Last   Point
	SeenAt int64
}

// Save lists every stream, for a checkpoint.
func (t *Tracker) Save() []Saved {
	out := make([]Saved, 0, len(t.m))
	for k, st := range t.m {
		out = append(out, Saved{Key: k, Last: st.last, SeenAt: st.seenAt})
	}
	return out
}

// Restore adds saved streams, as many as the table holds; their next point is an increase
// over the saved one, as if the processor had not stopped.
func (t *Tracker) Restore(saved []Saved) {
	for _, s := range saved {
		if len(t.m) >= t.max {
			return
		}
		t.m[s.Key] = &state{last: s.Last, seenAt: s.SeenAt}
	}
}
