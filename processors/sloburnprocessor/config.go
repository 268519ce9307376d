package sloburnprocessor // import "github.com/fieldcol/fieldcol/processors/sloburnprocessor"

import (
	"errors"
	"fmt"
	"regexp"
	"time"

	"go.opentelemetry.io/collector/component"

	"github.com/fieldcol/fieldcol/processors/sloburnprocessor/internal/burn"
	"github.com/fieldcol/fieldcol/processors/sloburnprocessor/internal/selector"
)

// Defaults that the README documents.
const (
	defaultEmitInterval = 15 * time.Second
	defaultMaxSeries    = 1000
	defaultMaxStreams   = 10000
	defaultPeriod       = 30 * 24 * time.Hour
	defaultCheckpoint   = 5 * time.Minute
	defaultMaxDelay     = 5 * time.Minute
)

// maxBucketsPerWindow bounds the buckets of one window. A window is kept in buckets of the
// emit interval (so it is exact at every emit) as long as that takes no more than this many;
// with the default 15s that holds up to 6h, and 1d, 3d and 30d get 1m, 3m and 30m buckets.
// The state of a series with the workbook's windows is then 6,620 buckets, about 104 KiB.
const maxBucketsPerWindow = 1440

// Config is the configuration of the sloburn processor.
type Config struct {
	// SLOs to compute. At least one.
	SLOs []SLOConfig `mapstructure:"slos"`
	// EmitInterval is how often the slo.* metrics are computed and sent down the pipeline.
	EmitInterval time.Duration `mapstructure:"emit_interval"`
	// MaxSeries bounds the SLO series (one per SLO and value of its group_by attributes)
	// across all SLOs. Points of a new series past the limit are folded into one overflow
	// series per SLO (attribute otel.metric.overflow=true) and counted.
	MaxSeries int `mapstructure:"max_series"`
	// MaxStreams bounds the input streams whose last cumulative value is remembered.
	MaxStreams int `mapstructure:"max_streams"`
	// Storage names a storage extension (e.g. file_storage) that keeps a checkpoint of the
	// windows and streams, so that a restart keeps burn rates and budget. Unset: memory only.
	Storage *component.ID `mapstructure:"storage"`
	// CheckpointInterval is how often the checkpoint is written when Storage is set; it is
	// also written at shutdown. 0 writes it only at shutdown.
	CheckpointInterval time.Duration `mapstructure:"checkpoint_interval"`
	// MaxDelay is how old a point may be stamped and still count at its own time; an older
	// one (a sender's clock behind, or data delayed in a queue) counts at its arrival. 0
	// keeps every point at its own time.
	MaxDelay time.Duration `mapstructure:"max_delay"`

	// prevent unkeyed literal initialization
	_ struct{}
}

// SLOConfig is one service level objective and its indicator.
type SLOConfig struct {
	// Name is the value of the slo attribute of every slo.* metric.
	Name string `mapstructure:"name"`
	// Objective is the share of good events, e.g. 0.995.
	Objective float64 `mapstructure:"objective"`
	// Period is the compliance period of the error budget. Default 720h (30 days).
	Period time.Duration `mapstructure:"period"`
	// Total selects the counters of every event, e.g. controlloop.cycles{loop="oven"}.
	Total string `mapstructure:"total"`
	// Bad selects the counters of bad events. Exactly one of Bad and Good goes with Total.
	Bad string `mapstructure:"bad"`
	// Good selects the counters of good events.
	Good string `mapstructure:"good"`
	// Latency is a latency SLI from one histogram, instead of Total with Bad or Good.
	Latency LatencyConfig `mapstructure:"latency"`
	// GroupBy attributes (of the data point, else of the resource) split the SLO into one
	// series per value, e.g. per device or per service.
	GroupBy []string `mapstructure:"group_by"`
	// Alerts are the multiwindow conditions of slo.alert. Default: the SRE workbook's four.
	Alerts []AlertConfig `mapstructure:"alerts"`

	// prevent unkeyed literal initialization
	_ struct{}
}

// LatencyConfig is an SLI of the form "requests faster than threshold are good".
type LatencyConfig struct {
	// Histogram selects explicit-bucket histograms, e.g. traces.span.metrics.duration{...}.
	Histogram string `mapstructure:"histogram"`
	// Threshold in the histogram's unit; it must be one of its bucket bounds, because a
	// histogram cannot tell how many observations fall below a value inside a bucket.
	Threshold float64 `mapstructure:"threshold"`

	// prevent unkeyed literal initialization
	_ struct{}
}

// AlertConfig is one condition: the burn rate is at least Factor over both windows.
type AlertConfig struct {
	Severity    string        `mapstructure:"severity"`
	LongWindow  time.Duration `mapstructure:"long_window"`
	ShortWindow time.Duration `mapstructure:"short_window"`
	Factor      float64       `mapstructure:"factor"`

	// prevent unkeyed literal initialization
	_ struct{}
}

var sloName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.:-]*$`)

// Validate checks the configuration; each message names the offending key.
func (cfg *Config) Validate() error {
	var errs []error
	if len(cfg.SLOs) == 0 {
		errs = append(errs, errors.New("slos must list at least one SLO"))
	}
	if cfg.EmitInterval <= 0 {
		errs = append(errs, fmt.Errorf("emit_interval must be positive, got %v", cfg.EmitInterval))
	}
	if cfg.MaxSeries <= 0 {
		errs = append(errs, fmt.Errorf("max_series must be positive, got %d", cfg.MaxSeries))
	}
	if cfg.MaxStreams <= 0 {
		errs = append(errs, fmt.Errorf("max_streams must be positive, got %d", cfg.MaxStreams))
	}
	if cfg.CheckpointInterval < 0 {
		errs = append(errs, fmt.Errorf("checkpoint_interval must not be negative, got %v", cfg.CheckpointInterval))
	}
	if cfg.MaxDelay < 0 {
		errs = append(errs, fmt.Errorf("max_delay must not be negative (0 keeps every point at its own time), got %v", cfg.MaxDelay))
	}
	names := map[string]bool{}
	for i := range cfg.SLOs {
		s := &cfg.SLOs[i]
		key := fmt.Sprintf("slos[%d]", i)
		if names[s.Name] {
			errs = append(errs, fmt.Errorf("%s.name %q is used by another SLO", key, s.Name))
		}
		names[s.Name] = true
		errs = append(errs, s.validate(key)...)
	}
	return errors.Join(errs...)
}

func (s *SLOConfig) validate(key string) []error {
	var errs []error
	if !sloName.MatchString(s.Name) {
		errs = append(errs, fmt.Errorf("%s.name must match %s, got %q", key, sloName, s.Name))
	}
	if !(s.Objective > 0 && s.Objective < 1) {
		errs = append(errs, fmt.Errorf("%s.objective must be between 0 and 1 (exclusive), e.g. 0.995, got %v", key, s.Objective))
	}
	if s.Period < 0 {
		errs = append(errs, fmt.Errorf("%s.period must be positive, got %v", key, s.Period))
	}
	errs = append(errs, checkWindow(key+".period", s.period())...)

	latency := s.Latency.Histogram != ""
	switch {
	case latency && (s.Total != "" || s.Bad != "" || s.Good != ""):
		errs = append(errs, fmt.Errorf("%s.latency cannot be combined with total, bad or good", key))
	case latency:
		if _, err := selector.Parse(s.Latency.Histogram); err != nil {
			errs = append(errs, fmt.Errorf("%s.latency.histogram: %w", key, err))
		}
		if s.Latency.Threshold <= 0 {
			errs = append(errs, fmt.Errorf("%s.latency.threshold must be a positive bucket bound of the histogram, got %v", key, s.Latency.Threshold))
		}
	case s.Total == "":
		errs = append(errs, fmt.Errorf("%s needs total with bad or good, or latency", key))
	case (s.Bad == "") == (s.Good == ""):
		errs = append(errs, fmt.Errorf("%s needs exactly one of bad and good next to total", key))
	default:
		for _, f := range []struct{ key, text string }{{"total", s.Total}, {"bad", s.Bad}, {"good", s.Good}} {
			if f.text == "" {
				continue
			}
			if _, err := selector.Parse(f.text); err != nil {
				errs = append(errs, fmt.Errorf("%s.%s: %w", key, f.key, err))
			}
		}
	}

	seen := map[string]bool{}
	for j, g := range s.GroupBy {
		if g == "" || seen[g] {
			errs = append(errs, fmt.Errorf("%s.group_by[%d] must be a non-empty attribute name listed once, got %q", key, j, g))
		}
		seen[g] = true
	}

	for j, a := range s.Alerts {
		akey := fmt.Sprintf("%s.alerts[%d]", key, j)
		if a.Severity != burn.Page && a.Severity != burn.Ticket {
			errs = append(errs, fmt.Errorf("%s.severity must be %q or %q, got %q", akey, burn.Page, burn.Ticket, a.Severity))
		}
		errs = append(errs, checkWindow(akey+".long_window", a.LongWindow)...)
		errs = append(errs, checkWindow(akey+".short_window", a.ShortWindow)...)
		if a.ShortWindow >= a.LongWindow {
			errs = append(errs, fmt.Errorf("%s.short_window (%v) must be shorter than long_window (%v)", akey, a.ShortWindow, a.LongWindow))
		}
		if a.Factor <= 0 {
			errs = append(errs, fmt.Errorf("%s.factor must be positive, got %v", akey, a.Factor))
		}
	}
	return errs
}

// checkWindow requires whole minutes, so that every bucket (a 60th of the window) is a whole
// second and window edges fall on the sample grid of a scrape-driven Prometheus.
func checkWindow(key string, w time.Duration) []error {
	if w < time.Minute || w%time.Minute != 0 {
		return []error{fmt.Errorf("%s must be a whole number of minutes, at least 1m, got %v", key, w)}
	}
	return nil
}

func (s *SLOConfig) period() time.Duration {
	if s.Period == 0 {
		return defaultPeriod
	}
	return s.Period
}

func (s *SLOConfig) conditions() []burn.Condition {
	if len(s.Alerts) == 0 {
		return burn.Workbook()
	}
	out := make([]burn.Condition, len(s.Alerts))
	for i, a := range s.Alerts {
		out[i] = burn.Condition{Severity: a.Severity, Long: a.LongWindow, Short: a.ShortWindow, Factor: a.Factor}
	}
	return out
}

func createDefaultConfig() *Config {
	return &Config{
		EmitInterval: defaultEmitInterval,
		MaxSeries:    defaultMaxSeries,
		MaxStreams:   defaultMaxStreams,

		CheckpointInterval: defaultCheckpoint,
		MaxDelay:           defaultMaxDelay,
	}
}
