package hostprovider

import (
	"context"
	"errors"
	"os"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/confmap"
	"go.opentelemetry.io/collector/confmap/confmaptest"
	"go.opentelemetry.io/collector/confmap/provider/envprovider"
	"go.opentelemetry.io/collector/confmap/provider/yamlprovider"
)

func newProvider() confmap.Provider {
	return NewFactory().Create(confmaptest.NewNopProviderSettings())
}

func TestRetrieveName(t *testing.T) {
	want, err := os.Hostname()
	require.NoError(t, err)
	got, err := newProvider().Retrieve(context.Background(), "host:name", nil)
	require.NoError(t, err)
	raw, err := got.AsRaw()
	require.NoError(t, err)
	assert.Equal(t, want, raw)
}

func TestRetrieveKeepsYAMLLookingNamesAsStrings(t *testing.T) {
	defer func(orig func() (string, error)) { hostname = orig }(hostname)
	hostname = func() (string, error) { return "on", nil }
	got, err := newProvider().Retrieve(context.Background(), "host:name", nil)
	require.NoError(t, err)
	raw, err := got.AsRaw()
	require.NoError(t, err)
	assert.Equal(t, "on", raw)
}

func TestRetrieveErrors(t *testing.T) {
	defer func(orig func() (string, error)) { hostname = orig }(hostname)
	p := newProvider()

	_, err := p.Retrieve(context.Background(), "host:ip", nil)
	assert.ErrorContains(t, err, `unknown selector "ip"`)

	_, err = p.Retrieve(context.Background(), "env:name", nil)
	assert.ErrorContains(t, err, "not supported")

	hostname = func() (string, error) { return "", errors.New("boom") }
	_, err = p.Retrieve(context.Background(), "host:name", nil)
	assert.ErrorContains(t, err, "boom")

	hostname = func() (string, error) { return "", nil }
	_, err = p.Retrieve(context.Background(), "host:name", nil)
	assert.ErrorContains(t, err, "empty host name")
}

// The shipped configs use ${host:name} as the default of an environment variable.
func TestResolverExpandsAsDefaultOfAnEnvVar(t *testing.T) {
	want, err := os.Hostname()
	require.NoError(t, err)
	resolve := func() *confmap.Conf {
		resolver, err := confmap.NewResolver(confmap.ResolverSettings{
			URIs:              []string{"yaml:device: ${env:FIELDCOL_TEST_DEVICE_ID:-${host:name}}"},
			ProviderFactories: []confmap.ProviderFactory{NewFactory(), envprovider.NewFactory(), yamlprovider.NewFactory()},
		})
		require.NoError(t, err)
		conf, err := resolver.Resolve(context.Background())
		require.NoError(t, err)
		return conf
	}
	assert.Equal(t, want, resolve().Get("device"))
	t.Setenv("FIELDCOL_TEST_DEVICE_ID", "pi-oven-7")
	assert.Equal(t, "pi-oven-7", resolve().Get("device"))
}
