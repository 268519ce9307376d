package controlloop

import (
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/confmap"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/pmetric"
)

// dryRunWrites reads controlloop.dry_run.writes{actuator} from the extension.
func dryRunWrites(t *testing.T, s *started, actuator string) int64 {
	t.Helper()
	ms := pmetric.NewMetrics()
	require.NoError(t, s.ext.CollectMetrics(ms))
	var n int64
	sms := ms.ResourceMetrics().At(0).ScopeMetrics()
	for i := 0; i < sms.Len(); i++ {
		for j := 0; j < sms.At(i).Metrics().Len(); j++ {
			m := sms.At(i).Metrics().At(j)
			if m.Name() != "controlloop.dry_run.writes" {
				continue
			}
			require.True(t, m.Sum().IsMonotonic(), "a counter")
			for k := 0; k < m.Sum().DataPoints().Len(); k++ {
				dp := m.Sum().DataPoints().At(k)
				if a, _ := dp.Attributes().Get("actuator"); a.Str() == actuator {
					n += dp.IntValue()
				}
			}
		}
	}
	return n
}

// The extension with dry_run: true on the sim plant, driven through the authenticated API
// as an operator commissioning a restored Pi would: the loops compute but the plant's
// heater and motor are never driven; every held-back write is counted by actuator; SET_MODE
// auto is refused until CLEAR_DRY_RUN, which needs the token, names no loop and leaves
// every loop in mode off; then auto heats the oven.
func TestDryRunThroughTheAPI(t *testing.T) {
	s, c := apiSetup(t, func(cfg *Config) { cfg.DryRun = true })
	pl := s.plant()

	require.Eventually(t, func() bool {
		return dryRunWrites(t, s, "heater_ssr") > 20 && dryRunWrites(t, s, "motor_speed") > 20 && dryRunWrites(t, s, "motor_enable") > 20
	}, 5*time.Second, 10*time.Millisecond, "held-back writes are counted for every actuator")
	code, out, _ := c.do(http.MethodGet, "/api/v1/loops/oven", "", nil)
	require.Equal(t, http.StatusOK, code)
	assert.Equal(t, "dry_run", out["state"])
	assert.Equal(t, true, out["dry_run"])
	assert.Equal(t, true, out["safe_state"])
	assert.Equal(t, 0.0, out["output"])
	assert.Positive(t, out["dry_run_output"], "the PID computes what it would write to a cold oven")
	assert.Zero(t, pl.HeaterDuty(), "the heater is never driven in dry run")
	v, ok := gauge(t, s, "controlloop.dry_run", "oven")
	require.True(t, ok)
	assert.Equal(t, 1.0, v)
	v, _ = gauge(t, s, "controlloop.safe_state", "oven")
	assert.Equal(t, 1.0, v, "the safe_state gauge describes the actuator")

	code, out, _ = c.do(http.MethodPost, "/api/v1/commands", `{"command":"SET_MODE","loop":"oven","mode":"auto"}`, nil)
	assert.Equal(t, http.StatusConflict, code)
	assert.Contains(t, out["error"], "dry run")
	code, _, _ = c.do(http.MethodPost, "/api/v1/commands", `{"command":"SET_MOTOR","loop":"conveyor","on":true}`, nil)
	assert.Equal(t, http.StatusConflict, code)
	assert.Equal(t, int64(1), commandCount(t, s, "SET_MODE", "failed"))

	anon := &apiClient{t: t, base: c.base}
	code, _, _ = anon.do(http.MethodPost, "/api/v1/commands", `{"command":"CLEAR_DRY_RUN"}`, nil)
	assert.Equal(t, http.StatusUnauthorized, code, "clearing dry run needs the token")
	code, out, _ = c.do(http.MethodPost, "/api/v1/commands", `{"command":"CLEAR_DRY_RUN","loop":"oven"}`, nil)
	assert.Equal(t, http.StatusBadRequest, code)
	assert.Equal(t, "loop", out["field"])
	assert.True(t, s.ext.byName["oven"].DryRun(), "refused requests leave dry run on")

	code, out, _ = c.do(http.MethodPost, "/api/v1/commands", `{"command":"CLEAR_DRY_RUN"}`, nil)
	require.Equal(t, http.StatusOK, code, "%v", out)
	loops, _ := out["loops"].([]any)
	require.Len(t, loops, 2)
	for _, l := range loops {
		st := l.(map[string]any)
		assert.Equal(t, false, st["dry_run"], "%v", st["name"])
		assert.Equal(t, "off", st["mode"], "%v: clearing dry run starts nothing", st["name"])
	}
	assert.Equal(t, int64(1), commandCount(t, s, "CLEAR_DRY_RUN", "accepted"))
	assert.Zero(t, pl.HeaterDuty())

	code, out, _ = c.do(http.MethodPost, "/api/v1/commands", `{"command":"SET_MODE","loop":"oven","mode":"auto"}`, nil)
	require.Equal(t, http.StatusOK, code, "%v", out)
	require.Eventually(t, func() bool { return pl.HeaterDuty() > 0 }, 5*time.Second, time.Millisecond, "out of dry run, auto heats")
	v, _ = gauge(t, s, "controlloop.dry_run", "oven")
	assert.Equal(t, 0.0, v)

	// The held-back writes and the clearing are in the event log.
	ld := plog.NewLogs()
	s.ext.DrainLogs(ld)
	events := map[string]int{}
	lrs := ld.ResourceLogs().At(0).ScopeLogs().At(0).LogRecords()
	for i := 0; i < lrs.Len(); i++ {
		events[lrs.At(i).EventName()]++
	}
	assert.Positive(t, events["controlloop.dry_run.write"])
	assert.Equal(t, 2, events["controlloop.dry_run"], "one clearing record per loop")
}

// Without dry_run nothing changes: no dry-run writes are counted and auto runs at start.
func TestNoDryRunByDefault(t *testing.T) {
	s, c := apiSetup(t, nil)
	require.Eventually(t, func() bool { return s.plant().HeaterDuty() > 0 }, 5*time.Second, time.Millisecond)
	assert.Zero(t, dryRunWrites(t, s, "heater_ssr"))
	code, out, _ := c.do(http.MethodGet, "/api/v1/loops/oven", "", nil)
	require.Equal(t, http.StatusOK, code)
	assert.Equal(t, false, out["dry_run"])
	assert.Nil(t, out["dry_run_output"])
}

// dry_run is off by default and set by the key fieldcol-restore's overlay merges in.
func TestDryRunConfigKey(t *testing.T) {
	cfg := loadConfig(t, "")
	assert.False(t, cfg.DryRun, "off unless asked for")
	overlay := confmap.NewFromStringMap(map[string]any{"dry_run": true})
	require.NoError(t, overlay.Unmarshal(cfg))
	assert.True(t, cfg.DryRun)
	require.NoError(t, cfg.Validate())
	assert.Len(t, cfg.Loops, 2, "the overlay changes nothing else")
}
