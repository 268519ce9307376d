package diskqueueexporter

import (
	"context"
	"os"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/confmap"
	"go.opentelemetry.io/collector/confmap/provider/envprovider"
	"go.opentelemetry.io/collector/confmap/provider/fileprovider"
)

// TestEdgeConfigSnippet resolves the snippet handed to the edge distribution as the
// collector does, and checks that an unset gateway endpoint still gives a valid config
// (hold mode) so the edge starts with no network.
func TestEdgeConfigSnippet(t *testing.T) {
	for _, tt := range []struct {
		name, endpoint string
	}{
		{name: "unset", endpoint: ""},
		{name: "set", endpoint: "https://gateway.example.com:4318"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			// t.Setenv restores the variables afterwards; Unsetenv makes them truly unset,
			// as on a Pi whose unit does not define them.
			t.Setenv("FIELDCOL_GATEWAY_ENDPOINT", tt.endpoint)
			t.Setenv("FIELDCOL_DISKQUEUE_DIR", "")
			require.NoError(t, os.Unsetenv("FIELDCOL_DISKQUEUE_DIR"))
			if tt.endpoint == "" {
				require.NoError(t, os.Unsetenv("FIELDCOL_GATEWAY_ENDPOINT"))
			}
			r, err := confmap.NewResolver(confmap.ResolverSettings{
				URIs:              []string{"file:testdata/edge.yaml"},
				ProviderFactories: []confmap.ProviderFactory{fileprovider.NewFactory(), envprovider.NewFactory()},
			})
			require.NoError(t, err)
			conf, err := r.Resolve(context.Background())
			require.NoError(t, err)
			sub, err := conf.Sub("exporters::diskqueue")
			require.NoError(t, err)
			cfg := createDefaultConfig().(*Config)
			require.NoError(t, sub.Unmarshal(cfg))
			require.NoError(t, confmap.Validate(cfg))
			assert.Equal(t, tt.endpoint, cfg.endpoint())
			assert.Equal(t, "/var/lib/fieldcol/diskqueue", cfg.Directory, "an unset FIELDCOL_DISKQUEUE_DIR falls back to the default")
			assert.Equal(t, FullDropOldest, cfg.WhenFull, "hold mode must not block the edge pipeline once full")
			require.NoError(t, r.Shutdown(context.Background()))
		})
	}
}
