// Package dashboards builds fieldcol's Grafana dashboards with grafana-foundation-sdk. The
// JSON they render is committed under json/ (go generate, make dashboards or make generate
// regenerates it) so that Grafana's file provisioning (provisioning/) loads it without
// running Go; a test fails when the committed JSON drifts from this code.
package dashboards

//go:generate go run ./cmd/gen -out json

import (
	"encoding/json"
	"fmt"

	"github.com/grafana/grafana-foundation-sdk/go/cog"
	"github.com/grafana/grafana-foundation-sdk/go/cog/variants"
	"github.com/grafana/grafana-foundation-sdk/go/common"
	"github.com/grafana/grafana-foundation-sdk/go/dashboard"
	"github.com/grafana/grafana-foundation-sdk/go/prometheus"
	"github.com/grafana/grafana-foundation-sdk/go/stat"
	"github.com/grafana/grafana-foundation-sdk/go/timeseries"
)

// builder is the SDK's classic dashboard builder. The SDK marks the classic types
// deprecated in favour of dashboardv2, but Grafana's file provisioning loads v2 only behind
// feature flags, while the classic JSON model loads on every Grafana version.
type builder = dashboard.DashboardBuilder //nolint:staticcheck // see above

// Spec is one dashboard: the file it is written to and its builder.
type Spec struct {
	File    string
	Builder *builder
}

// All returns every dashboard, in a fixed order.
func All() []Spec {
	return []Spec{
		{"fieldcol-fleet.json", fleet()},
		{"fieldcol-controlloop.json", controlLoop()},
		{"fieldcol-hardware.json", hardware()},
		{"fieldcol-pipeline.json", pipeline()},
		{"fieldcol-slo.json", slo()},
		{"fieldcol-commands.json", commands()},
		{"fieldcol-executive.json", executive()},
		{"fieldcol-operations.json", operations()},
		{"fieldcol-engineering.json", engineering()},
		{"fieldcol-vehicle.json", vehicle()},
	}
}

// Render builds a dashboard and returns its JSON as committed: indented, ending in a newline.
func Render(b *builder) ([]byte, error) {
	d, err := b.Build()
	if err != nil {
		return nil, fmt.Errorf("building the dashboard: %w", err)
	}
	// The SDK gives every variable the interval variable's auto fields; Grafana's schema
	// knows them on interval variables only.
	for i := range d.Templating.List {
		if v := &d.Templating.List[i]; v.Type != dashboard.VariableTypeInterval {
			v.Auto, v.AutoMin, v.AutoCount = nil, nil, nil
		}
	}
	// Panel ids are what Grafana's links and panel-view URLs use: number them in layout
	// order so they stay the same from one generation to the next.
	var id uint32
	for _, p := range d.Panels {
		id++
		switch {
		case p.Panel != nil:
			p.Panel.Id = cog.ToPtr(id)
		case p.RowPanel != nil:
			p.RowPanel.Id = id
		}
	}
	out, err := json.MarshalIndent(d, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("encoding the dashboard: %w", err)
	}
	return append(out, '\n'), nil
}

// The queries filter on these template variables; Selector is their matcher, which every
// query of a device-scoped metric starts with.
const (
	devSel  = `device_id=~"$device_id"`
	loopSel = `device_id=~"$device_id",loop=~"$loop"`
)

func dsRef() common.DataSourceRef {
	return common.DataSourceRef{Type: cog.ToPtr("prometheus"), Uid: cog.ToPtr("${datasource}")}
}

// base is what every dashboard shares: uid, tags, time, the datasource variable (so one
// JSON works with any Prometheus-compatible datasource) and the device_id variable.
func base(uid, title, description string, withLoop bool) *builder {
	b := dashboard.NewDashboardBuilder(title). //nolint:staticcheck // the classic model, see builder
							Uid(uid).
							Description(description).
							Tags([]string{"fieldcol"}).
							Refresh("30s").
							Time("now-6h", "now").
							Timezone("browser").
							Tooltip(dashboard.DashboardCursorSyncCrosshair).
							WithVariable(dashboard.NewDatasourceVariableBuilder("datasource").
								Label("Data source").
								Type("prometheus").
								Current(option("default", "default"))).
		// Every series a device sends carries device_id, whichever
		// components it runs: the label's values, not one metric's.
		WithVariable(multiVar("device_id", "Device", "device.id of the devices to show", "label_values(device_id)")).
		Annotation(releaseMarkers())
	if withLoop {
		b = b.WithVariable(multiVar("loop", "Loop", "control loops of the selected devices",
			`label_values(controlloop_cycles_total{device_id=~"$device_id"}, loop)`))
	}
	return b
}

// ReleaseMarkerExpr marks a device's release change (a new version or effective
// configuration, see controlloop.release.* in controlloop/metadata.yaml): the release.info
// series of a (version, config_hash) it did not report 5 minutes earlier, while its
// persisted release.changes counter moved, so a mere restart or a device coming back from
// an outage with the same release marks nothing.
const ReleaseMarkerExpr = `max by (device_id, version, config_hash) (controlloop_release_info{` + devSel + `})` +
	` unless max by (device_id, version, config_hash) (controlloop_release_info{` + devSel + `} offset 5m)` +
	` and on (device_id) (max by (device_id) (changes(controlloop_release_changes_total{` + devSel + `}[5m])) > 0)`

// releaseMarkers is the annotation every dashboard shows at a release change.
func releaseMarkers() *dashboard.AnnotationQueryBuilder {
	return dashboard.NewAnnotationQueryBuilder().
		Name("Release changes").
		Datasource(dsRef()).
		Enable(true).
		IconColor("blue").
		// The query goes in target (Grafana's Prometheus data source moves a legacy
		// top-level expr there; the schema knows only target); title, text and tags stay
		// at the top, where the data source reads them.
		Target(prometheus.NewDataqueryBuilder().Expr(ReleaseMarkerExpr).RefId("release").Interval("60s")).
		TitleFormat("Release {{version}}, config {{config_hash}}").
		TextFormat("{{device_id}}: the edge started with another version or effective configuration (controlloop.release event in its logs)").
		TagKeys("device_id,version,config_hash")
}

// multiVar is a query variable of several values, All (any value) when opened.
func multiVar(name, label, description, query string) *dashboard.QueryVariableBuilder {
	return dashboard.NewQueryVariableBuilder(name).
		Label(label).
		Description(description).
		Datasource(dsRef()).
		Query(dashboard.StringOrMap{String: cog.ToPtr(query)}).
		Current(option("All", "$__all")).
		Refresh(dashboard.VariableRefreshOnTimeRangeChanged).
		Sort(dashboard.VariableSortAlphabeticalAsc).
		Multi(true).
		IncludeAll(true).
		AllValue(".*")
}

// option is a variable's selected value: what a dashboard shows before anyone picks one.
func option(text, value string) dashboard.VariableOption {
	return dashboard.VariableOption{
		Selected: cog.ToPtr(true),
		Text:     dashboard.StringOrArrayOfString{String: cog.ToPtr(text)},
		Value:    dashboard.StringOrArrayOfString{String: cog.ToPtr(value)},
	}
}

// q is one Prometheus target; refIDs are assigned in order by the panel helpers.
type q struct{ expr, legend string }

func targets(qs []q) []cog.Builder[variants.Dataquery] {
	out := make([]cog.Builder[variants.Dataquery], 0, len(qs))
	for i, x := range qs {
		out = append(out, prometheus.NewDataqueryBuilder().
			Datasource(dsRef()).
			RefId(string(rune('A'+i))).
			Expr(x.expr).
			LegendFormat(x.legend).
			Range())
	}
	return out
}

// ts is a time series panel of w×h grid units.
func ts(title, description, unit string, w, h uint32, qs ...q) *timeseries.PanelBuilder {
	return timeseries.NewPanelBuilder().
		Title(title).
		Description(description).
		Datasource(dsRef()).
		Unit(unit).
		Span(w).
		Height(h).
		Targets(targets(qs)).
		Legend(common.NewVizLegendOptionsBuilder().
			DisplayMode(common.LegendDisplayModeList).
			Placement(common.LegendPlacementBottom).
			ShowLegend(true)).
		Tooltip(common.NewVizTooltipOptionsBuilder().
			Mode(common.TooltipDisplayModeMulti).
			Sort(common.SortOrderDescending))
}

// unitOf gives the query refID its own unit, so Grafana draws it on an axis of its own.
func unitOf(unit string) []dashboard.DynamicConfigValue {
	return []dashboard.DynamicConfigValue{{Id: "unit", Value: unit}}
}

// step is a threshold: from value at on, the stat shows color.
type step struct {
	at    float64
	color string
}

// thresholds are absolute steps over a base color (the color below the first step).
func thresholds(base string, steps ...step) *dashboard.ThresholdsConfigBuilder {
	out := []dashboard.Threshold{{Color: base}}
	for _, s := range steps {
		out = append(out, dashboard.Threshold{Value: cog.ToPtr(s.at), Color: s.color})
	}
	return dashboard.NewThresholdsConfigBuilder().Mode(dashboard.ThresholdsModeAbsolute).Steps(out)
}

// Thresholds of the stats: zero is good and any is bad (alarms, loops forced safe, alerts
// firing); a ratio of successes is red under 95% and green from 99%.
var (
	anyIsBad     = thresholds("green", step{1, "red"})
	successRatio = thresholds("red", step{0.95, "yellow"}, step{0.99, "green"})
)

// noData says what an empty ratio means (0/0 is NaN in PromQL: nothing happened).
func noData(text string) []dashboard.ValueMapping {
	return []dashboard.ValueMapping{{SpecialValueMap: &dashboard.SpecialValueMap{
		Type: dashboard.MappingTypeSpecialValue,
		Options: dashboard.DashboardSpecialValueMapOptions{
			Match:  dashboard.SpecialValueMatchNullAndNan,
			Result: dashboard.ValueMappingResult{Text: cog.ToPtr(text), Color: cog.ToPtr("text")},
		},
	}}}
}

// policyStates names the values of fieldcol_slo:error_budget_policy:state.
func policyStates() []dashboard.ValueMapping {
	return []dashboard.ValueMapping{{ValueMap: &dashboard.ValueMap{
		Type: dashboard.MappingTypeValueToText,
		Options: map[string]dashboard.ValueMappingResult{
			"2": {Text: cog.ToPtr("ship"), Color: cog.ToPtr("green")},
			"1": {Text: cog.ToPtr("slow down"), Color: cog.ToPtr("yellow")},
			"0": {Text: cog.ToPtr("freeze"), Color: cog.ToPtr("red")},
		},
	}}}
}

// st is a single-value stat panel of the latest value, colored by its thresholds.
func st(title, description, unit string, w, h uint32, th *dashboard.ThresholdsConfigBuilder, qs ...q) *stat.PanelBuilder {
	return stat.NewPanelBuilder().
		Title(title).
		Description(description).
		Datasource(dsRef()).
		Unit(unit).
		Span(w).
		Height(h).
		Targets(targets(qs)).
		Thresholds(th).
		ColorMode(common.BigValueColorModeBackground).
		Orientation(common.VizOrientationAuto).
		ReduceOptions(common.NewReduceDataOptionsBuilder().Calcs([]string{"lastNotNull"}))
}

func row(title string) *dashboard.RowBuilder { return dashboard.NewRowBuilder(title) }
