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
	}
}

// Render builds a dashboard and returns its JSON as committed: indented, ending in a newline.
func Render(b *builder) ([]byte, error) {
	d, err := b.Build()
	if err != nil {
		return nil, fmt.Errorf("building the dashboard: %w", err)
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
								Type("prometheus")).
							WithVariable(dashboard.NewQueryVariableBuilder("device_id").
								Label("Device").
								Description("device.id of the edge devices to show").
								Datasource(dsRef()).
								Query(dashboard.StringOrMap{String: cog.ToPtr("label_values(hw_status_ratio, device_id)")}).
								Refresh(dashboard.VariableRefreshOnTimeRangeChanged).
								Sort(dashboard.VariableSortAlphabeticalAsc).
								Multi(true).
								IncludeAll(true).
								AllValue(".*"))
	if withLoop {
		b = b.WithVariable(dashboard.NewQueryVariableBuilder("loop").
			Label("Loop").
			Description("control loops of the selected devices").
			Datasource(dsRef()).
			Query(dashboard.StringOrMap{String: cog.ToPtr(`label_values(controlloop_cycles_total{device_id=~"$device_id"}, loop)`)}).
			Refresh(dashboard.VariableRefreshOnTimeRangeChanged).
			Sort(dashboard.VariableSortAlphabeticalAsc).
			Multi(true).
			IncludeAll(true).
			AllValue(".*"))
	}
	return b
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
			ShowLegend(true))
}

// st is a single-value stat panel of the latest value.
func st(title, description, unit string, w, h uint32, qs ...q) *stat.PanelBuilder {
	return stat.NewPanelBuilder().
		Title(title).
		Description(description).
		Datasource(dsRef()).
		Unit(unit).
		Span(w).
		Height(h).
		Targets(targets(qs)).
		ReduceOptions(common.NewReduceDataOptionsBuilder().Calcs([]string{"lastNotNull"}))
}

func row(title string) *dashboard.RowBuilder { return dashboard.NewRowBuilder(title) }
