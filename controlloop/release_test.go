package controlloop

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/confmap"
	"go.opentelemetry.io/collector/extension/extensioncapabilities"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/pmetric"
)

func TestConfigHashCanonical(t *testing.T) {
	a := map[string]any{}
	a["receivers"] = map[string]any{"otlp": map[string]any{"endpoint": "localhost:4317", "tls": nil}}
	a["exporters"] = map[string]any{"debug": map[string]any{}, "otlp": map[string]any{"endpoint": "gw:4317", "headers": map[string]any{"x": "1", "a": "2"}}}
	a["service"] = map[string]any{"pipelines": map[string]any{"metrics": map[string]any{"receivers": []any{"otlp"}, "exporters": []any{"otlp", "debug"}}}}
	// The same configuration, every map filled in the other order, and through confmap as
	// the collector hands it over.
	b := map[string]any{}
	b["service"] = map[string]any{"pipelines": map[string]any{"metrics": map[string]any{"exporters": []any{"otlp", "debug"}, "receivers": []any{"otlp"}}}}
	b["exporters"] = map[string]any{"otlp": map[string]any{"headers": map[string]any{"a": "2", "x": "1"}, "endpoint": "gw:4317"}, "debug": map[string]any{}}
	b["receivers"] = map[string]any{"otlp": map[string]any{"tls": nil, "endpoint": "localhost:4317"}}
	ha, err := ConfigHash(a)
	require.NoError(t, err)
	hb, err := ConfigHash(confmap.NewFromStringMap(b).ToStringMap())
	require.NoError(t, err)
	assert.Equal(t, ha, hb)
	assert.Regexp(t, `^[0-9a-f]{12}$`, ha)
	for i := 0; i < 20; i++ {
		h, _ := ConfigHash(confmap.NewFromStringMap(a).ToStringMap())
		require.Equal(t, ha, h)
	}

	// One value changed, or two list elements swapped (order matters in a pipeline): another hash.
	b["exporters"].(map[string]any)["otlp"].(map[string]any)["endpoint"] = "gw:4318"
	hc, _ := ConfigHash(b)
	assert.NotEqual(t, ha, hc)
	a["service"].(map[string]any)["pipelines"].(map[string]any)["metrics"].(map[string]any)["exporters"] = []any{"debug", "otlp"}
	hd, _ := ConfigHash(a)
	assert.NotEqual(t, ha, hd)
}

// releaseRun starts the extension with version, hands it conf as the collector does after
// Start (twice: a repeated notification reports nothing more), and returns the
// controlloop.release events, the release.changes count and the release.info attributes.
func releaseRun(t *testing.T, latch, version string, conf map[string]any) (events []plog.LogRecord, changes int64, info map[string]any) {
	t.Helper()
	set := settings()
	set.BuildInfo.Version = version
	s := startWith(t, plantConfig(t, latch), nil, set)
	snap := extensioncapabilities.NewConfigSnapshot(confmap.NewFromStringMap(conf), nil)
	require.NoError(t, s.ext.NotifyConfigSnapshot(context.Background(), snap))
	require.NoError(t, s.ext.NotifyConfigSnapshot(context.Background(), snap))

	ld := plog.NewLogs()
	s.ext.DrainLogs(ld)
	for i := 0; i < ld.ResourceLogs().Len(); i++ {
		for j := 0; j < ld.ResourceLogs().At(i).ScopeLogs().Len(); j++ {
			lrs := ld.ResourceLogs().At(i).ScopeLogs().At(j).LogRecords()
			for k := 0; k < lrs.Len(); k++ {
				if lrs.At(k).EventName() == "controlloop.release" {
					events = append(events, lrs.At(k))
				}
			}
		}
	}
	ms := pmetric.NewMetrics()
	require.NoError(t, s.ext.CollectMetrics(ms))
	var infos int
	sms := ms.ResourceMetrics().At(0).ScopeMetrics()
	for i := 0; i < sms.Len(); i++ {
		for j := 0; j < sms.At(i).Metrics().Len(); j++ {
			m := sms.At(i).Metrics().At(j)
			switch m.Name() {
			case "controlloop.release.changes":
				require.True(t, m.Sum().IsMonotonic())
				changes = m.Sum().DataPoints().At(0).IntValue()
			case "controlloop.release.info":
				require.Equal(t, 1, m.Sum().DataPoints().Len())
				dp := m.Sum().DataPoints().At(0)
				require.EqualValues(t, 1, dp.IntValue())
				info = dp.Attributes().AsRaw()
				infos++
			}
		}
	}
	require.Equal(t, 1, infos, "one controlloop.release.info series")
	require.NoError(t, s.ext.Shutdown(context.Background()))
	return events, changes, info
}

func TestReleaseMarkersAcrossRestarts(t *testing.T) {
	latch := latchPath(t)
	conf := map[string]any{"exporters": map[string]any{"otlp": map[string]any{"endpoint": "gw:4317", "headers": map[string]any{"authorization": "Bearer s3cret-token"}}}}
	h1, _ := ConfigHash(conf)

	// First start: one event, one change.
	ev, n, info := releaseRun(t, latch, "1.0.0", conf)
	require.Len(t, ev, 1)
	assert.EqualValues(t, 1, n)
	assert.Equal(t, map[string]any{"version": "1.0.0", "config_hash": h1}, info)

	// Restart, nothing changed: no event, the count stays.
	ev, n, _ = releaseRun(t, latch, "1.0.0", conf)
	assert.Empty(t, ev)
	assert.EqualValues(t, 1, n)

	// A configuration change (a secret rotated): exactly one event and one increment.
	conf["exporters"].(map[string]any)["otlp"].(map[string]any)["headers"] = map[string]any{"authorization": "Bearer n3w-token"}
	h2, _ := ConfigHash(conf)
	require.NotEqual(t, h1, h2)
	ev, n, info = releaseRun(t, latch, "1.0.0", conf)
	require.Len(t, ev, 1)
	assert.EqualValues(t, 2, n)
	assert.Equal(t, map[string]any{"version": "1.0.0", "config_hash": h2}, info)
	attrs := ev[0].Attributes().AsRaw()
	assert.Equal(t, h1, attrs["previous.config_hash"])
	assert.Equal(t, h2, attrs["config_hash"])

	// An upgrade with the same configuration: one more.
	ev, n, info = releaseRun(t, latch, "1.1.0", conf)
	require.Len(t, ev, 1)
	assert.EqualValues(t, 3, n)
	assert.Equal(t, "1.1.0", info["version"])
	assert.Equal(t, "1.0.0", ev[0].Attributes().AsRaw()["previous.version"])
	body := ev[0].Body().Str()
	ev, n, _ = releaseRun(t, latch, "1.1.0", conf)
	assert.Empty(t, ev)
	assert.EqualValues(t, 3, n)

	// Neither telemetry nor the release file carries a configuration value.
	raw, err := os.ReadFile(filepath.Join(filepath.Dir(latch), releaseFileName))
	require.NoError(t, err)
	assert.NotContains(t, string(raw), "token")
	var st releaseState
	require.NoError(t, json.Unmarshal(raw, &st))
	assert.Equal(t, releaseState{Version: "1.1.0", ConfigHash: h2, Changes: 3, Since: st.Since}, st)
	for _, v := range attrs {
		assert.NotContains(t, v, "token")
	}
	assert.NotContains(t, body, "token")
}
