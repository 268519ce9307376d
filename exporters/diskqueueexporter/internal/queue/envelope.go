package queue

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/klauspost/compress/zstd"

	"github.com/fieldcol/fieldcol/exporters/diskqueueexporter/internal/wal"
)

// Every WAL record carries a small envelope in front of the caller's bytes: a flags byte
// (bit 0: zstd) and the enqueue time (unix nanoseconds), which drives max_age and the
// oldest-record age without any index.
const envelopeSize = 1 + 8

const flagZstd = 1

var errShortEnvelope = errors.New("queue: record shorter than its envelope")

type codec struct {
	enc *zstd.Encoder
	dec *zstd.Decoder
}

func newCodec(c Compression) (*codec, error) {
	dec, err := zstd.NewReader(nil, zstd.WithDecoderConcurrency(0))
	if err != nil {
		return nil, fmt.Errorf("queue: creating zstd decoder: %w", err)
	}
	cd := &codec{dec: dec}
	if c == CompressionZstd {
		cd.enc, err = zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedFastest), zstd.WithEncoderConcurrency(1))
		if err != nil {
			dec.Close()
			return nil, fmt.Errorf("queue: creating zstd encoder: %w", err)
		}
	}
	return cd, nil
}

func (c *codec) close() {
	c.dec.Close()
	if c.enc != nil {
		_ = c.enc.Close()
	}
}

// frame builds an on-disk record as two buffers: the frame header with the envelope, and
// the payload. Without compression the payload is data itself: it is written as it is,
// never copied.
func (c *codec) frame(data []byte, now time.Time) (prefix, payload []byte, err error) {
	prefix = make([]byte, wal.HeaderSize+envelopeSize)
	payload = data
	if c.enc != nil {
		prefix[wal.HeaderSize] = flagZstd
		// EncodeAll is safe for concurrent use, so callers compress in parallel.
		payload = c.enc.EncodeAll(data, make([]byte, 0, len(data)/2))
	}
	binary.LittleEndian.PutUint64(prefix[wal.HeaderSize+1:], uint64(now.UnixNano()))
	return prefix, payload, wal.SealHeader(prefix[:wal.HeaderSize], prefix[wal.HeaderSize:], payload)
}

// recordTime reads the enqueue time of an encoded record. A time before clockFloor is
// returned as zero: a Pi has no real-time clock and runs in 1970 until NTP answers, and
// records stamped then must neither expire at once under max_age nor report a 56-year age.
func recordTime(rec []byte) (time.Time, error) {
	if len(rec) < envelopeSize {
		return time.Time{}, errShortEnvelope
	}
	ts := time.Unix(0, int64(binary.LittleEndian.Uint64(rec[1:9])))
	if ts.Before(clockFloor) {
		return time.Time{}, nil
	}
	return ts, nil
}

// clockFloor is a date every synchronized clock is past.
var clockFloor = time.Date(2024, time.January, 1, 0, 0, 0, 0, time.UTC)

// decode appends the caller's bytes of an encoded record to dst.
func (c *codec) decode(dst, rec []byte) ([]byte, error) {
	if len(rec) < envelopeSize {
		return dst, errShortEnvelope
	}
	body := rec[envelopeSize:]
	if rec[0]&flagZstd != 0 {
		out, err := c.dec.DecodeAll(body, dst)
		if err != nil {
			return dst, fmt.Errorf("queue: decompressing record: %w", err)
		}
		return out, nil
	}
	return append(dst, body...), nil
}
