package queue

import (
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/fieldcol/fieldcol/exporters/diskqueueexporter/internal/wal"
	"github.com/fieldcol/fieldcol/internal/durable"
)

// ErrClosed is returned by Append and Read once the queue is closed.
var ErrClosed = errors.New("queue: closed")

// ErrFull is returned by Append when the batch was not stored because the queue is at
// max_size or the disk is full and when_full leaves nothing of the queue's own to drop
// (drop_newest, or drop_oldest with no data of its own left). The batch is the caller's
// to retry or to drop: it was never acknowledged.
var ErrFull = errors.New("queue: full, and when_full leaves nothing of its own to drop: the batch was not stored; retry later")

// ErrTooLarge is returned by Append for a batch that could never fit in max_size.
var ErrTooLarge = errors.New("queue: batch larger than max_size")

// ErrLocked is returned by Open when another process or exporter holds the directory's lock.
var ErrLocked = errors.New("queue: directory is used by another process or exporter")

// maxGroupBytes bounds one group commit so a burst never holds every caller for one
// enormous write.
const maxGroupBytes = 4 << 20

type request struct {
	prefix    []byte // frame header and envelope
	payload   []byte // written right after prefix
	size      int    // len(prefix) + len(payload)
	raw       int    // the caller's bytes, before compression
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
	diskFull   bool          // the last write hit ENOSPC; owned by the writer goroutine

	wear        *wearFS      // counts what the queue writes and fsyncs
	accepted    atomic.Int64 // payload bytes acknowledged to the pipeline
	limit       atomic.Int64 // effective max_size (see refreshCapacity)
	free        atomic.Int64 // free bytes of the file system at the last measurement; -1 unknown
	freeUnknown bool         // the last measurement failed; owned by refreshCapacity's callers

	mu       sync.Mutex
	cond     *sync.Cond
	head     wal.Position // end of committed data
	readPos  wal.Position // next record to hand out
	acked    wal.Position // everything before this was acknowledged
	inflight []*Batch
	closed   bool

	checkpointed *wal.Position // last position stored; nil until the first write

	markMu      sync.Mutex        // serializes the delivered log
	delivered   *wal.DeliveredLog // nil once closed
	marked      wal.Position      // furthest position appended to delivered
	markFailing bool              // the last append failed; logged once per episode

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
	wear := &wearFS{FS: cfg.FS}
	real := isOSFS(cfg.FS)
	cfg.FS = wear
	if err := durable.MkdirAll(cfg.FS, cfg.Dir, 0o750); err != nil {
		return nil, fmt.Errorf("queue: creating directory %s: %w", cfg.Dir, err)
	}
	var lock *os.File
	if real {
		var err error
		if lock, err = lockDir(cfg.Dir); err != nil {
			return nil, err
		}
	}
	q, err := open(cfg, lock, wear)
	if err != nil && lock != nil {
		_ = lock.Close()
	}
	return q, err
}

func isOSFS(fsys wal.FS) bool {
	_, ok := fsys.(wal.OSFS)
	return ok
}

func open(cfg Config, lock *os.File, wear *wearFS) (*Queue, error) {
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
	// The delivered log is usually ahead of the checkpoint: it was appended after every
	// acknowledged batch, the checkpoint only every checkpoint interval.
	from, haveFrom := cp, cpErr == nil
	dp, haveDP, err := wal.ReadDelivered(cfg.FS, cfg.Dir)
	if err != nil {
		cfg.Logger.Warn("Disk queue could not read its delivered log; resuming from the checkpoint", zap.String("directory", cfg.Dir), zap.Error(err))
	}
	if haveDP && (!haveFrom || from.Less(dp)) {
		from, haveFrom = dp, true
	}
	l, repair, err := wal.Open(cfg.FS, cfg.Dir, wal.Options{SegmentSize: cfg.SegmentSize, SyncOnRotate: cfg.Sync != SyncNever, FirstSeq: from.Seq})
	if err != nil {
		return nil, err
	}
	if repair != nil {
		cfg.Logger.Warn("Disk queue tail was torn or corrupt and has been truncated; the records in it were never acknowledged to the pipeline",
			zap.String("segment", wal.SegmentName(repair.Segment)), zap.Int64("offset", repair.Offset),
			zap.Int64("dropped_bytes", repair.DroppedBytes), zap.Error(repair.Err))
		cfg.Events.Dropped(ReasonCorrupt, 1)
	}
	delivered, err := wal.OpenDelivered(cfg.FS, cfg.Dir)
	if err != nil {
		_ = l.Close(false)
		return nil, err
	}
	cd, err := newCodec(cfg.Compression)
	if err != nil {
		_ = delivered.Close()
		_ = l.Close(false)
		return nil, err
	}
	q := &Queue{
		cfg:        cfg,
		log:        l,
		codec:      cd,
		lock:       lock,
		wear:       wear,
		delivered:  delivered,
		reqs:       make(chan *request, 1024),
		closing:    make(chan struct{}),
		writerDone: make(chan struct{}),
		cpWake:     make(chan struct{}, 1),
		cpDone:     make(chan struct{}),
		space:      make(chan struct{}, 1),
		sr:         wal.NewSegmentReader(nil, 0, 0, 0),
	}
	q.cond = sync.NewCond(&q.mu)
	q.free.Store(-1)
	q.limit.Store(cfg.MaxSize)
	q.refreshCapacity()
	q.head = l.Head()
	q.readPos = resume(l.Segments(), q.head, from, haveFrom)
	q.acked = q.readPos
	q.marked = q.readPos
	resumed := q.readPos
	// The old positions go before anything new is acknowledged, durably: one ahead of a
	// truncated tail would skip the records that come to fill that range.
	if delivered.Size() > 0 {
		if err := delivered.Reset(true); err != nil {
			_ = q.closeFiles()
			return nil, err
		}
	}
	// A checkpoint is written at once unless the stored one already says where we resumed
	// (or there is none and we resumed from the oldest segment, as a missing one would).
	// A checkpoint ahead of a truncated tail must be rewritten at once too: once new
	// records fill the truncated range its offset would no longer be a record boundary.
	if (cpErr == nil && resumed == cp) || (errors.Is(cpErr, wal.ErrNoCheckpoint) && !haveDP) {
		q.checkpointed = &resumed
	} else {
		q.checkpoint()
	}
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

// Stats is a snapshot for the telemetry gauges.
type Stats struct {
	Size    int64     // bytes of all segments
	Records int64     // written and not yet acknowledged
	Oldest  time.Time // enqueue time of the oldest unacknowledged record; zero when empty
	Limit   int64     // the effective max_size in bytes
	FSFree  int64     // bytes free on the file system at the last measurement; -1 unknown
}

// Stats returns the current size, depth, oldest record time and capacity.
func (q *Queue) Stats() Stats {
	q.mu.Lock()
	st := Stats{Size: q.log.Size(), Records: int64(q.head.Seq) - int64(q.acked.Seq), Limit: q.limit.Load(), FSFree: q.free.Load()}
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
		q.checkpoint()
		q.closeErr = q.closeFiles()
	})
	return q.closeErr
}

// closeFiles closes the log, the delivered log and the lock.
func (q *Queue) closeFiles() error {
	err := q.log.Close(q.cfg.Sync != SyncNever)
	q.markMu.Lock()
	if q.delivered != nil {
		err = errors.Join(err, q.delivered.Close())
		q.delivered = nil
	}
	q.markMu.Unlock()
	q.codec.close()
	if q.lock != nil {
		_ = q.lock.Close()
	}
	return err
}
