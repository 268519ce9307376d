package packaging

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"

	"github.com/fieldcol/fieldcol/e2e/internal/harness"
)

// components is what `<binary> components` lists, by kind.
type components struct {
	Receivers  []struct{ Name string } `yaml:"receivers"`
	Processors []struct{ Name string } `yaml:"processors"`
	Exporters  []struct{ Name string } `yaml:"exporters"`
	Connectors []struct{ Name string } `yaml:"connectors"`
	Extensions []struct{ Name string } `yaml:"extensions"`
	Providers  []struct {
		Scheme string `yaml:"scheme"`
	} `yaml:"providers"`
}

func names(list []struct{ Name string }) []string {
	out := make([]string, 0, len(list))
	for _, c := range list {
		out = append(out, c.Name)
	}
	return out
}

var (
	edgeReceivers  = []string{"otlp", "host_metrics", "hardware"}
	edgeProcessors = []string{"memory_limiter", "batch", "resource", "piiredaction", "sloburn"}
	edgeExporters  = []string{"otlp_grpc", "otlp_http", "debug", "prometheus"}
	edgeExtensions = []string{"health_check", "file_storage", "controlloop", "bearertokenauth"}

	gatewayReceivers  = []string{"otlp"}
	gatewayProcessors = []string{"memory_limiter", "batch", "transform", "filter", "tail_sampling", "piiredaction", "sloburn"}
	gatewayExporters  = []string{"otlp_grpc", "otlp_http", "debug", "prometheus", "prometheus_remote_write", "load_balancing", "kafka"}
	gatewayConnectors = []string{"span_metrics"}
	gatewayExtensions = []string{"health_check", "pprof", "zpages", "bearertokenauth", "file_storage"}

	providers = []string{"env", "file", "yaml", "host"}
)

func concat(lists ...[]string) []string {
	var out []string
	for _, l := range lists {
		out = append(out, l...)
	}
	return out
}

func TestDistributionsListTheirComponents(t *testing.T) {
	tests := []struct {
		binary                                                   string
		receivers, processors, exporters, connectors, extensions []string
		absent                                                   []string
	}{
		{
			binary: "fieldcol-edge", receivers: edgeReceivers, processors: edgeProcessors,
			exporters: edgeExporters, extensions: edgeExtensions,
			// Too large for a Pi (ARCHITECTURE.md, footprint).
			absent: []string{"prometheus_receiver", "resource_detection"},
		},
		{
			binary: "fieldcol-gateway", receivers: gatewayReceivers, processors: gatewayProcessors,
			exporters: gatewayExporters, connectors: gatewayConnectors, extensions: gatewayExtensions,
		},
		{
			binary:     "fieldcol",
			receivers:  concat(edgeReceivers, gatewayReceivers, []string{"prometheus"}),
			processors: concat(edgeProcessors, gatewayProcessors, []string{"resource_detection", "redaction"}),
			exporters:  concat(edgeExporters, gatewayExporters, []string{"file"}),
			connectors: gatewayConnectors,
			extensions: concat(edgeExtensions, gatewayExtensions),
		},
	}
	for _, tt := range tests {
		t.Run(tt.binary, func(t *testing.T) {
			out, err := exec.Command(harness.Binary(t, tt.binary), "components").CombinedOutput()
			require.NoError(t, err, string(out))
			var got components
			require.NoError(t, yaml.Unmarshal(out, &got), string(out))
			assert.Subset(t, names(got.Receivers), tt.receivers)
			assert.Subset(t, names(got.Processors), tt.processors)
			assert.Subset(t, names(got.Exporters), tt.exporters)
			assert.Subset(t, names(got.Connectors), tt.connectors)
			assert.Subset(t, names(got.Extensions), tt.extensions)
			var schemes []string
			for _, p := range got.Providers {
				schemes = append(schemes, p.Scheme)
			}
			assert.Subset(t, schemes, providers)
			all := concat(names(got.Receivers), names(got.Processors), names(got.Exporters))
			for _, a := range tt.absent {
				assert.NotContains(t, all, a)
			}
		})
	}
}

// shippedConfig is a config the repository ships: its files (merged in order), the
// distributions that must run it, and the environment it needs.
type shippedConfig struct {
	files    []string
	binaries []string
	env      []string
}

var shippedConfigs = []shippedConfig{
	{files: []string{"distributions/edge/config.yaml"}, binaries: []string{"fieldcol", "fieldcol-edge"}},
	{files: []string{"distributions/gateway/config.yaml"}, binaries: []string{"fieldcol", "fieldcol-gateway"}},
	{files: []string{"distributions/gateway/sampler.yaml"}, binaries: []string{"fieldcol", "fieldcol-gateway"}},
	{files: []string{"distributions/gateway/lb.yaml"}, binaries: []string{"fieldcol", "fieldcol-gateway"},
		env: []string{"FIELDCOL_GATEWAY_TOKEN=e2e-fleet-token"}},
	{files: []string{"distributions/edge/config.yaml", "distributions/pii-pseudonyms.yaml"},
		binaries: []string{"fieldcol", "fieldcol-edge"}, env: []string{harness.TestHMACKey}},
	{files: []string{"distributions/gateway/config.yaml", "distributions/pii-pseudonyms.yaml"},
		binaries: []string{"fieldcol", "fieldcol-gateway"}, env: []string{harness.TestHMACKey}},
}

func TestShippedConfigsValidate(t *testing.T) {
	for _, cfg := range shippedConfigs {
		for _, bin := range cfg.binaries {
			var args []string
			var name string
			for _, f := range cfg.files {
				args = append(args, "--config", harness.Shipped(f))
				name += filepath.Base(filepath.Dir(f)) + "_" + filepath.Base(f) + "+"
			}
			t.Run(name+bin, func(t *testing.T) {
				cmd := exec.Command(harness.Binary(t, bin), append([]string{"validate"}, args...)...)
				cmd.Env = append(append(os.Environ(), harness.CommonEnv(t)...), cfg.env...)
				out, err := cmd.CombinedOutput()
				assert.NoError(t, err, "%s validate %v:\n%s", bin, args, out)
			})
		}
	}
}

// Pseudonyms refuse to start without their key, and say which key is missing.
func TestPseudonymsNeedTheirKey(t *testing.T) {
	cmd := exec.Command(harness.Binary(t, "fieldcol-edge"), "validate", "--config", harness.Shipped("distributions/edge/config.yaml"),
		"--config", harness.Shipped("distributions/pii-pseudonyms.yaml"))
	cmd.Env = append(append(os.Environ(), harness.CommonEnv(t)...), "FIELDCOL_PII_HMAC_KEY=")
	out, err := cmd.CombinedOutput()
	require.Error(t, err)
	assert.Contains(t, string(out), "hmac_key")
}

// A broken config is refused with a message that names the key.
func TestValidateNamesTheBadKey(t *testing.T) {
	bad := harness.Overlay(t, "processors:\n  memory_limiter:\n    check_interval: soon\n")
	cmd := exec.Command(harness.Binary(t, "fieldcol-edge"), "validate", "--config", harness.Shipped("distributions/edge/config.yaml"), "--config", bad)
	cmd.Env = append(os.Environ(), harness.CommonEnv(t)...)
	out, err := cmd.CombinedOutput()
	require.Error(t, err)
	assert.Contains(t, string(out), "check_interval")
}
