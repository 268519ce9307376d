package queue

import (
	"context"
	"errors"
	"fmt"
	"syscall"
	"time"

	"go.uber.org/zap"

	"github.com/fieldcol/fieldcol/exporters/diskqueueexporter/internal/wal"
)

// Append stores data durably (per the sync policy) and returns once it is, or when ctx
// ends. A batch when_full does not let in returns ErrFull: it is not stored. data is written
// as it is, possibly after Append returned on a cancelled ctx: the caller must never reuse it.
func (q *Queue) Append(ctx context.Context, data []byte) error {
	prefix, payload, err := q.codec.frame(data, q.cfg.Now())
	if err != nil {
		return err
	}
	size := len(prefix) + len(payload)
	if int64(size) > q.cfg.MaxSize {
		q.cfg.Events.Dropped(ReasonFull, 1)
		return fmt.Errorf("%w: %d bytes", ErrTooLarge, size)
	}
	r := &request{prefix: prefix, payload: payload, size: size, raw: len(data), done: make(chan error, 1), abandoned: make(chan struct{})}
	select {
	case <-q.closing:
		return ErrClosed
	case <-ctx.Done():
		return ctx.Err()
	case q.reqs <- r:
	}
	select {
	case err := <-r.done:
		return err
	case <-ctx.Done():
		close(r.abandoned)
		return ctx.Err()
	case <-q.writerDone:
		select {
		case err := <-r.done:
			return err
		default:
			return ErrClosed
		}
	}
}

// writer is the single goroutine that writes: it gathers appends into groups, writes each
// group and fsyncs it once, then answers every caller of the group.
func (q *Queue) writer() {
	defer close(q.writerDone)
	for {
		var first *request
		select {
		case first = <-q.reqs:
		case <-q.closing:
			// Write what callers already handed over, then stop.
			for {
				select {
				case r := <-q.reqs:
					q.commit(q.gather(r, false))
				default:
					return
				}
			}
		}
		q.commit(q.gather(first, true))
	}
}

func (q *Queue) gather(first *request, linger bool) []*request {
	group := []*request{first}
	if q.cfg.Sync == SyncAlways {
		return group
	}
	size := first.size
	if linger && q.cfg.Sync == SyncBatch && q.cfg.SyncInterval > 0 {
		t := time.NewTimer(q.cfg.SyncInterval)
		defer t.Stop()
		for size < maxGroupBytes {
			select {
			case r := <-q.reqs:
				group = append(group, r)
				size += r.size
				continue
			case <-t.C:
			case <-q.closing:
			}
			break
		}
	}
	for size < maxGroupBytes {
		select {
		case r := <-q.reqs:
			group = append(group, r)
			size += r.size
			continue
		default:
		}
		break
	}
	return group
}

func reply(group []*request, err error) {
	for _, r := range group {
		r.done <- err
	}
}

func liveRequests(group []*request) []*request {
	live := group[:0]
	for _, r := range group {
		if !r.isAbandoned() {
			live = append(live, r)
		}
	}
	return live
}

// commit writes one group and answers its callers, applying when_full on max_size and on
// ENOSPC. Every failure path leaves the log at its last committed state.
func (q *Queue) commit(group []*request) {
	bufs := make([][]byte, 0, 2*len(group))
	for {
		group = liveRequests(group)
		if len(group) == 0 {
			return
		}
		bufs = bufs[:0]
		var size int64
		for _, r := range group {
			bufs = append(bufs, r.prefix, r.payload)
			size += int64(r.size)
		}
		if q.log.Size()+size > q.limit.Load() {
			if !q.makeRoom(group) {
				return
			}
			continue
		}
		err := q.log.Append(bufs, len(group))
		if err == nil {
			start := time.Now()
			err = q.log.Commit(q.cfg.Sync != SyncNever)
			if q.cfg.Sync != SyncNever {
				q.cfg.Events.Synced(time.Since(start))
			}
		}
		if err == nil {
			if q.diskFull {
				q.diskFull = false
				q.cfg.Logger.Info("Disk queue can write again after a full disk")
			}
			q.publish()
			for _, r := range group {
				q.accepted.Add(int64(r.raw))
			}
			reply(group, nil)
			return
		}
		if !IsNoSpace(err) {
			q.cfg.Events.WriteFailed("io")
			q.cfg.Logger.Error("Disk queue write failed; the batch is refused and the pipeline may retry it", zap.Error(err))
			reply(group, err)
			return
		}
		q.cfg.Events.WriteFailed("enospc")
		if !q.diskFull {
			// Once per episode: a blocked writer retries every second.
			q.diskFull = true
			q.cfg.Logger.Warn("Disk queue hit a full disk (ENOSPC); applying when_full until space returns", zap.Error(err))
		}
		if !q.makeRoom(group) {
			return
		}
	}
}

// makeRoom applies when_full. It returns true when the group should be tried again and
// false when the group was answered (refused). Only data the queue holds is ever dropped:
// a batch it did not store is refused, never acknowledged.
func (q *Queue) makeRoom(group []*request) bool {
	switch q.cfg.WhenFull {
	case DropNewest:
		reply(group, ErrFull)
		return false
	case DropOldest:
		if q.dropOldest() {
			return true
		}
		// Nothing of its own left (another program filled the disk): refusing is the
		// only honest answer.
		reply(group, ErrFull)
		return false
	default:
		q.sealIfDrained()
		t := time.NewTimer(q.cfg.FullRetryInterval)
		defer t.Stop()
		select {
		case <-q.space:
		case <-t.C:
		case <-q.closing:
			reply(group, ErrClosed)
			return false
		}
		return true
	}
}

// sealIfDrained starts a new segment when everything written was acknowledged, so the
// checkpointer can delete the old one; without it a queue whose only segment is full
// but empty of pending records could never free space.
func (q *Queue) sealIfDrained() {
	q.mu.Lock()
	drained := q.acked.Seq == q.head.Seq
	q.mu.Unlock()
	if !drained {
		return
	}
	if err := q.log.SealCurrent(); err != nil {
		q.cfg.Logger.Warn("Disk queue could not start a new segment", zap.Error(err))
		return
	}
	q.publish()
	q.wakeCheckpointer()
}

// dropOldest deletes the oldest segment, sealing the current one first if it is the only
// one. Records in it that were not acknowledged are counted as dropped (full).
func (q *Queue) dropOldest() bool {
	segs := q.log.Segments()
	if len(segs) == 1 {
		if segs[0].Size == 0 {
			return false
		}
		if err := q.log.SealCurrent(); err != nil {
			q.cfg.Logger.Warn("Disk queue could not start a new segment", zap.Error(err))
			return false
		}
		q.publish()
		segs = q.log.Segments()
	}
	victim, next := segs[0], segs[1]
	q.mu.Lock()
	var lost uint64
	if q.acked.Segment <= victim.First {
		lost = next.First - q.acked.Seq
		q.acked = wal.Position{Segment: next.First, Seq: next.First}
	}
	if q.readPos.Segment <= victim.First {
		q.readPos = wal.Position{Segment: next.First, Seq: next.First}
	}
	q.mu.Unlock()
	if err := q.log.Remove(victim.First); err != nil && !errors.Is(err, wal.ErrNotSealed) {
		q.cfg.Logger.Warn("Disk queue could not delete its oldest segment", zap.Error(err))
		return false
	}
	if lost > 0 {
		q.cfg.Events.Dropped(ReasonFull, int64(lost))
		q.cfg.Logger.Warn("Disk queue is full and dropped its oldest records (when_full: drop_oldest); they had been acknowledged and are lost",
			zap.String("segment", wal.SegmentName(victim.First)), zap.Uint64("records", lost))
	}
	q.wakeCheckpointer()
	return true
}

// IsNoSpace reports whether err is a full disk or an exhausted quota.
func IsNoSpace(err error) bool {
	return errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT)
}

// publish makes the log's committed head visible to readers.
func (q *Queue) publish() {
	h := q.log.Head()
	q.mu.Lock()
	q.head = h
	q.cond.Broadcast()
	q.mu.Unlock()
}
