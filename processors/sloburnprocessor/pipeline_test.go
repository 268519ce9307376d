package sloburnprocessor

import (
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/otelcol/otelcoltest"

	"github.com/fieldcol/fieldcol/processors/sloburnprocessor/internal/metadata"
)

// TestDistributionSnippetsValidate loads the sloburn configs handed to the edge and gateway
// default configs in a whole collector config, as the collector does at start-up.
func TestDistributionSnippetsValidate(t *testing.T) {
	factories, err := otelcoltest.NopFactories()
	require.NoError(t, err)
	factories.Processors[metadata.Type] = NewFactory()
	for file, slos := range map[string][]string{
		"edge-pipeline.yaml":    {"controlloop-deadline"},
		"gateway-pipeline.yaml": {"api-availability", "api-latency"},
	} {
		t.Run(file, func(t *testing.T) {
			cfg, err := otelcoltest.LoadConfigAndValidate(filepath.Join("testdata", file), factories)
			require.NoError(t, err)
			pc := cfg.Processors[component.NewID(metadata.Type)].(*Config)
			var names []string
			for _, s := range pc.SLOs {
				names = append(names, s.Name)
			}
			assert.Equal(t, slos, names)
		})
	}
}
