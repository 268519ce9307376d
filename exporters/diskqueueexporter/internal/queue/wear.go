package queue

import (
	"os"
	"sync/atomic"

	"github.com/fieldcol/fieldcol/exporters/diskqueueexporter/internal/wal"
)

// Wear is what the queue asked of its storage: the bytes it wrote (records with their
// framing, checkpoints, the delivered log) and its fsyncs of files and directories, against
// the bytes the pipeline handed it. Their ratio is the queue's own write amplification.
type Wear struct {
	Accepted int64 // payload bytes of the batches acknowledged to the pipeline
	Written  int64 // bytes the queue wrote to files
	Fsyncs   int64 // fsyncs of files and directories
}

// wearFS counts the writes and fsyncs that go through it.
type wearFS struct {
	wal.FS
	written, fsyncs atomic.Int64
}

func (w *wearFS) OpenFile(name string, flag int, perm os.FileMode) (wal.File, error) {
	f, err := w.FS.OpenFile(name, flag, perm)
	if err != nil {
		return nil, err
	}
	return &wearFile{File: f, fs: w}, nil
}

func (w *wearFS) SyncDir(name string) error {
	w.fsyncs.Add(1)
	return w.FS.SyncDir(name)
}

type wearFile struct {
	wal.File
	fs *wearFS
}

func (f *wearFile) Write(p []byte) (int, error) {
	n, err := f.File.Write(p)
	f.fs.written.Add(int64(n))
	return n, err
}

func (f *wearFile) Sync() error {
	f.fs.fsyncs.Add(1)
	return f.File.Sync()
}

// Wear returns the queue's counts since it was opened.
func (q *Queue) Wear() Wear {
	return Wear{Accepted: q.accepted.Load(), Written: q.wear.written.Load(), Fsyncs: q.wear.fsyncs.Load()}
}
