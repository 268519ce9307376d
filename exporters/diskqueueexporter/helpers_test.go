package diskqueueexporter

import (
	"os"
	"path/filepath"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/otel/sdk/metric/metricdata/metricdatatest"
)

func metricdatatestIgnore() []metricdatatest.Option {
	return []metricdatatest.Option{metricdatatest.IgnoreTimestamp(), metricdatatest.IgnoreExemplars()}
}

func nopHost() component.Host { return componenttest.NewNopHost() }

// removeLifecycleQueues clears what the generated lifecycle test left in testdata/lifecycle.
func removeLifecycleQueues() {
	_ = os.RemoveAll(filepath.Join("testdata", "lifecycle"))
}
