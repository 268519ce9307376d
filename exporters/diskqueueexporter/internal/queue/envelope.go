package queue

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/klauspost/compress/zstd"
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

// encode builds the envelope and payload of one record.
func (c *codec) encode(data []byte, now time.Time) []byte {
	var flags byte
	size := envelopeSize + len(data)
	if c.enc != nil {
		flags = flagZstd
		size = envelopeSize + len(data)/2
	}
	out := make([]byte, envelopeSize, size)
	out[0] = flags
	binary.LittleEndian.PutUint64(out[1:9], uint64(now.UnixNano()))
	if c.enc != nil {
		// EncodeAll is safe for concurrent use, so callers compress in parallel.
		return c.enc.EncodeAll(data, out)
	}
	return append(out, data...)
}

// recordTime reads the enqueue time of an encoded record.
func recordTime(rec []byte) (time.Time, error) {
	if len(rec) < envelopeSize {
		return time.Time{}, errShortEnvelope
	}
	return time.Unix(0, int64(binary.LittleEndian.Uint64(rec[1:9]))), nil
}

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
