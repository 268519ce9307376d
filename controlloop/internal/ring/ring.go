// Package ring is a bounded single-producer single-consumer queue. The control loop is the
// producer: Push never blocks, never allocates and takes no lock, so a slow consumer (the
// telemetry drainer) costs the loop dropped records, which are counted, and never time.
package ring

import (
	"fmt"
	"sync/atomic"
)

// Ring holds up to a power-of-two number of T. One goroutine may Push, one may Pop.
type Ring[T any] struct {
	buf     []T
	mask    uint64
	head    atomic.Uint64 // next slot to read, written by the consumer
	tail    atomic.Uint64 // next slot to write, written by the producer
	dropped atomic.Uint64
}

// New returns a ring with room for size elements; size must be a power of two.
func New[T any](size int) (*Ring[T], error) {
	if size <= 0 || size&(size-1) != 0 {
		return nil, fmt.Errorf("ring size must be a power of two, got %d", size)
	}
	return &Ring[T]{buf: make([]T, size), mask: uint64(size - 1)}, nil
}

// Push appends v, or counts a drop and returns false when the ring is full.
func (r *Ring[T]) Push(v *T) bool {
	t := r.tail.Load()
	if t-r.head.Load() > r.mask {
		r.dropped.Add(1)
		return false
	}
	r.buf[t&r.mask] = *v
	r.tail.Store(t + 1) // publishes the slot to the consumer
	return true
}

// Pop removes the oldest element into v; false when empty.
func (r *Ring[T]) Pop(v *T) bool {
	h := r.head.Load()
	if h == r.tail.Load() {
		return false
	}
	*v = r.buf[h&r.mask]
	r.head.Store(h + 1) // hands the slot back to the producer
	return true
}

// Len is the number of queued elements (a snapshot).
func (r *Ring[T]) Len() int { return int(r.tail.Load() - r.head.Load()) }

// Dropped is the number of Push calls that found the ring full.
func (r *Ring[T]) Dropped() uint64 { return r.dropped.Load() }
