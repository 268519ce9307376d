package wal

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"

	"github.com/fieldcol/fieldcol/internal/durable"
)

// Position is a place in the log: the segment (by its first sequence number), the byte
// offset of a record boundary in it, and the sequence number of the record found there.
type Position struct {
	Segment uint64
	Offset  int64
	Seq     uint64
}

// Less orders positions by sequence number, then offset.
func (p Position) Less(o Position) bool {
	if p.Seq != o.Seq {
		return p.Seq < o.Seq
	}
	return p.Offset < o.Offset
}

const (
	checkpointName = "checkpoint"
	checkpointTmp  = "checkpoint.tmp"
	checkpointSize = 4 + 8 + 8 + 8 + 4
)

var checkpointMagic = [4]byte{'D', 'Q', 'C', '1'}

// ErrNoCheckpoint means the directory has no checkpoint yet.
var ErrNoCheckpoint = errors.New("wal: no checkpoint")

// ErrBadCheckpoint means the checkpoint file exists but cannot be trusted.
var ErrBadCheckpoint = errors.New("wal: checkpoint is corrupt")

// WriteCheckpoint stores p atomically: write a temporary file, fsync it, rename it over the
// old checkpoint and fsync the directory, so a crash leaves either the old or the new one.
func WriteCheckpoint(fsys FS, dir string, p Position) error {
	buf := encodePosition(checkpointMagic, p)
	if err := durable.WriteFile(fsys, filepath.Join(dir, checkpointName), filepath.Join(dir, checkpointTmp), buf[:], 0o600); err != nil {
		return fmt.Errorf("wal: writing checkpoint: %w", err)
	}
	return nil
}

// encodePosition frames p as one checkpoint-sized record: magic, the three fields, CRC32C.
func encodePosition(magic [4]byte, p Position) [checkpointSize]byte {
	var buf [checkpointSize]byte
	copy(buf[0:4], magic[:])
	binary.LittleEndian.PutUint64(buf[4:12], p.Segment)
	binary.LittleEndian.PutUint64(buf[12:20], uint64(p.Offset))
	binary.LittleEndian.PutUint64(buf[20:28], p.Seq)
	binary.LittleEndian.PutUint32(buf[28:32], crc32.Checksum(buf[:28], castagnoli))
	return buf
}

// decodePosition is the inverse of encodePosition; ok is false for a record with another
// magic, a bad checksum or an offset no segment can have.
func decodePosition(magic [4]byte, buf []byte) (p Position, ok bool) {
	if len(buf) < checkpointSize || [4]byte(buf[0:4]) != magic || crc32.Checksum(buf[:28], castagnoli) != binary.LittleEndian.Uint32(buf[28:32]) {
		return Position{}, false
	}
	p = Position{
		Segment: binary.LittleEndian.Uint64(buf[4:12]),
		Offset:  int64(binary.LittleEndian.Uint64(buf[12:20])),
		Seq:     binary.LittleEndian.Uint64(buf[20:28]),
	}
	return p, p.Offset >= 0
}

// ReadCheckpoint loads the checkpoint. It returns ErrNoCheckpoint when there is none and an
// error wrapping ErrBadCheckpoint when it is truncated or fails its checksum.
func ReadCheckpoint(fsys FS, dir string) (Position, error) {
	f, err := fsys.OpenFile(filepath.Join(dir, checkpointName), os.O_RDONLY, 0)
	if errors.Is(err, os.ErrNotExist) {
		return Position{}, ErrNoCheckpoint
	}
	if err != nil {
		return Position{}, fmt.Errorf("wal: opening checkpoint: %w", err)
	}
	defer func() { _ = f.Close() }() // read-only: a close error loses nothing
	var buf [checkpointSize]byte
	if _, err := io.ReadFull(f, buf[:]); err != nil {
		return Position{}, fmt.Errorf("%w: %v", ErrBadCheckpoint, err)
	}
	p, ok := decodePosition(checkpointMagic, buf[:])
	if !ok {
		return Position{}, fmt.Errorf("%w: bad magic or checksum", ErrBadCheckpoint)
	}
	return p, nil
}
