package wal

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func frames(t testing.TB, payloads ...string) []byte {
	t.Helper()
	var buf []byte
	for _, p := range payloads {
		var err error
		buf, err = AppendFrame(buf, []byte(p))
		require.NoError(t, err)
	}
	return buf
}

func readAll(t *testing.T, data []byte) ([]string, int64, error) {
	t.Helper()
	r := NewSegmentReader(bytes.NewReader(data), 7, 0, int64(len(data)))
	var got []string
	for r.Next() {
		got = append(got, string(r.Record()))
	}
	return got, r.Offset(), r.Err()
}

func TestSegmentReader(t *testing.T) {
	good := frames(t, "alpha", "beta", "gamma")
	firstTwo := FrameSize(len("alpha")) + FrameSize(len("beta"))
	flip := func(b []byte, i int) []byte {
		c := bytes.Clone(b)
		c[i] ^= 0x40
		return c
	}
	tests := []struct {
		name       string
		data       []byte
		want       []string
		wantReason error
		wantOffset int64
	}{
		{name: "clean", data: good, want: []string{"alpha", "beta", "gamma"}, wantOffset: int64(len(good))},
		{name: "empty", data: nil, wantOffset: 0},
		{name: "torn payload", data: good[:len(good)-2], want: []string{"alpha", "beta"}, wantReason: ErrTorn, wantOffset: firstTwo},
		{name: "torn header", data: good[:firstTwo+3], want: []string{"alpha", "beta"}, wantReason: ErrTorn, wantOffset: firstTwo},
		{name: "bad crc in payload", data: flip(good, int(firstTwo)+HeaderSize+1), want: []string{"alpha", "beta"}, wantReason: ErrChecksum, wantOffset: firstTwo},
		{name: "bad length", data: flip(good, int(firstTwo)), want: []string{"alpha", "beta"}, wantReason: ErrTorn, wantOffset: firstTwo},
		{name: "zero fill after records", data: append(bytes.Clone(good), make([]byte, 64)...), want: []string{"alpha", "beta", "gamma"}, wantReason: ErrLength, wantOffset: int64(len(good))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, off, err := readAll(t, tt.data)
			assert.Equal(t, tt.want, got)
			if tt.wantReason == nil {
				require.NoError(t, err)
			} else {
				var ce *CorruptionError
				require.ErrorAs(t, err, &ce)
				assert.ErrorIs(t, err, tt.wantReason)
				assert.Equal(t, uint64(7), ce.Segment)
				assert.Equal(t, tt.wantOffset, ce.Offset)
				assert.Contains(t, err.Error(), SegmentName(7))
			}
			assert.Equal(t, tt.wantOffset, off)
		})
	}
}

func TestAppendFrameRejectsEmptyAndHuge(t *testing.T) {
	_, err := AppendFrame(nil, nil)
	require.ErrorIs(t, err, ErrRecordTooLarge)
	require.ErrorIs(t, SealFrame(make([]byte, HeaderSize)), ErrRecordTooLarge)
}

func TestSealFrameMatchesAppendFrame(t *testing.T) {
	in := append(make([]byte, HeaderSize), "payload"...)
	require.NoError(t, SealFrame(in))
	assert.Equal(t, frames(t, "payload"), in)
	hdr := make([]byte, HeaderSize)
	require.NoError(t, SealHeader(hdr, []byte("pay"), []byte("load")))
	assert.Equal(t, frames(t, "payload")[:HeaderSize], hdr)
}

func openLog(t *testing.T, dir string, segSize int64) (*Log, *Repair) {
	t.Helper()
	l, rep, err := Open(OSFS{}, dir, Options{SegmentSize: segSize, SyncOnRotate: true})
	require.NoError(t, err)
	return l, rep
}

func appendRecords(t *testing.T, l *Log, payloads ...string) {
	t.Helper()
	for _, p := range payloads {
		require.NoError(t, l.Append([][]byte{frames(t, p)}, 1))
		require.NoError(t, l.Commit(true))
	}
}

func TestLogRotationAndReopen(t *testing.T) {
	dir := t.TempDir()
	l, rep := openLog(t, dir, 40)
	require.Nil(t, rep)
	for i := range 10 {
		appendRecords(t, l, fmt.Sprintf("record-%02d", i))
	}
	segs := l.Segments()
	require.Greater(t, len(segs), 3, "small segments must rotate")
	assert.Equal(t, uint64(0), segs[0].First)
	head := l.Head()
	assert.Equal(t, uint64(10), head.Seq)
	require.NoError(t, l.Close(true))

	l2, rep := openLog(t, dir, 40)
	require.Nil(t, rep)
	assert.Equal(t, head, l2.Head())
	appendRecords(t, l2, "after")
	assert.Equal(t, uint64(11), l2.Head().Seq)
	require.NoError(t, l2.Close(true))
}

func TestOpenRepairsTail(t *testing.T) {
	tests := []struct {
		name    string
		damage  func(t *testing.T, path string, size int64)
		wantSeq uint64
	}{
		{name: "torn tail", wantSeq: 2, damage: func(t *testing.T, path string, size int64) {
			require.NoError(t, os.Truncate(path, size-3))
		}},
		{name: "bad crc at tail", wantSeq: 2, damage: func(t *testing.T, path string, size int64) {
			f, err := os.OpenFile(path, os.O_RDWR, 0)
			require.NoError(t, err)
			_, err = f.WriteAt([]byte{0xff}, size-1)
			require.NoError(t, err)
			require.NoError(t, f.Close())
		}},
		{name: "garbage appended", wantSeq: 3, damage: func(t *testing.T, path string, _ int64) {
			f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
			require.NoError(t, err)
			_, err = f.Write([]byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10})
			require.NoError(t, err)
			require.NoError(t, f.Close())
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			l, _ := openLog(t, dir, 1<<20)
			appendRecords(t, l, "one", "two", "three")
			size := l.Head().Offset
			require.NoError(t, l.Close(true))
			path := filepath.Join(dir, SegmentName(0))
			tt.damage(t, path, size)

			l2, rep := openLog(t, dir, 1<<20)
			require.NotNil(t, rep)
			var ce *CorruptionError
			require.ErrorAs(t, rep.Err, &ce)
			assert.Equal(t, tt.wantSeq, l2.Head().Seq)
			info, err := os.Stat(path)
			require.NoError(t, err)
			assert.Equal(t, rep.Offset, info.Size(), "the tail is truncated to the last good record")
			assert.Positive(t, rep.DroppedBytes)
			// Writing resumes cleanly after the repair, and a second open finds nothing to fix.
			appendRecords(t, l2, "four")
			require.NoError(t, l2.Close(true))
			l3, rep := openLog(t, dir, 1<<20)
			assert.Nil(t, rep)
			assert.Equal(t, tt.wantSeq+1, l3.Head().Seq)
			require.NoError(t, l3.Close(true))
		})
	}
}

func TestCheckpoint(t *testing.T) {
	dir := t.TempDir()
	_, err := ReadCheckpoint(OSFS{}, dir)
	require.ErrorIs(t, err, ErrNoCheckpoint)

	want := Position{Segment: 42, Offset: 1234, Seq: 57}
	require.NoError(t, WriteCheckpoint(OSFS{}, dir, want))
	got, err := ReadCheckpoint(OSFS{}, dir)
	require.NoError(t, err)
	assert.Equal(t, want, got)
	assert.NoFileExists(t, filepath.Join(dir, checkpointTmp))

	path := filepath.Join(dir, checkpointName)
	data, err := os.ReadFile(path)
	require.NoError(t, err)
	data[10] ^= 1
	require.NoError(t, os.WriteFile(path, data, 0o600))
	_, err = ReadCheckpoint(OSFS{}, dir)
	require.ErrorIs(t, err, ErrBadCheckpoint)

	require.NoError(t, os.WriteFile(path, data[:5], 0o600))
	_, err = ReadCheckpoint(OSFS{}, dir)
	require.ErrorIs(t, err, ErrBadCheckpoint)
}

func TestOpenRemovesLeftoverTemporaryCheckpoint(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, checkpointTmp), []byte("half"), 0o600))
	l, _ := openLog(t, dir, 1024)
	require.NoError(t, l.Close(false))
	assert.NoFileExists(t, filepath.Join(dir, checkpointTmp))
}

func TestRemoveNeverDeletesTheSegmentBeingWritten(t *testing.T) {
	dir := t.TempDir()
	l, _ := openLog(t, dir, 1024)
	appendRecords(t, l, "x")
	require.ErrorIs(t, l.Remove(0), ErrNotSealed)
	require.NoError(t, l.SealCurrent())
	require.NoError(t, l.Remove(0))
	assert.NoFileExists(t, filepath.Join(dir, SegmentName(0)))
	assert.Equal(t, []Segment{{First: 1}}, l.Segments())
	require.NoError(t, l.Close(false))
}

func TestWriteErrorRollsBack(t *testing.T) {
	dir := t.TempDir()
	ffs := &failingFS{FS: OSFS{}}
	l, _, err := Open(ffs, dir, Options{SegmentSize: 1 << 20, SyncOnRotate: true})
	require.NoError(t, err)
	appendRecords(t, l, "kept")
	before := l.Head()

	ffs.failWrite = errors.New("injected")
	err = l.Append([][]byte{frames(t, "lost")}, 1)
	var we *WriteError
	require.ErrorAs(t, err, &we)
	ffs.failWrite = nil
	info, err := os.Stat(filepath.Join(dir, SegmentName(0)))
	require.NoError(t, err)
	assert.Equal(t, before.Offset, info.Size(), "a failed write leaves no partial record behind")

	require.NoError(t, l.Append([][]byte{frames(t, "next")}, 1))
	ffs.failSync = errors.New("injected")
	require.Error(t, l.Commit(true))
	ffs.failSync = nil
	assert.Equal(t, before, l.Head(), "a failed fsync rolls back to the last committed record")
	require.NoError(t, l.Close(false))

	l2, rep, err := Open(OSFS{}, dir, Options{SegmentSize: 1 << 20})
	require.NoError(t, err)
	assert.Nil(t, rep)
	assert.Equal(t, before, l2.Head())
	require.NoError(t, l2.Close(false))
}

// failingFS fails writes or syncs of segment files on demand; it writes half of the data
// before failing, as a real ENOSPC can.
type failingFS struct {
	FS
	failWrite    error
	failSync     error
	failTruncate error
}

func (f *failingFS) OpenFile(name string, flag int, perm os.FileMode) (File, error) {
	file, err := f.FS.OpenFile(name, flag, perm)
	if err != nil {
		return nil, err
	}
	return &failingFile{File: file, fs: f}, nil
}

type failingFile struct {
	File
	fs *failingFS
}

func (f *failingFile) Write(p []byte) (int, error) {
	if f.fs.failWrite != nil {
		n, _ := f.File.Write(p[:len(p)/2])
		return n, f.fs.failWrite
	}
	return f.File.Write(p)
}

func (f *failingFile) Truncate(size int64) error {
	if f.fs.failTruncate != nil {
		return f.fs.failTruncate
	}
	return f.File.Truncate(size)
}

func (f *failingFile) Sync() error {
	if f.fs.failSync != nil {
		return f.fs.failSync
	}
	return f.File.Sync()
}

func TestStrayBytesAfterAFailedTruncateAreNeverRead(t *testing.T) {
	for _, committedFirst := range []bool{true, false} {
		t.Run(fmt.Sprintf("committed=%t", committedFirst), func(t *testing.T) {
			dir := t.TempDir()
			ffs := &failingFS{FS: OSFS{}}
			l, _, err := Open(ffs, dir, Options{SegmentSize: 1 << 20, SyncOnRotate: true})
			require.NoError(t, err)
			if committedFirst {
				appendRecords(t, l, "kept")
			}
			ffs.failWrite, ffs.failTruncate = errors.New("injected"), errors.New("injected")
			require.Error(t, l.Append([][]byte{frames(t, "torn")}, 1))
			ffs.failWrite = nil
			if !committedFirst {
				// Nothing to seal off: the log refuses until the truncate works again.
				require.ErrorIs(t, l.Append([][]byte{frames(t, "next")}, 1), errStrayBytes)
				ffs.failTruncate = nil
			}
			appendRecords(t, l, "next")
			ffs.failTruncate = nil
			require.NoError(t, l.Close(true))

			l2, rep, err := Open(OSFS{}, dir, Options{SegmentSize: 1 << 20})
			require.NoError(t, err)
			assert.Nil(t, rep, "the stray bytes are sealed off in an older segment, never in the tail")
			segs := l2.Segments()
			var got []string
			for _, s := range segs {
				f, err := os.Open(filepath.Join(dir, SegmentName(s.First)))
				require.NoError(t, err)
				r := NewSegmentReader(f, s.First, 0, s.Size)
				for r.Next() {
					got = append(got, string(r.Record()))
				}
				if s.First != segs[len(segs)-1].First {
					// After a restart the stray bytes read as a corrupt end of a sealed
					// segment, which the queue skips, losing nothing: the successor's
					// name says no record is missing.
					var ce *CorruptionError
					require.ErrorAs(t, r.Err(), &ce)
					assert.Equal(t, FrameSize(len("kept")), ce.Offset)
				} else {
					require.NoError(t, r.Err())
				}
				require.NoError(t, f.Close())
			}
			if committedFirst {
				assert.Equal(t, []string{"kept", "next"}, got)
			} else {
				assert.Equal(t, []string{"next"}, got)
			}
			require.NoError(t, l2.Close(false))
		})
	}
}

func FuzzSegmentReader(f *testing.F) {
	f.Add(frames(f, "alpha", "beta"))
	f.Add(frames(f, "x")[:5])
	f.Add([]byte{})
	f.Add(make([]byte, 32))
	f.Add(append(frames(f, "ok"), 0xff, 0xff, 0xff, 0x7f, 1, 2, 3, 4))
	f.Fuzz(func(t *testing.T, data []byte) {
		r := NewSegmentReader(bytes.NewReader(data), 1, 0, int64(len(data)))
		var end int64
		for r.Next() {
			require.NotEmpty(t, r.Record())
			require.LessOrEqual(t, r.Offset(), int64(len(data)))
			end = r.Offset()
		}
		err := r.Err()
		if err == nil {
			require.Equal(t, int64(len(data)), end)
			return
		}
		var ce *CorruptionError
		require.ErrorAs(t, err, &ce)
		require.Equal(t, end, ce.Offset, "corruption is reported at the end of the last good record")
		// Re-framing the good prefix must reproduce it byte for byte.
		var again []byte
		r2 := NewSegmentReader(bytes.NewReader(data[:end]), 1, 0, end)
		for r2.Next() {
			again, _ = AppendFrame(again, r2.Record())
		}
		require.NoError(t, r2.Err())
		require.True(t, bytes.Equal(data[:end], again), "re-framed prefix differs")
	})
}
