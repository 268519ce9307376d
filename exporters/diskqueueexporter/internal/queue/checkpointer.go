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
		case <-q.cpWake:
		case <-q.closing:
			return
		}
		q.checkpoint()
	}
}

// checkpoint stores the acknowledged position if it moved. Only the checkpointer goroutine
// calls it, and Close once that goroutine has ended.
func (q *Queue) checkpoint() {
	q.mu.Lock()
	acked := q.acked
	q.mu.Unlock()
	if q.checkpointed != nil && *q.checkpointed == acked {
		return
	}
	if err := wal.WriteCheckpoint(q.cfg.FS, q.cfg.Dir, acked); err != nil {
		if IsNoSpace(err) {
			q.cfg.Events.WriteFailed("enospc")
		} else {
			q.cfg.Events.WriteFailed("io")
		}
		q.cfg.Logger.Warn("Disk queue could not write its checkpoint; records may be sent again after a crash", zap.Error(err))
		return
	}
	q.checkpointed = &acked
	q.removeAcked(acked)
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
