// The classic Grafana dashboard JSON model, as @grafana/schema (Grafana's own generated
// types) declares it, narrowed so that a committed dashboard file can be checked with tsc:
//
//   - Json<T> turns the schema's string enums into the union of their values (a JSON file
//     holds "multi", which TypeScript does not accept for the enum TooltipDisplayMode), so
//     "" or a misspelt value is an error;
//   - panels are a union discriminated by `type`, each with the options and custom field
//     config of its panel plugin (the schema's Panel leaves options as Record<string, unknown>);
//   - annotations are the Prometheus data source's (PrometheusAnnotation);
//   - the checked file declares `const dashboard: Dashboard = {...}`, so TypeScript's excess
//     property check refuses any field the schema does not know, at every depth.
//
// dashboards/schema_test.go writes one such file per dashboard and runs tsc on them.
import type * as schema from '@grafana/schema';
import type * as gauge from '@grafana/schema/dist/esm/raw/composable/gauge/panelcfg/x/GaugePanelCfg_types.gen';
import type * as stat from '@grafana/schema/dist/esm/raw/composable/stat/panelcfg/x/StatPanelCfg_types.gen';
import type * as table from '@grafana/schema/dist/esm/raw/composable/table/panelcfg/x/TablePanelCfg_types.gen';
import type * as text from '@grafana/schema/dist/esm/raw/composable/text/panelcfg/x/TextPanelCfg_types.gen';
import type * as timeseries from '@grafana/schema/dist/esm/raw/composable/timeseries/panelcfg/x/TimeSeriesPanelCfg_types.gen';

export type Json<T> = T extends string
  ? `${T}`
  : T extends number | boolean | null | undefined
    ? T
    : T extends Array<infer U>
      ? Array<Json<U>>
      : T extends object
        ? { [K in keyof T]: Json<T[K]> }
        : T;

type FieldConfigSource<Custom> = Omit<schema.FieldConfigSource, 'defaults'> & {
  defaults: Omit<schema.FieldConfig, 'custom'> & { custom?: Custom };
};

type PluginPanel<Type extends string, Options, Custom> = Omit<schema.Panel, 'type' | 'options' | 'fieldConfig'> & {
  type: Type;
  options?: Options;
  fieldConfig?: FieldConfigSource<Custom>;
};

// A panel plugin without custom field options accepts none.
type NoCustom = Record<never, never>;

export type Panel =
  | PluginPanel<'timeseries', timeseries.Options, timeseries.FieldConfig>
  | PluginPanel<'stat', stat.Options, NoCustom>
  | PluginPanel<'gauge', gauge.Options, NoCustom>
  | PluginPanel<'table', table.Options, table.FieldConfig>
  | PluginPanel<'text', text.Options, NoCustom>
  | (Omit<schema.RowPanel, 'type'> & { type: 'row' });

// An annotation of the Prometheus data source (the schema leaves its target generic): the
// query in target, and the title, text and tag templates the data source reads from the
// annotation itself (Grafana's Prometheus annotation editor writes them there).
export type PrometheusAnnotation = Omit<schema.AnnotationQuery, 'target'> & {
  target?: schema.DataQuery & { expr: string; interval?: string };
  titleFormat?: string;
  textFormat?: string;
  tagKeys?: string;
  useValueForTime?: boolean;
};

export type Dashboard = Json<
  Omit<schema.Dashboard, 'panels' | 'annotations'> & { panels?: Panel[]; annotations?: { list?: PrometheusAnnotation[] } }
>;
