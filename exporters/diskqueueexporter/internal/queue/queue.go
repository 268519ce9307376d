package queue

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"go.uber.org/zap"

	"github.com/fieldcol/fieldcol/exporters/diskqueueexporter/internal/wal"
)

// ErrClosed is returned by Append and Read once the queue is closed.
var ErrClosed = errors.New("queue: closed")

// ErrDropped is returned by Append when when_full dropped the batch; it was counted.
var ErrDropped = errors.New("queue: batch dropped because the queue is full")

// ErrTooLarge is returned by Append for a batch that could never fit in max_size.
var ErrTooLarge = errors.New("queue: batch larger than max_size")

// maxGroupBytes bounds one group commit so a burst never holds every caller for one
// enormous write.
const maxGroupBytes = 4 << 20

type request struct {
	frame     []byte // framed record
	done      chan error
	abandoned chan struct{} // closed when the caller stopped waiting
}

func (r *request) isAbandoned() bool {
	select {
	case <-r.abandoned:
		return true
	default:
		return false
	}
}

// Batch is a run of consecutive records handed to a sender. Ack it once the receiver has
// accepted it or it was dropped for good.
type Batch struct {
	// Body is the callers' bytes of every record, concatenated in order; Records slices it
	// per record. Keeping one buffer spares the sender a copy.
	Body    []byte
	Records [][]byte
	Oldest  time.Time
	Newest  time.Time
	start   wal.Position
	end     wal.Position
	done    bool
}

// Queue is a durable FIFO of byte records. See the package comment.
type Queue struct {
	cfg   Config
	log   *wal.Log
	codec *codec
	lock  *os.File

	reqs       chan *request
	closing    chan struct{}
	writerDone chan struct{}
	cpWake     chan struct{}
	cpDone     chan struct{}
	space      chan struct{} // a token when segments were removed

	mu       sync.Mutex
	cond     *sync.Cond
	head     wal.Position // end of committed data
	readPos  wal.Position // next record to hand out
	acked    wal.Position // everything before this was acknowledged
	inflight []*Batch
	closed   bool

	readMu sync.Mutex // serializes Read's file I/O
	rf     wal.File
	rfSeg  uint64
	sr     *wal.SegmentReader

	closeOnce sync.Once
	closeErr  error
}

// Open opens (creating if needed) the queue in cfg.Dir, repairs a torn tail and resumes
// from the checkpoint.
func Open(cfg Config) (*Queue, error) {
	cfg.setDefaults()
	if err := cfg.FS.MkdirAll(cfg.Dir, 0o750); err != nil {
		return nil, fmt.Errorf("queue: creating directory %s: %w", cfg.Dir, err)
	}
	var lock *os.File
	if _, real := cfg.FS.(wal.OSFS); real {
		var err error
		if lock, err = lockDir(cfg.Dir); err != nil {
			return nil, err
		}
	}
	q, err := open(cfg, lock)
	if err != nil && lock != nil {
		_ = lock.Close()
	}
	return q, err
}

func open(cfg Config, lock *os.File) (*Queue, error) {
	cp, cpErr := wal.ReadCheckpoint(cfg.FS, cfg.Dir)
	switch {
	case cpErr == nil, errors.Is(cpErr, wal.ErrNoCheckpoint):
	case errors.Is(cpErr, wal.ErrBadCheckpoint):
		// Starting from the oldest segment resends what was already sent, which
		// at-least-once allows; refusing to start would lose everything.
		cfg.Logger.Warn("Disk queue checkpoint is corrupt; resending from the oldest segment", zap.String("directory", cfg.Dir), zap.Error(cpErr))
	default:
		return nil, cpErr
	}
	l, repair, err := wal.Open(cfg.FS, cfg.Dir, wal.Options{SegmentSize: cfg.SegmentSize, SyncOnRotate: cfg.Sync != SyncNever, FirstSeq: cp.Seq})
	if err != nil {
		return nil, err
	}
	if repair != nil {
		cfg.Logger.Warn("Disk queue tail was torn or corrupt and has been truncated; the records in it were never acknowledged to the pipeline",
			zap.String("segment", wal.SegmentName(repair.Segment)), zap.Int64("offset", repair.Offset),
			zap.Int64("dropped_bytes", repair.DroppedBytes), zap.Error(repair.Err))
		cfg.Events.Dropped(ReasonCorrupt, 1)
	}
	cd, err := newCodec(cfg.Compression)
	if err != nil {
		_ = l.Close(false)
		return nil, err
	}
	q := &Queue{
		cfg:        cfg,
		log:        l,
		codec:      cd,
		lock:       lock,
		reqs:       make(chan *request, 1024),
		closing:    make(chan struct{}),
		writerDone: make(chan struct{}),
		cpWake:     make(chan struct{}, 1),
		cpDone:     make(chan struct{}),
		space:      make(chan struct{}, 1),
		sr:         wal.NewSegmentReader(nil, 0, 0, 0),
	}
	q.cond = sync.NewCond(&q.mu)
	q.head = l.Head()
	q.readPos = resume(l.Segments(), q.head, cp, cpErr == nil)
	q.acked = q.readPos
	q.removeAcked(q.acked)
	go q.writer()
	go q.checkpointer()
	return q, nil
}

// resume picks the read position from the checkpoint, tolerating a checkpoint that is stale
// (its segment was deleted after it was written) or ahead of a truncated tail.
func resume(segs []wal.Segment, head wal.Position, cp wal.Position, haveCP bool) wal.Position {
	start := wal.Position{Segment: segs[0].First, Seq: segs[0].First}
	if !haveCP {
		return start
	}
	if !cp.Less(head) {
		// Everything was acknowledged, or the tail was truncated below the checkpoint.
		return head
	}
	for i, s := range segs {
		switch {
		case s.First == cp.Segment && cp.Offset <= s.Size:
			return cp
		case s.First == cp.Segment:
			if i+1 < len(segs) {
				return wal.Position{Segment: segs[i+1].First, Seq: segs[i+1].First}
			}
			return head
		case s.First > cp.Segment:
			return wal.Position{Segment: s.First, Seq: s.First}
		}
	}
	return start
}

// Append stores data durably (per the sync policy) and returns once it is, or when ctx
// ends. A batch dropped by when_full returns ErrDropped (already counted).
func (q *Queue) Append(ctx context.Context, data []byte) error {
	frame, err := q.codec.frame(data, q.cfg.Now())
	if err != nil {
		return err
	}
	if int64(len(frame)) > q.cfg.MaxSize {
		q.cfg.Events.Dropped(ReasonFull, 1)
		return fmt.Errorf("%w: %d bytes", ErrTooLarge, len(frame))
	}
	r := &request{frame: frame, done: make(chan error, 1), abandoned: make(chan struct{})}
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
// group with one write and one fsync, then answers every caller of the group.
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
	size := len(first.frame)
	if linger && q.cfg.Sync == SyncBatch && q.cfg.SyncInterval > 0 {
		t := time.NewTimer(q.cfg.SyncInterval)
		defer t.Stop()
		for size < maxGroupBytes {
			select {
			case r := <-q.reqs:
				group = append(group, r)
				size += len(r.frame)
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
			size += len(r.frame)
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
	frames := make([][]byte, 0, len(group))
	for {
		group = liveRequests(group)
		if len(group) == 0 {
			return
		}
		frames = frames[:0]
		var size int64
		for _, r := range group {
			frames = append(frames, r.frame)
			size += int64(len(r.frame))
		}
		if q.log.Size()+size > q.cfg.MaxSize {
			if !q.makeRoom(group) {
				return
			}
			continue
		}
		err := q.log.Append(frames)
		if err == nil {
			start := time.Now()
			err = q.log.Commit(q.cfg.Sync != SyncNever)
			if q.cfg.Sync != SyncNever {
				q.cfg.Events.Synced(time.Since(start))
			}
		}
		if err == nil {
			q.publish()
			reply(group, nil)
			return
		}
		if !isNoSpace(err) {
			q.cfg.Events.WriteFailed("io")
			q.cfg.Logger.Error("Disk queue write failed; the batch is refused and the pipeline may retry it", zap.Error(err))
			reply(group, err)
			return
		}
		q.cfg.Events.WriteFailed("enospc")
		q.cfg.Logger.Warn("Disk queue hit a full disk (ENOSPC); applying when_full", zap.Error(err))
		if !q.makeRoom(group) {
			return
		}
	}
}

// makeRoom applies when_full. It returns true when the group should be tried again and
// false when the group was answered (dropped or refused).
func (q *Queue) makeRoom(group []*request) bool {
	switch q.cfg.WhenFull {
	case DropNewest:
		q.cfg.Events.Dropped(ReasonFull, int64(len(group)))
		reply(group, ErrDropped)
		return false
	case DropOldest:
		if q.dropOldest() {
			return true
		}
		q.cfg.Events.Dropped(ReasonFull, int64(len(group)))
		reply(group, ErrDropped)
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
	}
	q.wakeCheckpointer()
	return true
}

func isNoSpace(err error) bool {
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
	var written wal.Position
	for {
		select {
		case <-t.C:
		case <-q.cpWake:
		case <-q.closing:
			return
		}
		written = q.checkpoint(written)
	}
}

func (q *Queue) checkpoint(written wal.Position) wal.Position {
	q.mu.Lock()
	acked := q.acked
	q.mu.Unlock()
	if acked == written {
		return written
	}
	if err := wal.WriteCheckpoint(q.cfg.FS, q.cfg.Dir, acked); err != nil {
		if isNoSpace(err) {
			q.cfg.Events.WriteFailed("enospc")
		} else {
			q.cfg.Events.WriteFailed("io")
		}
		q.cfg.Logger.Warn("Disk queue could not write its checkpoint; records may be sent again after a crash", zap.Error(err))
		return written
	}
	q.removeAcked(acked)
	return acked
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
				// Deleted by drop_oldest since nextRange looked; the position moved on.
				return &Batch{start: pos, end: pos}, nil
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
		if err == nil && !cutoff.IsZero() && ts.Before(cutoff) {
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
	crossed := false
	for len(q.inflight) > 0 && q.inflight[0].done {
		end := q.inflight[0].end
		q.inflight[0] = nil
		q.inflight = q.inflight[1:]
		if q.acked.Less(end) {
			crossed = crossed || end.Segment != q.acked.Segment
			q.acked = end
		}
	}
	q.mu.Unlock()
	if crossed {
		q.wakeCheckpointer()
	}
}

// Stats is a snapshot for the telemetry gauges.
type Stats struct {
	Size    int64     // bytes of all segments
	Records int64     // written and not yet acknowledged
	Oldest  time.Time // enqueue time of the oldest unacknowledged record; zero when empty
}

// Stats returns the current size, depth and oldest record time.
func (q *Queue) Stats() Stats {
	q.mu.Lock()
	st := Stats{Size: q.log.Size(), Records: int64(q.head.Seq) - int64(q.acked.Seq)}
	for _, b := range q.inflight {
		if !b.done && !b.Oldest.IsZero() {
			st.Oldest = b.Oldest
			break
		}
	}
	pos, head := q.readPos, q.head
	q.mu.Unlock()
	if st.Records > 0 && st.Oldest.IsZero() && pos.Less(head) {
		st.Oldest = q.peekTime(pos)
	}
	return st
}

// peekTime reads the enqueue time of the record at pos without consuming it.
func (q *Queue) peekTime(pos wal.Position) time.Time {
	f, err := q.cfg.FS.OpenFile(filepath.Join(q.cfg.Dir, wal.SegmentName(pos.Segment)), os.O_RDONLY, 0)
	if err != nil {
		return time.Time{}
	}
	defer f.Close()
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

// Close stops the writer after it wrote what callers already handed over, writes a final
// checkpoint and closes the files. Batches still in flight stay in the queue.
func (q *Queue) Close() error {
	q.closeOnce.Do(func() {
		close(q.closing)
		<-q.writerDone
		<-q.cpDone
		q.mu.Lock()
		q.closed = true
		q.cond.Broadcast()
		q.mu.Unlock()
		q.readMu.Lock()
		if q.rf != nil {
			_ = q.rf.Close()
			q.rf = nil
		}
		q.readMu.Unlock()
		q.checkpoint(wal.Position{Segment: ^uint64(0)})
		q.closeErr = q.log.Close(q.cfg.Sync != SyncNever)
		q.codec.close()
		if q.lock != nil {
			_ = q.lock.Close()
		}
	})
	return q.closeErr
}
