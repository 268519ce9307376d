package controlloop

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"go.opentelemetry.io/collector/extension/extensioncapabilities"
	"go.uber.org/zap"

	"github.com/fieldcol/fieldcol/controlloop/internal/telemetry"
	"github.com/fieldcol/fieldcol/internal/durable"
)

var _ extensioncapabilities.ConfigSnapshotWatcher = (*controlLoop)(nil)

// releaseFileName is the release file, next to the latch file: the version and config hash
// of the last start, which fieldcol-backup also reads (deploy/backup).
const releaseFileName = "release.json"

// releaseState is the content of the release file.
type releaseState struct {
	Version    string    `json:"version"`
	ConfigHash string    `json:"config_hash"`
	Changes    uint64    `json:"changes"`
	Since      time.Time `json:"since"`
}

// ConfigHash is the first 12 hex digits of the SHA-256 of conf, encoded canonically: JSON
// with the keys of every map sorted (encoding/json sorts them), so that the same
// configuration hashes the same whatever order its files or map iteration gave it. Only the
// hash leaves the process, never a value of the configuration.
func ConfigHash(conf map[string]any) (string, error) {
	b, err := json.Marshal(conf)
	if err != nil {
		return "", fmt.Errorf("encoding the configuration: %w", err)
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])[:12], nil
}

func (e *controlLoop) releaseFile() string {
	return filepath.Join(filepath.Dir(e.cfg.LatchFile), releaseFileName)
}

// NotifyConfigSnapshot receives the effective configuration after Start (at each start of
// the service, so at a config reload too). It compares version and config hash with the
// release file; on a change (or the first start) it counts it, rewrites the file and logs
// one controlloop.release event. The info series carries both in any case.
func (e *controlLoop) NotifyConfigSnapshot(_ context.Context, snap extensioncapabilities.ConfigSnapshot) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if !e.started || e.tel == nil || e.releaseSeen {
		return nil
	}
	conf := snap.Effective()
	if conf == nil {
		return nil
	}
	hash, err := ConfigHash(conf.ToStringMap())
	if err != nil {
		// Markers are telemetry: the loops keep running without them.
		e.log.Warn("release markers: cannot hash the configuration", zap.Error(err))
		return nil
	}
	e.releaseSeen = true
	r, err := updateRelease(e.releaseFile(), e.set.BuildInfo.Version, hash, time.Now())
	if err != nil {
		e.log.Warn("release markers: cannot update the release file; a change may be reported again at the next start", zap.String("path", e.releaseFile()), zap.Error(err))
	}
	if r.Changed {
		e.log.Info(telemetry.ReleaseBody(r), zap.String("event.name", "controlloop.release"),
			zap.String("version", r.Version), zap.String("config_hash", r.ConfigHash),
			zap.String("previous.version", r.PrevVersion), zap.String("previous.config_hash", r.PrevConfigHash),
			zap.Uint64("changes", r.Changes))
	}
	e.tel.RecordRelease(r)
	return nil
}

// updateRelease compares version and hash with the release file at path and, when they
// differ or the file is missing, counts a change and replaces the file atomically.
func updateRelease(path, version, hash string, now time.Time) (telemetry.Release, error) {
	r := telemetry.Release{Version: version, ConfigHash: hash}
	var st releaseState
	b, err := os.ReadFile(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return r, err
	default:
		if jerr := json.Unmarshal(b, &st); jerr != nil {
			// A damaged file counts as none: one change too many, never one missed.
			st = releaseState{}
		}
	}
	r.PrevVersion, r.PrevConfigHash, r.Changes = st.Version, st.ConfigHash, st.Changes
	if st.Version == version && st.ConfigHash == hash {
		return r, nil
	}
	r.Changed = true
	r.Changes++
	out, err := json.Marshal(releaseState{Version: version, ConfigHash: hash, Changes: r.Changes, Since: now.UTC()})
	if err != nil {
		return r, err
	}
	tmp := filepath.Join(filepath.Dir(path), "."+releaseFileName+".tmp-release")
	return r, durable.WriteFile(durable.OS{}, path, tmp, append(out, '\n'), 0o644)
}
