package telemetry

import (
	"context"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
)

// Release is what RecordRelease reports: the running version and configuration hash, the
// ones the release file held before (empty on the first start), and the changes it has
// counted, this one included.
type Release struct {
	Version, ConfigHash         string
	PrevVersion, PrevConfigHash string
	Changes                     uint64
	// Changed: this start runs another version or configuration than the last one did
	// (or is the first).
	Changed bool
}

// RecordRelease sets controlloop.release.info to 1 with the version and config hash as
// attributes, sets controlloop.release.changes to the persisted count (so that it grows
// across restarts, as controlloop.restarts does) and, when Changed, logs the event
// controlloop.release. It is called once per start.
func (t *Telemetry) RecordRelease(r Release) {
	ctx := context.Background()
	t.tel.ReleaseInfo.Add(ctx, 1, metric.WithAttributes(
		attribute.String("version", r.Version), attribute.String("config_hash", r.ConfigHash)))
	t.tel.ReleaseChanges.Add(ctx, int64(r.Changes)) //nolint:gosec // a count of changes
	if !r.Changed {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	lr, ok := t.newLog()
	if !ok {
		return
	}
	now := pcommon.NewTimestampFromTime(time.Now())
	lr.SetTimestamp(now)
	lr.SetObservedTimestamp(now)
	lr.SetSeverityNumber(plog.SeverityNumberInfo)
	lr.SetSeverityText(sevText(plog.SeverityNumberInfo))
	lr.SetEventName("controlloop.release")
	lr.Body().SetStr(ReleaseBody(r))
	a := lr.Attributes()
	a.PutStr("event.name", "controlloop.release")
	a.PutStr("version", r.Version)
	a.PutStr("config_hash", r.ConfigHash)
	a.PutStr("previous.version", r.PrevVersion)
	a.PutStr("previous.config_hash", r.PrevConfigHash)
}

// ReleaseBody says what changed, for the log record and the collector's own log line.
func ReleaseBody(r Release) string {
	switch {
	case r.PrevVersion == "" && r.PrevConfigHash == "":
		return "release: first start with version " + r.Version + ", config " + r.ConfigHash
	case r.PrevVersion != r.Version && r.PrevConfigHash != r.ConfigHash:
		return "release: version " + r.PrevVersion + " -> " + r.Version + ", config " + r.PrevConfigHash + " -> " + r.ConfigHash
	case r.PrevVersion != r.Version:
		return "release: version " + r.PrevVersion + " -> " + r.Version + " (config " + r.ConfigHash + " unchanged)"
	default:
		return "release: config " + r.PrevConfigHash + " -> " + r.ConfigHash + " (version " + r.Version + " unchanged)"
	}
}
