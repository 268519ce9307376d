package controlloop

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pmetric"

	"github.com/fieldcol/fieldcol/controlloop/internal/api"
	"github.com/fieldcol/fieldcol/controlloop/internal/pid"
	"github.com/fieldcol/fieldcol/internal/hardware"
	"github.com/fieldcol/fieldcol/internal/hardware/backends"
)

// The findings of issue 18, each replayed through the command API on the sim plant.

func TestRegressionManualModeKeepsConfiguredOutputMax(t *testing.T) {
	s, c := apiSetup(t, func(cfg *Config) { cfg.Loops[0].Controller.PID.OutputMax = 0.5 })
	pl := s.plant()

	code, out, _ := c.do(http.MethodPost, "/api/v1/commands", `{"command":"SET_MODE","loop":"oven","mode":"manual","output":1}`, nil)
	assert.Equal(t, http.StatusBadRequest, code)
	assert.Equal(t, "output", out["field"])
	code, out, _ = c.do(http.MethodPost, "/api/v1/commands", `{"command":"SET_TEMP_SETTINGS","loop":"oven","output_max":0.8}`, nil)
	assert.Equal(t, http.StatusBadRequest, code)
	assert.Equal(t, "output_max", out["field"])

	code, out, _ = c.do(http.MethodPost, "/api/v1/commands", `{"command":"SET_MODE","loop":"oven","mode":"manual","output":0.5}`, nil)
	require.Equal(t, http.StatusOK, code, "%v", out)
	st := out["loop"].(map[string]any)
	assert.InDelta(t, 0.5, st["output_max"], 1e-12, "the API reports the configured limit")
	for range 20 {
		assert.LessOrEqual(t, pl.HeaterDuty(), 0.5)
		time.Sleep(5 * time.Millisecond) //nolint:forbidigo // sampling the heater over several cycles
	}
}

func TestRegressionMaxRateCannotExceedTheConfiguredRamp(t *testing.T) {
	_, c := apiSetup(t, func(cfg *Config) { cfg.Loops[0].Setpoint.MaxRate = 0.5 })
	code, out, _ := c.do(http.MethodPost, "/api/v1/commands", `{"command":"SET_TEMP_SETTINGS","loop":"oven","max_rate":1e308}`, nil)
	assert.Equal(t, http.StatusBadRequest, code)
	assert.Equal(t, "max_rate", out["field"])
	code, _, _ = c.do(http.MethodPost, "/api/v1/commands", `{"command":"SET_TEMP_SETTINGS","loop":"oven","max_rate":0.25}`, nil)
	assert.Equal(t, http.StatusOK, code, "a slower ramp narrows the configured one")
}

func TestRegressionCommandWhileTrippedIsRefusedNotDeferred(t *testing.T) {
	s, c := apiSetup(t, nil)
	pl := s.plant()
	require.NoError(t, s.ext.Fault(faultNaN("oven_temp")))
	require.Eventually(t, func() bool {
		st, _ := s.ext.Status("oven")
		return st.(loopStatus).State == "tripped"
	}, 5*time.Second, time.Millisecond)

	code, out, _ := c.do(http.MethodPost, "/api/v1/commands", `{"command":"SET_MODE","loop":"oven","mode":"manual","output":1}`, nil)
	require.Equal(t, http.StatusConflict, code, "%v", out)
	assert.Contains(t, out["error"], "sensor_fault", "the refusal names the latch")

	_, err := s.session.Faults().Clear("oven_temp")
	require.NoError(t, err)
	code, out, _ = c.do(http.MethodPost, "/api/v1/commands", `{"command":"ACK_ALARM","loop":"oven"}`, nil)
	require.Equal(t, http.StatusOK, code, "%v", out)
	// Re-armed in auto: the setpoint ramps from the measurement; the refused manual 100 %
	// never takes effect.
	for range 20 {
		st, _ := s.ext.Status("oven")
		assert.NotEqual(t, "manual", st.(loopStatus).Mode)
		time.Sleep(5 * time.Millisecond) //nolint:forbidigo // sampling over several cycles
	}
	_ = pl
}

func TestRegressionTripReturnsManualOutputToSafe(t *testing.T) {
	s, c := apiSetup(t, nil)
	pl := s.plant()
	code, out, _ := c.do(http.MethodPost, "/api/v1/commands", `{"command":"SET_MODE","loop":"oven","mode":"manual","output":0.9}`, nil)
	require.Equal(t, http.StatusOK, code, "%v", out)
	require.Eventually(t, func() bool { return pl.HeaterDuty() == 0.9 }, 5*time.Second, time.Millisecond)
	require.NoError(t, s.ext.Fault(faultNaN("oven_temp")))
	require.Eventually(t, func() bool { return pl.HeaterDuty() == 0 }, 5*time.Second, time.Millisecond)
	_, err := s.session.Faults().Clear("oven_temp")
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		code, _, _ := c.do(http.MethodPost, "/api/v1/commands", `{"command":"ACK_ALARM","loop":"oven"}`, nil)
		return code == http.StatusOK
	}, 5*time.Second, 10*time.Millisecond)
	oven := s.ext.byName["oven"]
	c0 := oven.Status().Cycle
	require.Eventually(t, func() bool { return oven.Status().Cycle > c0+10 }, 5*time.Second, time.Millisecond)
	assert.Equal(t, pid.Manual, oven.Mode())
	assert.Zero(t, pl.HeaterDuty(), "re-arming in manual holds the safe output, not the 90 % asked before the trip")
}

func TestRegressionOperatorStateSurvivesRestart(t *testing.T) {
	for _, mode := range []RestartMode{RestartWarm, RestartCold} {
		t.Run(string(mode), func(t *testing.T) {
			latch := latchPath(t)
			cfg := plantConfig(t, latch)
			withAuth(cfg)
			cfg.Restart = mode
			s := start(t, cfg, backends.NewRegistry(nil))
			c := &apiClient{t: t, base: "http://" + s.ext.apiAddr, token: "s3cret"}
			for _, body := range []string{
				`{"command":"SET_MODE","loop":"oven","mode":"off"}`,
				`{"command":"SET_TEMP_SETTINGS","loop":"conveyor","setpoint":1200}`,
			} {
				code, out, _ := c.do(http.MethodPost, "/api/v1/commands", body, nil)
				require.Equal(t, http.StatusOK, code, "%v", out)
			}
			// An unclean stop: the process dies with the file as the API left it.
			crashed := filepath.Join(t.TempDir(), "latches.json")
			b, err := os.ReadFile(latch)
			require.NoError(t, err)
			require.NoError(t, os.WriteFile(crashed, b, 0o600))
			require.NoError(t, s.ext.Shutdown(context.Background()))

			for name, file := range map[string]string{"clean": latch, "unclean": crashed} {
				cfg := plantConfig(t, file)
				cfg.Restart = mode
				s2 := start(t, cfg, backends.NewRegistry(nil))
				oven, conv := s2.ext.byName["oven"], s2.ext.byName["conveyor"]
				assert.Equal(t, pid.Off, oven.Mode(), "%s %s restart: a loop switched off stays off", name, mode)
				if mode == RestartWarm {
					assert.InDelta(t, 1200, conv.Setpoint(), 1e-9, "%s warm restart keeps the operator's setpoint", name)
				} else {
					assert.InDelta(t, 1500, conv.Setpoint(), 1e-9, "%s cold restart returns to the configuration", name)
				}
				c0 := oven.Status().Cycle
				require.Eventually(t, func() bool { return oven.Status().Cycle > c0+5 }, 5*time.Second, time.Millisecond)
				assert.Zero(t, s2.plant().HeaterDuty())
				require.NoError(t, s2.ext.Shutdown(context.Background()))
			}
		})
	}
}

func TestRegressionUncleanRestartIsCounted(t *testing.T) {
	latch := latchPath(t)
	s := start(t, plantConfig(t, latch), backends.NewRegistry(nil))
	crashed := filepath.Join(t.TempDir(), "latches.json")
	b, err := os.ReadFile(latch)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(crashed, b, 0o600))
	require.NoError(t, s.ext.Shutdown(context.Background()))

	// The counter is kept in the latch file: it grows across the restarts it counts.
	for file, want := range map[string][2]int{latch: {2, 0}, crashed: {1, 1}} {
		s := start(t, plantConfig(t, file), backends.NewRegistry(nil))
		assert.Equal(t, want[0], restartCount(t, s, true), "clean starts in %s", file)
		assert.Equal(t, want[1], restartCount(t, s, false), "unclean starts in %s", file)
		require.NoError(t, s.ext.Shutdown(context.Background()))
	}
	s2 := start(t, plantConfig(t, crashed), backends.NewRegistry(nil))
	assert.Equal(t, 2, restartCount(t, s2, true))
	assert.Equal(t, 1, restartCount(t, s2, false))
}

func TestRegressionStuckSensorTripsWithDefaults(t *testing.T) {
	cfg := plantConfig(t, latchPath(t))
	cfg.Hardware.Sim.TimeScale = 1 // real time: the default window of 10 s is 10 s of plant
	s := start(t, cfg, nil)
	pl := s.plant()
	oven := s.ext.byName["oven"]
	require.Eventually(t, func() bool { return pl.HeaterDuty() > 0 }, 5*time.Second, time.Millisecond)
	require.NoError(t, s.ext.Fault(&api.FaultRequest{Device: "oven_temp", Kind: string(hardware.FaultStuck)}))
	stuckAt := time.Now()
	require.Eventually(t, func() bool { return slices.Contains(oven.LatchedNames(), "sensor_fault") }, 15*time.Second, 10*time.Millisecond)
	took := time.Since(stuckAt)
	assert.Less(t, took, minStuckAfter+2*time.Second)
	assert.Zero(t, pl.HeaterDuty())
	t.Logf("a frozen oven sensor tripped the loop after %s (default input.stuck.after %s)", took.Round(10*time.Millisecond), cfg.Loops[0].stuckAfter())
}

// restartCount reads controlloop.restarts{clean} from the extension.
func restartCount(t *testing.T, s *started, clean bool) int {
	t.Helper()
	ms := pmetric.NewMetrics()
	require.NoError(t, s.ext.CollectMetrics(ms))
	n := 0
	sms := ms.ResourceMetrics().At(0).ScopeMetrics()
	for i := 0; i < sms.Len(); i++ {
		for j := 0; j < sms.At(i).Metrics().Len(); j++ {
			m := sms.At(i).Metrics().At(j)
			if m.Name() != "controlloop.restarts" {
				continue
			}
			for k := 0; k < m.Sum().DataPoints().Len(); k++ {
				dp := m.Sum().DataPoints().At(k)
				c, _ := dp.Attributes().Get("clean")
				if c.Bool() == clean {
					n += int(dp.IntValue())
				}
			}
		}
	}
	return n
}
