package wal

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
)

// HeaderSize is the size of a record's frame header: payload length (uint32 LE) then the
// CRC32C (Castagnoli) of the length bytes and the payload (uint32 LE). Covering the length
// with the checksum means a torn or bit-flipped length is caught before it is trusted.
const HeaderSize = 8

// MaxRecordSize bounds a single record so that a corrupt length can never make a reader
// allocate gigabytes.
const MaxRecordSize = 256 << 20

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// ErrRecordTooLarge is returned by AppendFrame for payloads above MaxRecordSize.
var ErrRecordTooLarge = errors.New("wal: record larger than the maximum record size")

// FrameSize is the number of bytes a payload of n bytes takes on disk.
func FrameSize(n int) int64 { return int64(HeaderSize + n) }

// AppendFrame appends the framed payload to dst.
func AppendFrame(dst, payload []byte) ([]byte, error) {
	if len(payload) == 0 || len(payload) > MaxRecordSize {
		return dst, fmt.Errorf("%w: %d bytes", ErrRecordTooLarge, len(payload))
	}
	var hdr [HeaderSize]byte
	binary.LittleEndian.PutUint32(hdr[0:4], uint32(len(payload)))
	crc := crc32.Update(0, castagnoli, hdr[0:4])
	crc = crc32.Update(crc, castagnoli, payload)
	binary.LittleEndian.PutUint32(hdr[4:8], crc)
	dst = append(dst, hdr[:]...)
	return append(dst, payload...), nil
}

// SealFrame fills in the header of frame, whose first HeaderSize bytes were reserved and
// whose rest is the payload.
func SealFrame(frame []byte) error {
	if len(frame) < HeaderSize {
		return fmt.Errorf("%w: no room for the header", ErrRecordTooLarge)
	}
	return SealHeader(frame[:HeaderSize], frame[HeaderSize:])
}

// SealHeader fills in hdr (HeaderSize bytes) for a payload given in parts, which are
// written right after it. Writing the parts as they are saves copying every payload into
// one buffer.
func SealHeader(hdr []byte, parts ...[]byte) error {
	n := 0
	for _, p := range parts {
		n += len(p)
	}
	if n == 0 || n > MaxRecordSize || len(hdr) != HeaderSize {
		return fmt.Errorf("%w: %d bytes", ErrRecordTooLarge, n)
	}
	binary.LittleEndian.PutUint32(hdr[0:4], uint32(n))
	crc := crc32.Update(0, castagnoli, hdr[0:4])
	for _, p := range parts {
		crc = crc32.Update(crc, castagnoli, p)
	}
	binary.LittleEndian.PutUint32(hdr[4:8], crc)
	return nil
}

// CorruptionError says where a segment stops being readable. Offset is the start of the
// first bad record: everything before it is intact.
type CorruptionError struct {
	Segment uint64 // first sequence number of the segment (its name)
	Offset  int64
	Err     error
}

func (e *CorruptionError) Error() string {
	return fmt.Sprintf("wal: corruption in segment %s at offset %d: %v", SegmentName(e.Segment), e.Offset, e.Err)
}

func (e *CorruptionError) Unwrap() error { return e.Err }

// Reasons a record cannot be read, wrapped by CorruptionError.
var (
	ErrTorn     = errors.New("torn record (segment ends inside it)")
	ErrChecksum = errors.New("checksum mismatch")
	ErrLength   = errors.New("invalid record length")
)

// SegmentReader reads the records of one segment sequentially.
type SegmentReader struct {
	r       *bufio.Reader
	segment uint64
	offset  int64 // offset of the next record
	limit   int64 // bytes of the segment that may be read
	buf     []byte
	rec     []byte
	err     error
}

// NewSegmentReader reads records of the segment named by first from r, which is positioned
// at offset start; it never reads past limit (the segment's committed size).
func NewSegmentReader(r io.Reader, first uint64, start, limit int64) *SegmentReader {
	return &SegmentReader{r: bufio.NewReaderSize(r, 256<<10), segment: first, offset: start, limit: limit}
}

// Reset reuses the reader (and its buffers) for another range.
func (s *SegmentReader) Reset(r io.Reader, first uint64, start, limit int64) {
	s.r.Reset(r)
	s.segment, s.offset, s.limit = first, start, limit
	s.rec, s.err = nil, nil
}

// Next reads the next record. It returns false at the end of the readable range or on
// corruption; Err tells them apart.
func (s *SegmentReader) Next() bool {
	if s.err != nil || s.offset >= s.limit {
		return false
	}
	remaining := s.limit - s.offset
	if remaining < HeaderSize {
		s.fail(ErrTorn)
		return false
	}
	var hdr [HeaderSize]byte
	if _, err := io.ReadFull(s.r, hdr[:]); err != nil {
		s.failIO(err)
		return false
	}
	n := int64(binary.LittleEndian.Uint32(hdr[0:4]))
	if n == 0 || n > MaxRecordSize {
		s.fail(fmt.Errorf("%w: %d", ErrLength, n))
		return false
	}
	if n > remaining-HeaderSize {
		s.fail(ErrTorn)
		return false
	}
	if int64(cap(s.buf)) < n {
		s.buf = make([]byte, n)
	}
	s.buf = s.buf[:n]
	if _, err := io.ReadFull(s.r, s.buf); err != nil {
		s.failIO(err)
		return false
	}
	crc := crc32.Update(0, castagnoli, hdr[0:4])
	crc = crc32.Update(crc, castagnoli, s.buf)
	if crc != binary.LittleEndian.Uint32(hdr[4:8]) {
		s.fail(ErrChecksum)
		return false
	}
	s.rec = s.buf
	s.offset += HeaderSize + n
	return true
}

func (s *SegmentReader) fail(reason error) {
	s.err = &CorruptionError{Segment: s.segment, Offset: s.offset, Err: reason}
}

// failIO reports a file shorter than its limit as a torn record and passes real I/O errors on.
func (s *SegmentReader) failIO(err error) {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		s.fail(ErrTorn)
		return
	}
	s.err = fmt.Errorf("wal: reading segment %s at offset %d: %w", SegmentName(s.segment), s.offset, err)
}

// Record is the payload read by the last successful Next; it is valid until the next call.
func (s *SegmentReader) Record() []byte { return s.rec }

// Offset is the offset just past the last record read.
func (s *SegmentReader) Offset() int64 { return s.offset }

// Err is nil after a clean end, a *CorruptionError for bad data, or an I/O error.
func (s *SegmentReader) Err() error { return s.err }
