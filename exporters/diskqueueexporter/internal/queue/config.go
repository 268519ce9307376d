// Package queue is the durable FIFO of the diskqueue exporter: group-committed appends to a
// segmented WAL, batched reads for the senders, acknowledgements that advance an atomic
// checkpoint, and the max_size / when_full / max_age policies.
package queue // import "github.com/fieldcol/fieldcol/exporters/diskqueueexporter/internal/queue"

import (
	"time"

	"go.uber.org/zap"

	"github.com/fieldcol/fieldcol/exporters/diskqueueexporter/internal/wal"
)

// SyncPolicy says when appended data is fsynced.
type SyncPolicy int

const (
	// SyncBatch fsyncs once per group commit; callers return after that fsync.
	SyncBatch SyncPolicy = iota
	// SyncAlways fsyncs after every single append.
	SyncAlways
	// SyncNever leaves flushing to the kernel: survives a process crash, not a power loss.
	SyncNever
)

// FullPolicy says what an append does when the queue is at max_size or the disk is full.
type FullPolicy int

const (
	// Block waits for space, pushing back on the pipeline.
	Block FullPolicy = iota
	// DropOldest deletes the oldest segment to make room.
	DropOldest
	// DropNewest discards the batch being appended.
	DropNewest
)

// Compression of record payloads on disk.
type Compression int

const (
	// CompressionNone stores payloads as they are.
	CompressionNone Compression = iota
	// CompressionZstd stores payloads compressed with zstd.
	CompressionZstd
)

// Reason a record was dropped, as in the telemetry contract.
type Reason string

// Drop reasons counted by the queue itself.
const (
	ReasonFull    Reason = "full"
	ReasonCorrupt Reason = "corrupt"
	ReasonExpired Reason = "expired"
)

// Events receives what the queue counts; the exporter turns it into telemetry.
type Events interface {
	Dropped(reason Reason, records int64)
	WriteFailed(errorType string)
	Synced(d time.Duration)
}

// Config of a Queue.
type Config struct {
	Dir         string
	FS          wal.FS // nil means the real file system
	SegmentSize int64
	MaxSize     int64
	// MaxFreeShare (0 to 1; 0 is off) also caps the queue at this share of the space it
	// could use on its file system: what is free plus what it already holds.
	MaxFreeShare float64
	// FreeBytes measures the free space of a directory's file system; nil means statfs.
	FreeBytes    func(dir string) (int64, error)
	Sync         SyncPolicy
	SyncInterval time.Duration // how long a group commit waits for more appends
	WhenFull     FullPolicy
	MaxAge       time.Duration // 0 keeps records until sent
	Compression  Compression
	// CheckpointInterval bounds how much is sent again after a crash; acknowledgements
	// that complete a segment checkpoint at once so the segment can be deleted.
	CheckpointInterval time.Duration
	// FullRetryInterval is how often a writer blocked by ENOSPC tries again: space can come
	// back from outside (an operator cleaning up), which the queue cannot observe.
	FullRetryInterval time.Duration
	Logger            *zap.Logger
	Events            Events
	Now               func() time.Time
}

func (c *Config) setDefaults() {
	if c.FS == nil {
		c.FS = wal.OSFS{}
	}
	if c.FreeBytes == nil {
		c.FreeBytes = FreeBytes
	}
	if c.CheckpointInterval <= 0 {
		c.CheckpointInterval = time.Second
	}
	if c.FullRetryInterval <= 0 {
		c.FullRetryInterval = time.Second
	}
	if c.Logger == nil {
		c.Logger = zap.NewNop()
	}
	if c.Events == nil {
		c.Events = nopEvents{}
	}
	if c.Now == nil {
		c.Now = time.Now
	}
}

type nopEvents struct{}

func (nopEvents) Dropped(Reason, int64) {}
func (nopEvents) WriteFailed(string)    {}
func (nopEvents) Synced(time.Duration)  {}
