package hardwarereceiver // import "github.com/fieldcol/fieldcol/receivers/hardwarereceiver"

import (
	"errors"
	"fmt"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/scraper/scraperhelper"

	"github.com/fieldcol/fieldcol/internal/hardware"
	"github.com/fieldcol/fieldcol/receivers/hardwarereceiver/internal/metadata"
)

// Config is the hardware receiver's configuration.
type Config struct {
	// ControllerConfig holds the scraper keys every receiver shares: collection_interval
	// (how often every device is read, default 10s), initial_delay (the wait before the
	// first scrape, default 1s) and timeout. Here timeout bounds each device read (the
	// default per-read timeout, 250ms), not the whole scrape: reads on one bus follow each
	// other, and a scrape deadline would cut the later ones off.
	scraperhelper.ControllerConfig `mapstructure:",squash"`
	// BridgeInterval is how often the control loop's events and spans are forwarded in
	// logs and traces pipelines (default 1s).
	BridgeInterval time.Duration `mapstructure:"bridge_interval"`
	// FailAfter is how many consecutive failed reads turn hw.status from degraded to
	// failed (default 3).
	FailAfter int `mapstructure:"fail_after"`
	// ControlLoop is the id of the controlloop extension whose telemetry this receiver
	// bridges and whose hardware registry it shares (e.g. "controlloop" or
	// "controlloop/oven"); nil means none.
	ControlLoop *component.ID `mapstructure:"controlloop"`
	// Config holds backend, devices and sim. Its timeout is decoded from the same key as
	// ControllerConfig.Timeout, which is the one the receiver uses.
	hardware.Config `mapstructure:",squash"`
	// MetricsBuilderConfig enables or disables each hw.* metric.
	metadata.MetricsBuilderConfig `mapstructure:",squash"`
}

var _ component.Config = (*Config)(nil)

// Validate checks the configuration; every message names the key.
func (c *Config) Validate() error {
	var errs []error
	if c.CollectionInterval <= 0 {
		errs = append(errs, fmt.Errorf("collection_interval: must be positive, got %s", c.CollectionInterval))
	}
	if c.InitialDelay < 0 {
		errs = append(errs, fmt.Errorf("initial_delay: must not be negative, got %s", c.InitialDelay))
	}
	if c.BridgeInterval <= 0 {
		errs = append(errs, fmt.Errorf("bridge_interval: must be positive, got %s", c.BridgeInterval))
	}
	if c.FailAfter < 1 {
		errs = append(errs, fmt.Errorf("fail_after: must be at least 1, got %d", c.FailAfter))
	}
	if err := c.Config.Validate(); err != nil {
		errs = append(errs, err)
	}
	if to := c.ControllerConfig.Timeout; to >= c.CollectionInterval && c.CollectionInterval > 0 {
		errs = append(errs, fmt.Errorf("timeout: the per-read timeout (%s) must be shorter than collection_interval (%s)", to, c.CollectionInterval))
	}
	// One key in YAML; two fields only in a configuration built in code.
	if c.Config.Timeout != c.ControllerConfig.Timeout {
		errs = append(errs, fmt.Errorf("timeout: Config.Timeout (%s) and ControllerConfig.Timeout (%s) differ: they are the one key timeout, set both", c.Config.Timeout, c.ControllerConfig.Timeout))
	}
	return errors.Join(errs...)
}
