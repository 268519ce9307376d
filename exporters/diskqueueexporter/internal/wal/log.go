package wal

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"

	"github.com/fieldcol/fieldcol/internal/durable"
)

// Options tune a Log.
type Options struct {
	// SegmentSize is the size after which the log starts a new segment. A single group
	// larger than this still goes into one segment.
	SegmentSize int64
	// SyncOnRotate fsyncs a segment before sealing it and the directory after creating the
	// next one, so sealed segments never need validating on open. Off only for fsync: never.
	SyncOnRotate bool
	// FirstSeq numbers the first record of an empty directory (the last checkpoint's
	// sequence number keeps numbering monotonic after every segment was deleted).
	FirstSeq uint64
}

// Repair reports what Open cut off the tail segment.
type Repair struct {
	Segment      uint64
	Offset       int64 // the segment now ends here
	DroppedBytes int64
	Err          error // the *CorruptionError that was found
}

// WriteError is a failed append, sync or rotation. The log has been rolled back to its
// last committed state, so the caller may retry or give up without corrupting anything.
type WriteError struct {
	Op  string
	Err error
}

func (e *WriteError) Error() string { return fmt.Sprintf("wal: %s: %v", e.Op, e.Err) }
func (e *WriteError) Unwrap() error { return e.Err }

// ErrNotSealed is returned by Remove for a segment that is gone or still being written.
var ErrNotSealed = errors.New("wal: not a sealed segment")

// Log is the append side of a segmented write-ahead log. Append and Commit must be called
// from a single goroutine; Segments and Remove may be called from others.
type Log struct {
	fsys FS
	dir  string
	opts Options

	mu   sync.Mutex
	segs []Segment // oldest first; the last is the one being written; Size is committed bytes

	cur         File
	curFirst    uint64 // name of cur
	curSize     int64  // bytes written to cur, committed or not
	nextSeq     uint64
	markSize    int64 // committed size of cur
	markSeq     uint64
	forceRotate bool // cur has bytes past markSize that could not be truncated
}

// Open opens or creates the log in dir. Only the last segment is validated: sealed
// segments were synced before the next one was created. A torn or corrupt tail is truncated
// to its last good record and reported in the returned Repair (nil when the tail was clean).
func Open(fsys FS, dir string, opts Options) (*Log, *Repair, error) {
	if opts.SegmentSize <= 0 {
		return nil, nil, errors.New("wal: segment size must be positive")
	}
	if err := durable.MkdirAll(fsys, dir, 0o750); err != nil {
		return nil, nil, fmt.Errorf("wal: creating %s: %w", dir, err)
	}
	// A leftover temporary checkpoint is from a crash during WriteCheckpoint; the real
	// checkpoint is intact, so it is only litter.
	if err := fsys.Remove(filepath.Join(dir, checkpointTmp)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, nil, fmt.Errorf("wal: removing stale temporary checkpoint: %w", err)
	}
	segs, err := ListSegments(fsys, dir)
	if err != nil {
		return nil, nil, err
	}
	l := &Log{fsys: fsys, dir: dir, opts: opts}
	if len(segs) == 0 {
		if err := l.create(opts.FirstSeq); err != nil {
			return nil, nil, err
		}
		return l, nil, nil
	}
	last := segs[len(segs)-1]
	count, size, repair, err := scanTail(fsys, dir, last)
	if err != nil {
		return nil, nil, err
	}
	f, err := fsys.OpenFile(filepath.Join(dir, SegmentName(last.First)), os.O_WRONLY|os.O_APPEND, 0o640)
	if err != nil {
		return nil, nil, fmt.Errorf("wal: opening tail segment: %w", err)
	}
	if repair != nil {
		if err := f.Truncate(size); err != nil {
			_ = f.Close()
			return nil, nil, fmt.Errorf("wal: truncating corrupt tail of %s: %w", SegmentName(last.First), err)
		}
		if err := f.Sync(); err != nil {
			_ = f.Close()
			return nil, nil, fmt.Errorf("wal: syncing repaired tail of %s: %w", SegmentName(last.First), err)
		}
	}
	segs[len(segs)-1].Size = size
	l.segs = segs
	l.cur, l.curFirst = f, last.First
	l.curSize, l.markSize = size, size
	l.nextSeq = last.First + count
	l.markSeq = l.nextSeq
	return l, repair, nil
}

// scanTail reads every record of the tail segment and returns how many are intact and the
// size they take; a corruption becomes a Repair rather than an error.
func scanTail(fsys FS, dir string, seg Segment) (count uint64, size int64, repair *Repair, err error) {
	f, err := fsys.OpenFile(filepath.Join(dir, SegmentName(seg.First)), os.O_RDONLY, 0)
	if err != nil {
		return 0, 0, nil, fmt.Errorf("wal: opening tail segment: %w", err)
	}
	defer func() { _ = f.Close() }() // read-only: a close error loses nothing
	r := NewSegmentReader(f, seg.First, 0, seg.Size)
	for r.Next() {
		count++
	}
	var ce *CorruptionError
	switch err := r.Err(); {
	case err == nil:
		return count, r.Offset(), nil, nil
	case errors.As(err, &ce):
		return count, ce.Offset, &Repair{Segment: seg.First, Offset: ce.Offset, DroppedBytes: seg.Size - ce.Offset, Err: ce}, nil
	default:
		return 0, 0, nil, err
	}
}

func (l *Log) create(first uint64) error {
	f, err := l.fsys.OpenFile(filepath.Join(l.dir, SegmentName(first)), os.O_WRONLY|os.O_CREATE|os.O_APPEND|os.O_EXCL, 0o640)
	if err != nil {
		return &WriteError{Op: "creating segment", Err: err}
	}
	if l.opts.SyncOnRotate {
		if err := l.fsys.SyncDir(l.dir); err != nil {
			_ = f.Close()
			_ = l.fsys.Remove(filepath.Join(l.dir, SegmentName(first)))
			return &WriteError{Op: "syncing directory", Err: err}
		}
	}
	l.mu.Lock()
	l.segs = append(l.segs, Segment{First: first})
	l.mu.Unlock()
	l.cur, l.curFirst = f, first
	l.curSize, l.markSize = 0, 0
	l.nextSeq, l.markSeq = first, first
	l.forceRotate = false
	return nil
}

// rotate seals the current segment and starts the next. On failure the current segment
// stays the one being written.
func (l *Log) rotate() error {
	if l.opts.SyncOnRotate {
		if err := l.cur.Sync(); err != nil {
			return &WriteError{Op: "syncing segment before rotation", Err: err}
		}
	}
	old := l.cur
	if err := l.create(l.nextSeq); err != nil {
		return err
	}
	// The data is synced (or the policy does not care); a close error loses nothing.
	_ = old.Close()
	return nil
}

// Append writes records at the end of the log, starting a new segment first when the
// current one would overflow. bufs are the framed records' bytes in order (a record may span
// several buffers: header, then payload parts) and records is how many records they hold.
// It does not sync. Each buffer is its own write so nothing is copied into one big buffer;
// on error the log is rolled back to its state before the call, so a group is all or
// nothing.
func (l *Log) Append(bufs [][]byte, records int) error {
	var size int64
	for _, f := range bufs {
		size += int64(len(f))
	}
	if l.forceRotate {
		// A truncate that failed once may work now; if not, the stray bytes are sealed
		// off in this segment, which needs a committed record to be sealable (the next
		// segment is named after the next sequence number, which is this one's name).
		l.rollback(l.markSize)
		if l.forceRotate && l.markSeq == l.curFirst {
			return &WriteError{Op: "removing the bytes of a failed write", Err: errStrayBytes}
		}
	}
	if l.forceRotate || (l.curSize > 0 && l.curSize+size > l.opts.SegmentSize) {
		if err := l.rotate(); err != nil {
			return err
		}
	}
	for _, f := range bufs {
		if _, err := l.cur.Write(f); err != nil {
			l.rollback(l.curSize)
			return &WriteError{Op: "writing records", Err: err}
		}
	}
	l.curSize += size
	l.nextSeq += uint64(records)
	return nil
}

// Commit makes everything appended so far the committed state, after an fsync when sync is
// set. A failed fsync leaves the page cache in an unknown state, so the uncommitted bytes
// are truncated away and the caller must write them again.
func (l *Log) Commit(sync bool) error {
	if sync {
		if err := l.cur.Sync(); err != nil {
			l.rollback(l.markSize)
			l.nextSeq = l.markSeq
			return &WriteError{Op: "syncing segment", Err: err}
		}
	}
	l.markSize, l.markSeq = l.curSize, l.nextSeq
	l.mu.Lock()
	l.segs[len(l.segs)-1].Size = l.markSize
	l.mu.Unlock()
	return nil
}

// rollback cuts the current segment back to size. If even that fails the stray bytes stay
// past the committed size, which readers never cross, and the segment is sealed at the next
// append so nothing is ever written after them.
func (l *Log) rollback(size int64) {
	if err := l.cur.Truncate(size); err != nil {
		l.forceRotate = true
		return
	}
	l.curSize = size
	l.forceRotate = false
}

var errStrayBytes = errors.New("the segment holds bytes of a failed write that cannot be truncated")

// Head is the position just past the last committed record.
func (l *Log) Head() Position {
	l.mu.Lock()
	defer l.mu.Unlock()
	last := l.segs[len(l.segs)-1]
	return Position{Segment: last.First, Offset: last.Size, Seq: l.markSeq}
}

// Segments returns a copy of the segment list with committed sizes.
func (l *Log) Segments() []Segment {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]Segment(nil), l.segs...)
}

// Size is the committed size of all segments.
func (l *Log) Size() int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	var n int64
	for _, s := range l.segs {
		n += s.Size
	}
	return n
}

// Remove deletes the sealed segment named by first. The segment being written is never
// removed.
func (l *Log) Remove(first uint64) error {
	l.mu.Lock()
	idx := -1
	for i, s := range l.segs {
		if s.First == first {
			idx = i
			break
		}
	}
	if idx < 0 || idx == len(l.segs)-1 {
		l.mu.Unlock()
		return fmt.Errorf("%w: %s", ErrNotSealed, SegmentName(first))
	}
	l.segs = append(l.segs[:idx:idx], l.segs[idx+1:]...)
	l.mu.Unlock()
	if err := l.fsys.Remove(filepath.Join(l.dir, SegmentName(first))); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("wal: removing segment %s: %w", SegmentName(first), err)
	}
	return nil
}

// SealCurrent starts a new segment when the current one holds committed data, so that
// everything written so far becomes removable.
func (l *Log) SealCurrent() error {
	if l.markSeq == l.curFirst {
		// Nothing committed here: sealing would create a segment with the same name.
		return nil
	}
	return l.rotate()
}

// Dir is the directory of the log.
func (l *Log) Dir() string { return l.dir }

// FS is the file layer of the log.
func (l *Log) FS() FS { return l.fsys }

// Close syncs (when asked) and closes the segment being written.
func (l *Log) Close(sync bool) error {
	if l.cur == nil {
		return nil
	}
	var err error
	if sync {
		err = l.cur.Sync()
	}
	return errors.Join(err, l.cur.Close())
}
