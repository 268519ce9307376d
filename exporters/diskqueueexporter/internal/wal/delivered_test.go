package wal

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestDeliveredLog(t *testing.T) {
	dir := t.TempDir()
	_, ok, err := ReadDelivered(OSFS{}, dir)
	require.NoError(t, err)
	assert.False(t, ok, "no log yet")

	d, err := OpenDelivered(OSFS{}, dir)
	require.NoError(t, err)
	p1 := Position{Segment: 0, Offset: 100, Seq: 3}
	p2 := Position{Segment: 7, Offset: 20, Seq: 8}
	require.NoError(t, d.Append(p1))
	require.NoError(t, d.Append(p2))
	got, ok, err := ReadDelivered(OSFS{}, dir)
	require.NoError(t, err)
	require.True(t, ok)
	assert.Equal(t, p2, got, "the furthest position wins")

	// A torn last append and garbage between records are skipped.
	path := filepath.Join(dir, deliveredName)
	data, err := os.ReadFile(path)
	require.NoError(t, err)
	torn := append(append([]byte{}, data[:checkpointSize]...), make([]byte, checkpointSize)...)
	torn = append(torn, data[checkpointSize:checkpointSize+10]...)
	require.NoError(t, os.WriteFile(path, torn, 0o600))
	got, ok, err = ReadDelivered(OSFS{}, dir)
	require.NoError(t, err)
	require.True(t, ok)
	assert.Equal(t, p1, got)

	require.NoError(t, d.Close())
	d, err = OpenDelivered(OSFS{}, dir)
	require.NoError(t, err)
	// Appends after a misaligned tail are padded back onto the record grid.
	require.NoError(t, d.Append(p2))
	got, ok, err = ReadDelivered(OSFS{}, dir)
	require.NoError(t, err)
	require.True(t, ok)
	assert.Equal(t, p2, got)

	require.NoError(t, d.Reset(true))
	assert.Zero(t, d.Size())
	_, ok, err = ReadDelivered(OSFS{}, dir)
	require.NoError(t, err)
	assert.False(t, ok, "an emptied log holds no position")
	require.NoError(t, d.Close())
}

// FuzzReadDelivered: any bytes decode in one pass to either nothing or a position that was
// encoded in them, and never panic.
func FuzzReadDelivered(f *testing.F) {
	a := encodePosition(deliveredMagic, Position{Segment: 1, Offset: 2, Seq: 3})
	b := encodePosition(deliveredMagic, Position{Segment: 4, Offset: 5, Seq: 6})
	c := encodePosition(checkpointMagic, Position{Segment: 9, Offset: 9, Seq: 9})
	f.Add(append(a[:], b[:]...))
	f.Add(append(b[:], a[:10]...))
	f.Add(c[:])
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		p, ok := furthestDelivered(data)
		if !ok {
			return
		}
		require.GreaterOrEqual(t, p.Offset, int64(0))
		enc := encodePosition(deliveredMagic, p)
		found := false
		for off := 0; off+checkpointSize <= len(data); off += checkpointSize {
			if string(data[off:off+checkpointSize]) == string(enc[:]) {
				found = true
			}
			if q, ok := decodePosition(deliveredMagic, data[off:off+checkpointSize]); ok {
				require.False(t, p.Less(q), "a record further than the one returned")
			}
		}
		require.True(t, found, "the position returned is one of the records")
	})
}

// FuzzDecodeCheckpoint: the checkpoint decoder accepts exactly what the encoder writes.
func FuzzDecodeCheckpoint(f *testing.F) {
	a := encodePosition(checkpointMagic, Position{Segment: 1, Offset: 2, Seq: 3})
	f.Add(a[:])
	f.Add(a[:5])
	f.Add(make([]byte, checkpointSize))
	f.Fuzz(func(t *testing.T, data []byte) {
		p, ok := decodePosition(checkpointMagic, data)
		if !ok {
			return
		}
		enc := encodePosition(checkpointMagic, p)
		require.Equal(t, enc[:], data[:checkpointSize], "only an encoder's output decodes")
	})
}
