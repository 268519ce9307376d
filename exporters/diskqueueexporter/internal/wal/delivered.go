package wal

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// deliveredName is the file of positions acknowledged since the last checkpoint.
const deliveredName = "delivered"

var deliveredMagic = [4]byte{'D', 'Q', 'D', '1'}

// maxDeliveredRead bounds what ReadDelivered reads: the queue resets the file at every
// checkpoint and long before it reaches this size, so more can only be foreign bytes.
const maxDeliveredRead = 1 << 20

// DeliveredLog records the acknowledged position after every delivered batch, cheaply: one
// small append and no fsync. What is in the page cache survives a kill -9, so a restart
// after one resends only the batches that were in flight. A power cut can take the appends
// with it; the fsynced checkpoint (every checkpoint interval) bounds the resend then.
//
// Appends only, never an overwrite in place: a torn or lost append leaves the records
// before it readable, and each record carries its own checksum.
type DeliveredLog struct {
	fsys FS
	dir  string
	f    File
	size int64
}

// OpenDelivered opens (creating if needed) the delivered log of dir for appending.
func OpenDelivered(fsys FS, dir string) (*DeliveredLog, error) {
	f, err := fsys.OpenFile(filepath.Join(dir, deliveredName), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("wal: opening the delivered log: %w", err)
	}
	info, err := f.Stat()
	if err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("wal: stat of the delivered log: %w", err)
	}
	return &DeliveredLog{fsys: fsys, dir: dir, f: f, size: info.Size()}, nil
}

// Append records p. It does not fsync. Records stay aligned to their size: the bytes of a
// failed, partial append are cut off, or padded over when that fails too.
func (d *DeliveredLog) Append(p Position) error {
	var rec [2 * checkpointSize]byte
	pad := int((checkpointSize - d.size%checkpointSize) % checkpointSize)
	enc := encodePosition(deliveredMagic, p)
	copy(rec[pad:], enc[:])
	before := d.size
	n, err := d.f.Write(rec[:pad+checkpointSize])
	d.size += int64(n)
	if err != nil {
		if n > 0 && d.f.Truncate(before) == nil {
			d.size = before
		}
		return fmt.Errorf("wal: appending to the delivered log: %w", err)
	}
	return nil
}

// Size is the bytes the log holds.
func (d *DeliveredLog) Size() int64 { return d.size }

// Reset empties the log once a checkpoint covers every position in it; with sync the
// emptying is made durable, for a caller that must not see the old positions again.
func (d *DeliveredLog) Reset(sync bool) error {
	if err := d.f.Truncate(0); err != nil {
		return fmt.Errorf("wal: emptying the delivered log: %w", err)
	}
	d.size = 0
	if sync {
		if err := d.f.Sync(); err != nil {
			return fmt.Errorf("wal: syncing the emptied delivered log: %w", err)
		}
	}
	return nil
}

// Close closes the file.
func (d *DeliveredLog) Close() error { return d.f.Close() }

// ReadDelivered returns the furthest position in dir's delivered log; ok is false when the
// log is missing, empty or holds no intact record. Torn, stale and foreign bytes are
// skipped: every intact record is a position that was acknowledged once, so the furthest
// is the best one to resume from.
func ReadDelivered(fsys FS, dir string) (Position, bool, error) {
	f, err := fsys.OpenFile(filepath.Join(dir, deliveredName), os.O_RDONLY, 0)
	if errors.Is(err, os.ErrNotExist) {
		return Position{}, false, nil
	}
	if err != nil {
		return Position{}, false, fmt.Errorf("wal: opening the delivered log: %w", err)
	}
	defer func() { _ = f.Close() }() // read-only: a close error loses nothing
	data, err := io.ReadAll(io.LimitReader(f, maxDeliveredRead))
	if err != nil {
		return Position{}, false, fmt.Errorf("wal: reading the delivered log: %w", err)
	}
	p, ok := furthestDelivered(data)
	return p, ok, nil
}

// furthestDelivered decodes the records of a delivered log, in one pass.
func furthestDelivered(data []byte) (best Position, found bool) {
	for off := 0; off+checkpointSize <= len(data); off += checkpointSize {
		if p, ok := decodePosition(deliveredMagic, data[off:off+checkpointSize]); ok && (!found || best.Less(p)) {
			best, found = p, true
		}
	}
	return best, found
}
