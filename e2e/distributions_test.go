package e2e

import (
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"
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
	edgeReceivers  = []string{"otlp", "host_metrics"}
	edgeProcessors = []string{"memory_limiter", "batch", "resource"}
	edgeExporters  = []string{"otlp_grpc", "otlp_http", "debug", "prometheus"}
	edgeExtensions = []string{"health_check", "file_storage"}

	gatewayReceivers  = []string{"otlp"}
	gatewayProcessors = []string{"memory_limiter", "batch", "transform", "filter", "tail_sampling"}
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
			out, err := exec.Command(binary(t, tt.binary), "components").CombinedOutput()
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

// shippedConfigs maps every config the repository ships to the distributions that must
// run it.
var shippedConfigs = map[string][]string{
	"distributions/edge/config.yaml":    {"fieldcol", "fieldcol-edge"},
	"distributions/gateway/config.yaml": {"fieldcol", "fieldcol-gateway"},
}

func TestShippedConfigsValidate(t *testing.T) {
	for cfg, bins := range shippedConfigs {
		for _, bin := range bins {
			t.Run(filepath.Base(filepath.Dir(cfg))+"/"+filepath.Base(cfg)+"/"+bin, func(t *testing.T) {
				out, err := exec.Command(binary(t, bin), "validate", "--config", shipped(cfg)).CombinedOutput()
				assert.NoError(t, err, "%s validate --config %s:\n%s", bin, cfg, out)
			})
		}
	}
}

// A broken config is refused with a message that names the key.
func TestValidateNamesTheBadKey(t *testing.T) {
	bad := overlay(t, "processors:\n  memory_limiter:\n    check_interval: soon\n")
	out, err := exec.Command(binary(t, "fieldcol-edge"), "validate", "--config", shipped("distributions/edge/config.yaml"), "--config", bad).CombinedOutput()
	require.Error(t, err)
	assert.Contains(t, string(out), "check_interval")
}
