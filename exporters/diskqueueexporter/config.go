package diskqueueexporter

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/config/configgrpc"
	"go.opentelemetry.io/collector/config/confighttp"
	"go.opentelemetry.io/collector/config/configretry"

	"github.com/fieldcol/fieldcol/exporters/diskqueueexporter/internal/queue"
	"github.com/fieldcol/fieldcol/internal/validatecmd"
)

// Config of the diskqueue exporter.
type Config struct {
	// Directory holds one sub-directory per exporter id and signal.
	Directory string `mapstructure:"directory"`
	// MaxSize bounds the bytes of each signal's queue.
	MaxSize int64 `mapstructure:"max_size"`
	// MaxSizeFreeShare (0 to 1, 0 = off) also caps each signal's queue at this share of the
	// space it could use on its file system (free space plus what it already holds),
	// measured every second, so a queue on a shared partition gives space back to the rest.
	MaxSizeFreeShare float64 `mapstructure:"max_size_free_share"`
	// SegmentSize is the size at which a new segment file starts.
	SegmentSize int64 `mapstructure:"segment_size"`
	// Fsync is batch, always or never.
	Fsync FsyncMode `mapstructure:"fsync"`
	// FsyncInterval is how long a group commit waits for more batches (fsync: batch).
	FsyncInterval time.Duration `mapstructure:"fsync_interval"`
	// WhenFull is block, drop_oldest or drop_newest.
	WhenFull FullMode `mapstructure:"when_full"`
	// CheckpointInterval is how often the delivered position is fsynced: after a power cut
	// at most what was delivered in one interval is sent again. After a kill -9 only the
	// batches in flight are, whatever the interval: every delivered batch is recorded.
	CheckpointInterval time.Duration `mapstructure:"checkpoint_interval"`
	// MaxAge drops records older than this instead of sending them; 0 keeps them.
	MaxAge time.Duration `mapstructure:"max_age"`
	// DeviceEndurance is the bytes the storage is rated to take over its life (an SD card's
	// or eMMC's TBW); with it the exporter projects the card's remaining life. 0 is off.
	DeviceEndurance int64 `mapstructure:"device_endurance"`
	// Compression of records on disk: none or zstd.
	Compression Compression `mapstructure:"compression"`

	// Protocol is http or grpc; the matching block configures the client.
	Protocol Protocol                `mapstructure:"protocol"`
	HTTP     confighttp.ClientConfig `mapstructure:"http"`
	GRPC     configgrpc.ClientConfig `mapstructure:"grpc"`
	// RetryConfig shapes the wait between attempts; a retryable failure is retried until
	// it succeeds or the records pass max_age.
	RetryConfig configretry.BackOffConfig `mapstructure:"retry_on_failure"`
	// NumConsumers is the number of batches in flight per signal.
	NumConsumers int `mapstructure:"num_consumers"`
	// SendBatchMaxBytes caps the records merged into one export request.
	SendBatchMaxBytes int `mapstructure:"send_batch_max_bytes"`
	// Timeout of one export request.
	Timeout time.Duration `mapstructure:"timeout"`
}

var _ component.Config = (*Config)(nil)

// FsyncMode is the fsync key: when an appended batch is made durable.
type FsyncMode string

// Fsync modes.
const (
	FsyncBatch  FsyncMode = "batch"
	FsyncAlways FsyncMode = "always"
	FsyncNever  FsyncMode = "never"
)

var fsyncModes = map[FsyncMode]queue.SyncPolicy{FsyncBatch: queue.SyncBatch, FsyncAlways: queue.SyncAlways, FsyncNever: queue.SyncNever}

// UnmarshalText refuses an unknown mode while the configuration is decoded, so that the
// collector's error names the key.
func (m *FsyncMode) UnmarshalText(text []byte) error {
	return unmarshalEnum(m, text, fsyncModes, "batch, always or never")
}

// FullMode is the when_full key: what an append does when the queue is at max_size.
type FullMode string

// Full modes.
const (
	FullBlock      FullMode = "block"
	FullDropOldest FullMode = "drop_oldest"
	FullDropNewest FullMode = "drop_newest"
)

var fullModes = map[FullMode]queue.FullPolicy{FullBlock: queue.Block, FullDropOldest: queue.DropOldest, FullDropNewest: queue.DropNewest}

// UnmarshalText refuses an unknown mode while the configuration is decoded.
func (m *FullMode) UnmarshalText(text []byte) error {
	return unmarshalEnum(m, text, fullModes, "block, drop_oldest or drop_newest")
}

// Compression is the compression key: how records are stored on disk.
type Compression string

// Compressions.
const (
	CompressionNone Compression = "none"
	CompressionZstd Compression = "zstd"
)

var compressions = map[Compression]queue.Compression{CompressionNone: queue.CompressionNone, "": queue.CompressionNone, CompressionZstd: queue.CompressionZstd}

// UnmarshalText refuses an unknown compression while the configuration is decoded.
func (c *Compression) UnmarshalText(text []byte) error {
	return unmarshalEnum(c, text, compressions, "none or zstd")
}

// Protocol is the protocol key: how batches are sent.
type Protocol string

// Protocols.
const (
	ProtocolHTTP Protocol = "http"
	ProtocolGRPC Protocol = "grpc"
)

var protocols = map[Protocol]bool{ProtocolHTTP: true, ProtocolGRPC: true}

// UnmarshalText refuses an unknown protocol while the configuration is decoded.
func (p *Protocol) UnmarshalText(text []byte) error {
	return unmarshalEnum(p, text, protocols, "http or grpc")
}

// unmarshalEnum sets *v to text when text is one of the keys of known.
func unmarshalEnum[E ~string, V any](v *E, text []byte, known map[E]V, choices string) error {
	if _, ok := known[E(text)]; !ok {
		return fmt.Errorf("unknown value %q: use %s", string(text), choices)
	}
	*v = E(text)
	return nil
}

// checkEnum is the Validate side of unmarshalEnum, for a configuration built in code.
func checkEnum[E ~string, V any](key string, v E, known map[E]V, choices string) error {
	if _, ok := known[v]; !ok {
		return fmt.Errorf("%s must be %s, got %q", key, choices, string(v))
	}
	return nil
}

// Validate checks the configuration; every message names its key.
func (cfg *Config) Validate() error {
	var errs []error
	if cfg.Directory == "" {
		errs = append(errs, errors.New("directory must not be empty"))
	} else if err := checkDirectory(cfg.Directory); err != nil {
		errs = append(errs, err)
	} else if validatecmd.Running() && cfg.SegmentSize > 0 {
		if err := checkUsable(hostMachine, cfg.Directory, cfg.SegmentSize); err != nil {
			errs = append(errs, err)
		}
	}
	if cfg.SegmentSize <= 0 {
		errs = append(errs, fmt.Errorf("segment_size must be positive, got %d", cfg.SegmentSize))
	}
	if cfg.MaxSize < 2*cfg.SegmentSize {
		// Space is freed a segment at a time, so less than two would leave no room to write
		// while the oldest segment is still being sent.
		errs = append(errs, fmt.Errorf("max_size (%d) must be at least twice segment_size (%d)", cfg.MaxSize, cfg.SegmentSize))
	}
	if cfg.MaxSizeFreeShare < 0 || cfg.MaxSizeFreeShare > 1 {
		errs = append(errs, fmt.Errorf("max_size_free_share must be between 0 (off) and 1, got %g", cfg.MaxSizeFreeShare))
	}
	if err := checkEnum("fsync", cfg.Fsync, fsyncModes, "batch, always or never"); err != nil {
		errs = append(errs, err)
	}
	if cfg.FsyncInterval < 0 {
		errs = append(errs, fmt.Errorf("fsync_interval must not be negative, got %s", cfg.FsyncInterval))
	}
	if cfg.CheckpointInterval <= 0 {
		errs = append(errs, fmt.Errorf("checkpoint_interval must be positive, got %s", cfg.CheckpointInterval))
	}
	if err := checkEnum("when_full", cfg.WhenFull, fullModes, "block, drop_oldest or drop_newest"); err != nil {
		errs = append(errs, err)
	}
	if cfg.MaxAge < 0 {
		errs = append(errs, fmt.Errorf("max_age must not be negative, got %s", cfg.MaxAge))
	}
	if cfg.DeviceEndurance < 0 {
		errs = append(errs, fmt.Errorf("device_endurance must not be negative, got %d", cfg.DeviceEndurance))
	}
	if err := checkEnum("compression", cfg.Compression, compressions, "none or zstd"); err != nil {
		errs = append(errs, err)
	}
	if err := checkEnum("protocol", cfg.Protocol, protocols, "http or grpc"); err != nil {
		errs = append(errs, err)
	}
	if cfg.NumConsumers < 1 {
		errs = append(errs, fmt.Errorf("num_consumers must be at least 1, got %d", cfg.NumConsumers))
	}
	if cfg.SendBatchMaxBytes <= 0 {
		errs = append(errs, fmt.Errorf("send_batch_max_bytes must be positive, got %d", cfg.SendBatchMaxBytes))
	}
	if cfg.Timeout < 0 {
		errs = append(errs, fmt.Errorf("timeout must not be negative, got %s", cfg.Timeout))
	}
	return errors.Join(errs...)
}

// checkDirectory refuses a directory that can never be used whoever runs the collector: a
// path that is a file, or under one. It only looks (no mkdir): validate must not change the
// machine. What can change by itself (permissions, a read-only or full disk, a file that
// appears later) is left to Start, which runs degraded instead of failing; the validate
// subcommand alone reports it too (checkUsable).
func checkDirectory(dir string) error {
	for p := filepath.Clean(dir); ; p = filepath.Dir(p) {
		fi, err := os.Stat(p)
		switch {
		case err == nil && fi.IsDir():
			return nil
		case err == nil && p == filepath.Clean(dir):
			return fmt.Errorf("directory %q is a %s, not a directory: remove it or set directory to another path", dir, fileKind(fi))
		case err == nil:
			return fmt.Errorf("directory %q cannot be created: %q is a %s, not a directory", dir, p, fileKind(fi))
		case !errors.Is(err, fs.ErrNotExist) && !errors.Is(err, syscall.ENOTDIR):
			// Not knowable here (EACCES for the user who runs validate, an I/O error):
			// Start decides, and runs degraded if it must.
			return nil
		}
		if filepath.Dir(p) == p {
			return nil
		}
	}
}

func fileKind(fi fs.FileInfo) string {
	switch m := fi.Mode(); {
	case m.IsRegular():
		return "regular file"
	case m&fs.ModeDevice != 0:
		return "device"
	case m&fs.ModeNamedPipe != 0:
		return "named pipe"
	case m&fs.ModeSocket != 0:
		return "socket"
	}
	return "special file"
}

// endpoint is the configured endpoint of the chosen protocol; empty means hold mode.
func (cfg *Config) endpoint() string {
	if cfg.Protocol == ProtocolGRPC {
		return cfg.GRPC.Endpoint
	}
	return cfg.HTTP.Endpoint
}
