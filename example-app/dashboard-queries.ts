import { readFileSync } from 'node:fs';
import { join } from 'node:path';

export interface DashboardQuery {
  panel: string;
  expr: string;
}

interface Panel {
  title?: string;
  targets?: { expr?: string }[];
  panels?: Panel[];
}

/**
 * Grafana fills these in before a query reaches Prometheus; the values are what it would send for a 1 s scrape
 * interval and the "All" choice of the model picker.
 */
export const GRAFANA_VARIABLES: Record<string, string> = {
  $__rate_interval: '10s',
  $__interval: '1s',
  $model: '.*',
};

function substitute(expr: string): string {
  return Object.entries(GRAFANA_VARIABLES).reduce((text, [name, value]) => text.split(name).join(value), expr);
}

/** Every PromQL expression of the shipped dashboard, ready for Prometheus' query API. */
export function dashboardQueries(file = join(__dirname, 'grafana-dashboard.json')): DashboardQuery[] {
  const dashboard = JSON.parse(readFileSync(file, 'utf8')) as { panels?: Panel[] };
  const queries: DashboardQuery[] = [];
  const visit = (panel: Panel): void => {
    for (const target of panel.targets ?? []) {
      if (target.expr) queries.push({ panel: panel.title ?? '(untitled)', expr: substitute(target.expr) });
    }
    panel.panels?.forEach(visit);
  };
  dashboard.panels?.forEach(visit);
  return queries;
}
