package queue

import (
	"errors"
	"time"

	"go.uber.org/zap"

	"github.com/fieldcol/fieldcol/exporters/diskqueueexporter/internal/wal"
)

func (q *Queue) wakeCheckpointer() {
	select {
	case q.cpWake <- struct{}{}:
	default:
	}
}

// checkpointer writes the checkpoint when acknowledgements moved and then deletes fully
// acknowledged segments. The checkpoint goes first so a crash in between at worst leaves a
// checkpoint pointing at a deleted segment, which resume handles.
func (q *Queue) checkpointer() {
	defer close(q.cpDone)
	t := time.NewTicker(q.cfg.CheckpointInterval)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			q.refreshCapacity()
		case <-q.cpWake:
		case <-q.closing:
			return
		}
		q.checkpoint()
	}
}

// checkpoint stores the acknowledged position durably if it moved, then empties the
// delivered log it now covers and deletes fully acknowledged segments. Only the
// checkpointer goroutine calls it, and open and Close while that goroutine is not running.
func (q *Queue) checkpoint() {
	q.mu.Lock()
	acked := q.acked
	q.mu.Unlock()
	if q.checkpointed != nil && *q.checkpointed == acked {
		return
	}
	if err := wal.WriteCheckpoint(q.cfg.FS, q.cfg.Dir, acked); err != nil {
		q.writeFailed(err)
		q.cfg.Logger.Warn("Disk queue could not write its checkpoint; records may be sent again after a crash", zap.Error(err))
		return
	}
	q.checkpointed = &acked
	q.markMu.Lock()
	if q.delivered != nil && q.delivered.Size() > 0 {
		// An acknowledgement that came after acked was read must stay recorded.
		if err := q.delivered.Reset(false); err == nil && acked.Less(q.marked) {
			// A failure here only widens what a kill -9 resends, until the next mark.
			_ = q.delivered.Append(q.marked)
		}
	}
	q.markMu.Unlock()
	q.removeAcked(acked)
}

// deliveredResetSize is the size of the delivered log at which the checkpointer is woken
// early, so that a burst of small acknowledgements never grows it far.
const deliveredResetSize = 64 << 10

// mark appends p to the delivered log: the cheap per-batch record of progress that a
// kill -9 cannot take away (it is in the page cache), so a restart resends only what was
// in flight. A power cut may take it; the fsynced checkpoint bounds the resend then.
func (q *Queue) mark(p wal.Position) {
	q.markMu.Lock()
	defer q.markMu.Unlock()
	if q.delivered == nil || !q.marked.Less(p) {
		return
	}
	if err := q.delivered.Append(p); err != nil {
		q.writeFailed(err)
		if !q.markFailing {
			q.markFailing = true
			q.cfg.Logger.Warn("Disk queue could not record a delivered batch; until the next checkpoint more may be sent again after a crash", zap.Error(err))
		}
		return
	}
	q.markFailing = false
	q.marked = p
	if q.delivered.Size() >= deliveredResetSize {
		q.wakeCheckpointer()
	}
}

// writeFailed counts a failed write by its error type.
func (q *Queue) writeFailed(err error) {
	if IsNoSpace(err) {
		q.cfg.Events.WriteFailed("enospc")
	} else {
		q.cfg.Events.WriteFailed("io")
	}
}

// removeAcked deletes the sealed segments whose every record is before acked. A sealed
// segment holds the sequence numbers up to the next segment's first, so no scan is needed.
func (q *Queue) removeAcked(acked wal.Position) {
	removed := false
	segs := q.log.Segments()
	for i := 0; i+1 < len(segs); i++ {
		if segs[i+1].First > acked.Seq || segs[i].First > acked.Segment {
			break
		}
		if err := q.log.Remove(segs[i].First); err != nil {
			if !errors.Is(err, wal.ErrNotSealed) {
				q.cfg.Logger.Warn("Disk queue could not delete a sent segment", zap.Error(err))
			}
			break
		}
		removed = true
	}
	if removed {
		select {
		case q.space <- struct{}{}:
		default:
		}
	}
}
