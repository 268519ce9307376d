// Package hostprovider is a confmap provider for facts about the machine the collector runs
// on, so a shipped config can default `host.name` and `device.id` to the host name on any
// Linux box without a wrapper script or the resource_detection processor (which links every
// cloud SDK and is too large for a Pi).
//
// Use: ${host:name} expands to the kernel's host name (os.Hostname).
package hostprovider // import "github.com/fieldcol/fieldcol/providers/hostprovider"

import (
	"context"
	"fmt"
	"os"
	"strings"

	"go.opentelemetry.io/collector/confmap"
)

const schemeName = "host"

// hostname is swapped in tests.
var hostname = os.Hostname

type provider struct{}

// NewFactory returns the factory of the `host` confmap provider.
func NewFactory() confmap.ProviderFactory {
	return confmap.NewProviderFactory(func(confmap.ProviderSettings) confmap.Provider { return provider{} })
}

// Retrieve expands `host:name`; any other selector is an error that lists the known ones.
func (provider) Retrieve(_ context.Context, uri string, _ confmap.WatcherFunc) (*confmap.Retrieved, error) {
	selector, ok := strings.CutPrefix(uri, schemeName+":")
	if !ok {
		return nil, fmt.Errorf("%q uri is not supported by the %q provider", uri, schemeName)
	}
	switch selector {
	case "name":
		name, err := hostname()
		if err != nil {
			return nil, fmt.Errorf("reading the host name for ${host:name}: %w", err)
		}
		if name == "" {
			return nil, fmt.Errorf("${host:name}: the kernel reports an empty host name; set it or replace ${host:name} in the config")
		}
		// A string, never YAML: a host name such as "on" or "1e3" must stay a string.
		return confmap.NewRetrieved(name)
	default:
		return nil, fmt.Errorf("unknown selector %q in ${host:%s}: the host provider knows only ${host:name}", selector, selector)
	}
}

func (provider) Scheme() string { return schemeName }

func (provider) Shutdown(context.Context) error { return nil }
