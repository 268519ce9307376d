package queue

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"go.uber.org/zap"

	"github.com/fieldcol/fieldcol/exporters/diskqueueexporter/internal/wal"
)

// Read returns the next batch of at most about maxBytes, waiting until there is one, ctx
// ends or the queue closes. Records older than max_age are skipped and counted.
func (q *Queue) Read(ctx context.Context, maxBytes int) (*Batch, error) {
	q.readMu.Lock()
	defer q.readMu.Unlock()
	stop := context.AfterFunc(ctx, func() {
		q.mu.Lock()
		q.cond.Broadcast()
		q.mu.Unlock()
	})
	defer stop()
	for {
		q.mu.Lock()
		pos, limit, sealedNext, err := q.nextRange(ctx)
		q.mu.Unlock()
		if err != nil {
			return nil, err
		}
		b, err := q.readRange(pos, limit, sealedNext, maxBytes)
		if err != nil {
			return nil, err
		}
		q.mu.Lock()
		if q.readPos != pos {
			// dropOldest moved the read position while the lock was released.
			q.mu.Unlock()
			continue
		}
		q.readPos = b.end
		q.inflight = append(q.inflight, b)
		q.mu.Unlock()
		if len(b.Records) > 0 {
			return b, nil
		}
		q.Ack(b)
	}
}

// nextRange waits for unread committed data and returns where it is: the position, the
// readable limit in that segment, and the first sequence number of the next segment when
// the segment is sealed (0 otherwise). Called with q.mu held.
func (q *Queue) nextRange(ctx context.Context) (wal.Position, int64, uint64, error) {
	for {
		if q.closed {
			return wal.Position{}, 0, 0, ErrClosed
		}
		if err := ctx.Err(); err != nil {
			return wal.Position{}, 0, 0, err
		}
		if q.readPos.Segment == q.head.Segment {
			if q.readPos.Offset < q.head.Offset {
				return q.readPos, q.head.Offset, 0, nil
			}
			q.cond.Wait()
			continue
		}
		segs := q.log.Segments()
		for i, s := range segs {
			if s.First != q.readPos.Segment {
				continue
			}
			if q.readPos.Offset < s.Size && i+1 < len(segs) {
				return q.readPos, s.Size, segs[i+1].First, nil
			}
			break
		}
		// At the end of a sealed segment (or on one that was deleted): move on.
		next := q.head.Segment
		for _, s := range segs {
			if s.First > q.readPos.Segment {
				next = s.First
				break
			}
		}
		if missing := int64(next) - int64(q.readPos.Seq); missing > 0 {
			q.cfg.Events.Dropped(ReasonCorrupt, missing)
			q.cfg.Logger.Warn("Disk queue segment ended before its last record; counting the missing records as corrupt",
				zap.String("segment", wal.SegmentName(q.readPos.Segment)), zap.Int64("records", missing))
		}
		q.readPos = wal.Position{Segment: next, Seq: next}
	}
}

// readRange reads records of one segment from pos up to limit. A corruption ends the
// batch and moves the read position past the bad region, counting what it skips.
func (q *Queue) readRange(pos wal.Position, limit int64, sealedNext uint64, maxBytes int) (*Batch, error) {
	if q.rf == nil || q.rfSeg != pos.Segment {
		if q.rf != nil {
			_ = q.rf.Close()
			q.rf = nil
		}
		f, err := q.cfg.FS.OpenFile(filepath.Join(q.cfg.Dir, wal.SegmentName(pos.Segment)), os.O_RDONLY, 0)
		if err != nil {
			if errors.Is(err, os.ErrNotExist) {
				// Deleted by drop_oldest since nextRange looked (Read then sees the moved
				// position), or from outside: skip it rather than spin on it.
				b := &Batch{start: pos, end: pos}
				q.skipCorrupt(b, &wal.CorruptionError{Segment: pos.Segment, Offset: pos.Offset, Err: err}, sealedNext)
				return b, nil
			}
			return nil, fmt.Errorf("queue: opening segment for reading: %w", err)
		}
		q.rf, q.rfSeg = f, pos.Segment
	}
	q.sr.Reset(io.NewSectionReader(q.rf, pos.Offset, limit-pos.Offset), pos.Segment, pos.Offset, limit)
	b := &Batch{start: pos, end: pos}
	var cutoff time.Time
	if q.cfg.MaxAge > 0 {
		cutoff = q.cfg.Now().Add(-q.cfg.MaxAge)
	}
	var expired int64
	var ends []int
	for len(b.Body) < maxBytes && q.sr.Next() {
		rec := q.sr.Record()
		b.end = wal.Position{Segment: pos.Segment, Offset: q.sr.Offset(), Seq: b.end.Seq + 1}
		ts, err := recordTime(rec)
		if err == nil && !cutoff.IsZero() && !ts.IsZero() && ts.Before(cutoff) {
			expired++
			continue
		}
		if b.Body == nil {
			// Sized for what can come, so a trickle of small records never allocates
			// a whole send_batch_max_bytes buffer per record.
			b.Body = make([]byte, 0, min(int64(maxBytes), limit-pos.Offset)+int64(len(rec)))
		}
		if err == nil {
			b.Body, err = q.codec.decode(b.Body, rec)
		}
		if err != nil {
			if len(ends) > 0 {
				b.Body = b.Body[:ends[len(ends)-1]]
			} else {
				b.Body = b.Body[:0]
			}
			q.cfg.Events.Dropped(ReasonCorrupt, 1)
			q.cfg.Logger.Warn("Disk queue record could not be decoded; dropped", zap.Error(err))
			continue
		}
		if len(ends) == 0 {
			b.Oldest = ts
		}
		b.Newest = ts
		ends = append(ends, len(b.Body))
	}
	b.Records = make([][]byte, len(ends))
	prev := 0
	for i, end := range ends {
		b.Records[i] = b.Body[prev:end:end]
		prev = end
	}
	if expired > 0 {
		q.cfg.Events.Dropped(ReasonExpired, expired)
	}
	if err := q.sr.Err(); err != nil {
		var ce *wal.CorruptionError
		if !errors.As(err, &ce) {
			if len(b.Records) > 0 || b.end != pos {
				return b, nil
			}
			return nil, err
		}
		q.skipCorrupt(b, ce, sealedNext)
	}
	return b, nil
}

// skipCorrupt moves the batch end past a corrupt region: to the next segment when the
// segment is sealed, else to the committed head (a corruption below the head of the
// segment being written means the disk altered committed data).
func (q *Queue) skipCorrupt(b *Batch, ce *wal.CorruptionError, sealedNext uint64) {
	q.mu.Lock()
	target := q.head
	q.mu.Unlock()
	if sealedNext != 0 {
		target = wal.Position{Segment: sealedNext, Seq: sealedNext}
	}
	lost := int64(target.Seq) - int64(b.end.Seq)
	q.cfg.Logger.Warn("Disk queue found corrupt data; skipping it", zap.Error(ce), zap.Int64("records", lost))
	if lost > 0 {
		q.cfg.Events.Dropped(ReasonCorrupt, lost)
	}
	b.end = target
}

// Ack marks a batch as done (sent, or dropped by the caller). The acknowledged position
// advances over the longest prefix of done batches, so out-of-order acks from several
// senders never skip a record that is still in flight.
func (q *Queue) Ack(b *Batch) {
	q.mu.Lock()
	b.done = true
	crossed, moved := false, false
	for len(q.inflight) > 0 && q.inflight[0].done {
		end := q.inflight[0].end
		q.inflight[0] = nil
		q.inflight = q.inflight[1:]
		if q.acked.Less(end) {
			crossed = crossed || end.Segment != q.acked.Segment
			q.acked, moved = end, true
		}
	}
	acked := q.acked
	q.mu.Unlock()
	if moved {
		q.mark(acked)
	}
	if crossed {
		q.wakeCheckpointer()
	}
}

// peekTime reads the enqueue time of the record at pos without consuming it.
func (q *Queue) peekTime(pos wal.Position) time.Time {
	f, err := q.cfg.FS.OpenFile(filepath.Join(q.cfg.Dir, wal.SegmentName(pos.Segment)), os.O_RDONLY, 0)
	if err != nil {
		return time.Time{}
	}
	defer func() { _ = f.Close() }() // read-only: a close error loses nothing
	var buf [wal.HeaderSize + envelopeSize]byte
	if _, err := f.ReadAt(buf[:], pos.Offset); err != nil {
		return time.Time{}
	}
	ts, err := recordTime(buf[wal.HeaderSize:])
	if err != nil {
		return time.Time{}
	}
	return ts
}
