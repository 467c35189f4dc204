// The example's live page: polls /metrics once a second and turns the counters into rates, the way Prometheus'
// rate() does between two scrapes. Plain browser JavaScript, no build step; the chart is uPlot, served by the app.
'use strict';

const POLL_MS = 1000;
// Rates and means over the last 5 polls, as rate(…[5s]) would give: steadier than one poll to the next.
const RATE_WINDOW = 5;
const WINDOW_POINTS = 120;
const COLORS = ['#2563eb', '#dc2626', '#16a34a', '#d97706', '#7c3aed', '#0891b2', '#db2777', '#4b5563'];

/** Samples of a Prometheus text page: [{ name, labels, value }]; comments give the metric prefix. */
function parseMetrics(text) {
  const samples = [];
  let prefix;
  for (const line of text.split('\n')) {
    if (line.startsWith('# TYPE ')) {
      const match = /^# TYPE (\S+)_output_tokens_total counter$/.exec(line);
      if (match) prefix = match[1];
      continue;
    }
    if (line === '' || line.startsWith('#')) continue;
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)/.exec(line);
    if (!match) continue;
    const labels = {};
    for (const [, key, value] of (match[2] || '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) {
      labels[key] = value.replace(/\\(.)/g, (_, c) => (c === 'n' ? '\n' : c));
    }
    samples.push({ name: match[1], labels, value: Number(match[3]) });
  }
  return { samples, prefix: prefix || 'dynamo_frontend' };
}

const EMPTY_MODEL = { outputTokens: 0, finished: 0, failed: 0, inFlight: 0, ttftSum: 0, ttftCount: 0, itlSum: 0, itlCount: 0 };

/** Per model: the counters and gauges this page shows. */
function readModels({ samples, prefix }) {
  const models = new Map();
  const model = (name) => {
    if (!models.has(name)) {
      models.set(name, { ...EMPTY_MODEL });
    }
    return models.get(name);
  };
  for (const { name, labels, value } of samples) {
    if (labels.model === undefined || !Number.isFinite(value)) continue;
    const m = model(labels.model);
    switch (name.slice(prefix.length + 1)) {
      case 'output_tokens_total': m.outputTokens += value; break;
      case 'requests_total':
        m.finished += value;
        if (labels.status !== 'success') m.failed += value;
        break;
      case 'inflight_requests': m.inFlight += value; break;
      case 'time_to_first_token_seconds_sum': m.ttftSum += value; break;
      case 'time_to_first_token_seconds_count': m.ttftCount += value; break;
      case 'inter_token_latency_seconds_sum': m.itlSum += value; break;
      case 'inter_token_latency_seconds_count': m.itlCount += value; break;
      default: break;
    }
  }
  // A label with nothing counted (unknown_model, where a request waits until its name is admitted) is not a model.
  for (const [name, m] of models) {
    if (Object.keys(EMPTY_MODEL).every((field) => m[field] === 0)) models.delete(name);
  }
  return models;
}

const total = (models, field) => [...models.values()].reduce((sum, m) => sum + m[field], 0);
const rate = (now, before, field, seconds) => Math.max(0, now[field] - (before ? before[field] : now[field])) / seconds;
/** Mean of the observations made between two scrapes, or undefined when there were none. */
const meanSince = (now, before, sum, count) => {
  const n = now[count] - (before ? before[count] : 0);
  return n > 0 ? (now[sum] - (before ? before[sum] : 0)) / n : undefined;
};

const integer = new Intl.NumberFormat('en-US', { maximumFractionDigits: 0 });
const decimal = new Intl.NumberFormat('en-US', { maximumFractionDigits: 1 });
const formatSeconds = (s) => (s === undefined ? '–' : s < 1 ? `${decimal.format(s * 1000)} ms` : `${decimal.format(s)} s`);
const formatRate = (r) => (r >= 100 ? integer.format(r) : decimal.format(r));

function setText(id, text) {
  document.getElementById(id).textContent = text;
}

// Chart state: one series per model, in order of first appearance; rebuilt when a model appears.
const times = [];
const seriesByModel = new Map();
let chart;

function colorOf(index) {
  return COLORS[index % COLORS.length];
}

function buildChart() {
  if (chart) chart.destroy();
  const container = document.getElementById('chart');
  const models = [...seriesByModel.keys()];
  chart = new uPlot(
    {
      width: container.clientWidth || 1000,
      height: 300,
      scales: { x: { time: true }, y: { range: (_u, _min, max) => [0, Math.max(10, max * 1.1)] } },
      axes: [{}, { label: 'tokens/s', size: 60 }],
      series: [{}, ...models.map((name, i) => ({ label: name, stroke: colorOf(i), width: 2, points: { show: false } }))],
      legend: { live: false },
    },
    [times, ...models.map((name) => seriesByModel.get(name))],
    container,
  );
}

function renderTable(models, rates) {
  const body = document.querySelector('#models tbody');
  body.replaceChildren();
  [...models.keys()].sort().forEach((name) => {
    const m = models.get(name);
    const r = rates.get(name);
    const row = document.createElement('tr');
    row.dataset.model = name;
    const swatch = document.createElement('span');
    swatch.className = 'swatch';
    swatch.style.background = colorOf([...seriesByModel.keys()].indexOf(name));
    const first = document.createElement('td');
    first.append(swatch, name);
    row.append(first);
    for (const text of [formatRate(r.tokensPerSecond), integer.format(m.outputTokens), integer.format(m.inFlight), integer.format(m.finished), formatSeconds(r.ttft), formatSeconds(r.itl)]) {
      const cell = document.createElement('td');
      cell.textContent = text;
      row.append(cell);
    }
    body.append(row);
  });
}

// The last RATE_WINDOW + 1 snapshots; rates are taken between the oldest and the newest.
const history = [];
// A latency is observed only when a stream starts or a token arrives: the last one seen is kept until the next.
const lastLatency = new Map();

async function poll() {
  const response = await fetch('/metrics', { cache: 'no-store' });
  if (!response.ok) throw new Error(`/metrics answered ${response.status}`);
  const models = readModels(parseMetrics(await response.text()));
  const now = { at: performance.now(), models, totals: {} };
  for (const field of ['ttftSum', 'ttftCount', 'itlSum', 'itlCount']) now.totals[field] = total(models, field);
  const previous = history[0];
  history.push(now);
  if (history.length > RATE_WINDOW + 1) history.shift();
  const seconds = previous ? (now.at - previous.at) / 1000 : 1;
  const remembered = (key, latest) => {
    if (latest !== undefined) lastLatency.set(key, latest);
    return lastLatency.get(key);
  };

  const rates = new Map();
  for (const [name, m] of now.models) {
    // A model missing from the older snapshot had no series yet: its counters were at 0.
    const before = previous && (previous.models.get(name) || EMPTY_MODEL);
    rates.set(name, {
      tokensPerSecond: rate(m, before, 'outputTokens', seconds),
      requestsPerSecond: rate(m, before, 'finished', seconds),
      ttft: remembered(`ttft ${name}`, meanSince(m, before, 'ttftSum', 'ttftCount')),
      itl: remembered(`itl ${name}`, meanSince(m, before, 'itlSum', 'itlCount')),
    });
  }

  const all = [...rates.values()];
  const tokensPerSecond = all.reduce((sum, r) => sum + r.tokensPerSecond, 0);
  const ttft = remembered('ttft', meanSince(now.totals, previous && previous.totals, 'ttftSum', 'ttftCount'));
  const itl = remembered('itl', meanSince(now.totals, previous && previous.totals, 'itlSum', 'itlCount'));

  setText('tokens-per-second', formatRate(tokensPerSecond));
  setText('in-flight', integer.format(total(now.models, 'inFlight')));
  setText('requests-per-second', decimal.format(all.reduce((sum, r) => sum + r.requestsPerSecond, 0)));
  setText('time-to-first-token', formatSeconds(ttft));
  setText('inter-token-latency', formatSeconds(itl));
  setText('output-tokens', integer.format(total(now.models, 'outputTokens')));
  setText('errors', integer.format(total(now.models, 'failed')));
  document.getElementById('hint').hidden = tokensPerSecond > 0 || total(now.models, 'inFlight') > 0;

  let newModel = false;
  for (const name of now.models.keys()) {
    if (!seriesByModel.has(name)) {
      seriesByModel.set(name, times.map(() => null));
      newModel = true;
    }
  }
  times.push(Date.now() / 1000);
  for (const [name, values] of seriesByModel) values.push(rates.has(name) ? rates.get(name).tokensPerSecond : null);
  if (times.length > WINDOW_POINTS) {
    times.shift();
    for (const values of seriesByModel.values()) values.shift();
  }
  if (newModel || !chart) buildChart();
  else chart.setData([times, ...seriesByModel.values()]);

  renderTable(now.models, rates);
  setText('status', `updated ${new Date().toLocaleTimeString()}`);
}

async function loop() {
  try {
    await poll();
  } catch (error) {
    setText('status', `cannot read /metrics: ${error.message}`);
  }
  setTimeout(loop, POLL_MS);
}

window.addEventListener('resize', () => {
  if (chart) chart.setSize({ width: document.getElementById('chart').clientWidth, height: 300 });
});
loop();
