import type { RangeSeries } from './prom-api';

export interface ChartOptions {
  title: string;
  subtitle: string;
}

interface Row {
  seconds: number;
  model: string;
  tokensPerSecond: number;
}

// Without a canvas, Vega estimates text widths generously (0.8 em per character): a title or subtitle longer than
// about width / (0.8 × font size) characters widens the whole picture, so keep them short.

// vega-lite ships ESM only and its types are not reachable from this CommonJS project: this is all we use of it.
interface VegaLite {
  compile(spec: object): { spec: object };
}

/**
 * One row per model per step. A model's series only exists from its first token on (prom-client creates a labelled
 * counter at its first increment), so steps before that are filled with 0 tokens/s rather than left blank.
 */
function rows(series: readonly RangeSeries[]): Row[] {
  const times = [...new Set(series.flatMap((s) => s.values.map(([time]) => time)))].sort((a, b) => a - b);
  const first = times[0] ?? 0;
  return series.flatMap((s) => {
    const byTime = new Map(s.values.map(([time, value]) => [time, Number(value)]));
    return times.map((time) => {
      const value = byTime.get(time) ?? 0;
      return {
        seconds: time - first,
        model: s.metric.model ?? 'all',
        tokensPerSecond: Number.isFinite(value) ? value : 0,
      };
    });
  });
}

function lineChart(data: Row[], options: ChartOptions): object {
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    width: 760,
    height: 340,
    padding: 16,
    background: 'white',
    title: { text: options.title, subtitle: options.subtitle, anchor: 'start', fontSize: 18, subtitleFontSize: 12 },
    data: { values: data },
    mark: { type: 'line', interpolate: 'monotone', strokeWidth: 2.5 },
    encoding: {
      x: { field: 'seconds', type: 'quantitative', title: 'time (s)' },
      y: { field: 'tokensPerSecond', type: 'quantitative', title: 'output tokens/s' },
      color: { field: 'model', type: 'nominal', title: 'model', legend: { orient: 'bottom', columns: 2 } },
    },
    config: {
      font: 'DejaVu Sans',
      axis: { labelFontSize: 12, titleFontSize: 13, gridColor: '#e6e6e6' },
      legend: { labelFontSize: 12, titleFontSize: 13, labelLimit: 320 },
    },
  };
}

/**
 * Draws tokens/s per model with Vega-Lite, rendered headless to SVG and rasterised by resvg: no browser, no
 * canvas, no native build step.
 */
export async function renderTokensPerSecondPng(series: readonly RangeSeries[], options: ChartOptions): Promise<Buffer> {
  const vegaLiteName = 'vega-lite';
  const vegaLite = (await import(vegaLiteName)) as VegaLite;
  const vega = await import('vega');
  const { Resvg } = await import('@resvg/resvg-js');
  const { spec } = vegaLite.compile(lineChart(rows(series), options));
  const view = new vega.View(vega.parse(spec as Parameters<typeof vega.parse>[0]), { renderer: 'none' });
  const svg = await view.toSVG();
  view.finalize();
  const png = new Resvg(svg, {
    fitTo: { mode: 'zoom', value: 2 },
    font: { loadSystemFonts: true, defaultFontFamily: 'DejaVu Sans' },
  }).render();
  return png.asPng();
}
