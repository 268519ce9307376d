package diskqueueexporter

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/confmap"
	"go.opentelemetry.io/collector/confmap/confmaptest"

	"github.com/fieldcol/fieldcol/exporters/diskqueueexporter/internal/metadata"
)

func TestLoadConfig(t *testing.T) {
	cm, err := confmaptest.LoadConf(filepath.Join("testdata", "config.yaml"))
	require.NoError(t, err)

	full := createDefaultConfig().(*Config)
	full.Directory = "/var/lib/fieldcol/dq"
	full.MaxSize = 256 << 20
	full.MaxSizeFreeShare = 0.5
	full.SegmentSize = 8 << 20
	full.Fsync = "always"
	full.FsyncInterval = 5 * time.Millisecond
	full.CheckpointInterval = 250 * time.Millisecond
	full.WhenFull = "drop_oldest"
	full.MaxAge = 24 * time.Hour
	full.Compression = "zstd"
	full.DeviceEndurance = 10 << 40
	full.Protocol = "grpc"
	full.GRPC.Endpoint = "gateway.example.com:4317"
	full.GRPC.TLS.Insecure = true
	full.NumConsumers = 2
	full.SendBatchMaxBytes = 1 << 20
	full.Timeout = 10 * time.Second

	tests := []struct {
		name    string
		want    *Config
		wantErr string
	}{
		{name: "", want: createDefaultConfig().(*Config)},
		{name: "full", want: full},
		{name: "bad_fsync", wantErr: `'fsync' unknown value "sometimes": use batch, always or never`},
		{name: "bad_when_full", wantErr: `'when_full' unknown value "wait": use block, drop_oldest or drop_newest`},
		{name: "bad_sizes", wantErr: "max_size (1000) must be at least twice segment_size (1000)"},
		{name: "bad_protocol", wantErr: `'protocol' unknown value "udp": use http or grpc`},
		{name: "bad_compression", wantErr: `'compression' unknown value "lz4": use none or zstd`},
		{name: "no_directory", wantErr: "directory must not be empty"},
		{name: "bad_consumers", wantErr: "num_consumers must be at least 1, got 0"},
		{name: "bad_endurance", wantErr: "device_endurance must not be negative, got -1"},
		{name: "bad_free_share", wantErr: "max_size_free_share must be between 0 (off) and 1, got 1.5"},
		{name: "bad_checkpoint_interval", wantErr: "checkpoint_interval must be positive, got 0s"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := createDefaultConfig()
			sub, err := cm.Sub(component.NewIDWithName(metadata.Type, tt.name).String())
			require.NoError(t, err)
			err = sub.Unmarshal(cfg)
			if err == nil {
				err = confmap.Validate(cfg)
			}
			if tt.wantErr != "" {
				require.Error(t, err)
				assert.Contains(t, err.Error(), tt.wantErr)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, cfg)
		})
	}
}

// A configuration built in code is not decoded: Validate checks the enum-like keys too.
func TestValidateChecksEnumsOfAConfigBuiltInCode(t *testing.T) {
	cfg := createDefaultConfig().(*Config)
	cfg.Directory = t.TempDir()
	cfg.Fsync, cfg.WhenFull, cfg.Compression, cfg.Protocol = "sometimes", "wait", "lz4", "udp"
	err := cfg.Validate()
	require.Error(t, err)
	for _, want := range []string{
		`fsync must be batch, always or never, got "sometimes"`, `when_full must be block, drop_oldest or drop_newest, got "wait"`,
		`compression must be none or zstd, got "lz4"`, `protocol must be http or grpc, got "udp"`,
	} {
		assert.Contains(t, err.Error(), want)
	}
}

// TestValidateRefusesADirectoryThatIsAFile: what can never work whoever runs the collector
// is refused by validate, naming the key; what only this user or this moment cannot use is
// left to Start (degraded). Validate only looks: it creates nothing.
func TestValidateRefusesADirectoryThatIsAFile(t *testing.T) {
	base := t.TempDir()
	file := filepath.Join(base, "file")
	require.NoError(t, os.WriteFile(file, []byte("x"), 0o600))
	tests := []struct {
		name, dir, wantErr string
	}{
		{name: "existing directory", dir: base},
		{name: "missing directory under an existing one", dir: filepath.Join(base, "a", "b")},
		{name: "relative missing directory", dir: "testdata/does-not-exist/queue"},
		{name: "directory is a regular file", dir: file, wantErr: fmt.Sprintf("directory %q is a regular file, not a directory", file)},
		{name: "parent is a regular file", dir: filepath.Join(file, "queue"), wantErr: fmt.Sprintf("directory %q cannot be created: %q is a regular file", filepath.Join(file, "queue"), file)},
		{name: "ancestor is a regular file", dir: filepath.Join(file, "a", "b"), wantErr: fmt.Sprintf("%q is a regular file", file)},
		{name: "device", dir: os.DevNull, wantErr: `directory "/dev/null" is a device, not a directory`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := createDefaultConfig().(*Config)
			cfg.Directory = tt.dir
			err := cfg.Validate()
			if tt.wantErr == "" {
				require.NoError(t, err)
			} else {
				require.ErrorContains(t, err, tt.wantErr)
				assert.True(t, strings.HasPrefix(err.Error(), "directory "), "the message starts with the key: %v", err)
			}
			_, statErr := os.Stat(filepath.Join(base, "a"))
			assert.ErrorIs(t, statErr, fs.ErrNotExist, "validate must not create directories")
		})
	}
}
