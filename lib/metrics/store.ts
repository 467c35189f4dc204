import type { Metric, Registry } from 'prom-client';
import { Calibration } from '../counting/calibration';
import type { ErrorType } from '../labels';
import { ModelLabels, UNKNOWN_MODEL } from '../labels';
import type { HistogramBounds } from './buckets';
import { HistogramCounts, Tally, TallyMap } from './cells';
import type { ForEach } from './cells';
import { CollectedCounter, CollectedGauge, HistogramCollector } from './collectors';
import { HISTOGRAM_NAMES, METRIC_KEYS, METRICS } from './definitions';
import type { CounterKey, GaugeKey, HistogramName, MetricDefinition } from './definitions';
import { ExtraLabels, NO_EXTRA_LABELS } from './extra-labels';
import type { ExtraLabelValues } from './extra-labels';
import { CounterSet, ModelMetrics } from './series';
import type { RequestKindTallies, RequestType } from './series';
import { fastTextSupported } from './text';

export interface RequestLabels {
  model: string;
  endpoint: string;
  requestType: RequestType;
  /** The request's extra-label values; none when omitted. */
  extra?: ExtraLabelValues;
}

export interface StoreSettings {
  registry: Registry;
  prefix: string;
  models: ReadonlySet<string> | undefined;
  maxModels: number;
  buckets: HistogramBounds;
  extraLabels?: ExtraLabels;
  /** Render the text through prom-client's formatter even where the fast text path applies (tests). */
  publicTextOnly?: boolean;
}

function settingsKey(settings: StoreSettings): string {
  return JSON.stringify([
    settings.models === undefined ? null : [...settings.models].sort(),
    settings.maxModels,
    settings.buckets,
    settings.extraLabels?.settings ?? [],
  ]);
}

// Symbol.for so that two copies of this package loaded in one process still find each other's metrics.
const STORE = Symbol.for('express-dynamo-metrics.store');

type WithStore = { [STORE]?: MetricsStore };

/** Separates the endpoint and the reason in a parse error's key; both come from the package's own vocabularies. */
const SEP = '\u0000';

/**
 * The metrics of one registry and prefix, and the only place that registers with prom-client. Request state calls
 * its domain methods, which add to plain numbers; the registered metrics read those numbers when a scrape asks,
 * so every scrape is exact and a request costs no prom-client call. Two middleware instances on the same registry
 * share one store (the first one's settings win).
 */
export class MetricsStore {
  readonly modelLabels: ModelLabels;
  readonly extraLabels: ExtraLabels;
  /** Set on a response this store's middleware observes, so mounting it twice does not count twice. */
  readonly responseMark = Symbol('express-dynamo-metrics.observed');
  /** The settings this store was created with, to tell a second middleware that its own are not used. */
  readonly settingsKey: string;
  private readonly models = new Map<string, ModelMetrics>();
  private readonly buckets: HistogramBounds;
  private readonly disconnectedClients = new Tally({}, true);
  private readonly parseErrors = new TallyMap();

  /** The store for this registry and prefix, created and registered on first use. */
  static for(settings: StoreSettings): MetricsStore {
    const anchorName = `${settings.prefix}_${METRICS.outputTokens.suffix}`;
    const existing = settings.registry.getSingleMetric(anchorName) as (Metric & WithStore) | undefined;
    if (existing) {
      const store = existing[STORE];
      if (store) {
        if (store.settingsKey !== settingsKey(settings)) {
          process.emitWarning(
            `express-dynamo-metrics: a second dynamoMetrics() on the registry with prefix "${settings.prefix}" shares the first one's metrics, so its models, maxModels, buckets and extraLabels are ignored; give it its own registry or prefix to keep them`,
            { code: 'DYNAMO_METRICS_SHARED_SETTINGS' },
          );
        }
        return store;
      }
      throw new TypeError(
        `express-dynamo-metrics: a metric named "${anchorName}" is already registered by something else; pass another "prefix" or "registry"`,
      );
    }
    for (const key of METRIC_KEYS) {
      const name = `${settings.prefix}_${METRICS[key].suffix}`;
      if (settings.registry.getSingleMetric(name)) {
        throw new TypeError(
          `express-dynamo-metrics: a metric named "${name}" is already registered; pass another "prefix" or "registry"`,
        );
      }
    }
    return new MetricsStore(settings);
  }

  private constructor(settings: StoreSettings) {
    const { registry, prefix } = settings;
    this.modelLabels = new ModelLabels(settings.models, settings.maxModels);
    this.extraLabels = settings.extraLabels ?? new ExtraLabels(undefined);
    this.settingsKey = settingsKey(settings);
    this.buckets = settings.buckets;

    const tallies = this.tallySources();
    const histograms = this.histogramSources();
    const fastText = fastTextSupported && settings.publicTextOnly !== true;
    for (const key of METRIC_KEYS) {
      const definition: MetricDefinition = METRICS[key];
      const identity = {
        name: `${prefix}_${definition.suffix}`,
        help: definition.help,
        labelNames: definition.extraLabels ? [...definition.labels, ...this.extraLabels.names] : definition.labels,
      };
      if (definition.type === 'histogram') {
        const name = key as HistogramName;
        new HistogramCollector(identity, this.buckets[name], registry, histograms[name], fastText);
      } else if (definition.type === 'gauge') {
        new CollectedGauge(identity, registry, tallies[key as GaugeKey], fastText, definition.inFlight === true);
      } else {
        const counter = new CollectedCounter(identity, registry, tallies[key as CounterKey], fastText);
        // The anchor through which `MetricsStore.for` finds this store.
        if (key === 'outputTokens') (counter as unknown as WithStore)[STORE] = this;
      }
    }
  }

  /** Where each counter and gauge finds its tallies, current as of the call. */
  private tallySources(): Record<CounterKey | GaugeKey, ForEach<Tally>> {
    const eachModel =
      (pick: (model: ModelMetrics) => Tally): ForEach<Tally> =>
      (visit) => {
        for (const model of this.models.values()) visit(pick(model));
      };
    const eachSet =
      (pick: (set: CounterSet, visit: (tally: Tally) => void) => void): ForEach<Tally> =>
      (visit) => {
        for (const model of this.models.values()) for (const set of model.counterSets.values()) pick(set, visit);
      };
    const eachKind = (pick: (kind: RequestKindTallies, visit: (tally: Tally) => void) => void): ForEach<Tally> =>
      eachSet((set, visit) => set.forEachRequestKind((kind) => pick(kind, visit)));
    return {
      outputTokens: eachSet((set, visit) => (set.settle(), visit(set.outputTokens))),
      reasoningTokens: eachSet((set, visit) => (set.settle(), visit(set.reasoningTokens))),
      requests: eachKind((kind, visit) => kind.ended.forEach(visit)),
      requestsStarted: eachKind((kind, visit) => visit(kind.started)),
      inflightRequests: eachModel((model) => model.inflightRequests),
      activeRequests: eachModel((model) => model.activeRequests),
      queuedRequests: eachModel((model) => model.queuedRequests),
      disconnectedClients: (visit) => visit(this.disconnectedClients),
      modelCancellation: eachKind((kind, visit) => visit(kind.cancelled)),
      inputTokens: eachSet((set, visit) => visit(set.inputTokens)),
      requestsFinished: eachSet((set, visit) => set.requestsFinished.forEach(visit)),
      outputTokensOvercount: eachSet((set, visit) => visit(set.outputTokensOvercount)),
      outputTokensEstimated: eachSet((set, visit) => visit(set.outputTokensEstimated)),
      parseErrors: (visit) => this.parseErrors.forEach(visit),
    };
  }

  private histogramSources(): Record<HistogramName, ForEach<HistogramCounts>> {
    const each =
      (name: HistogramName): ForEach<HistogramCounts> =>
      (visit) => {
        for (const model of this.models.values()) visit(model.histograms[name]);
      };
    return Object.fromEntries(HISTOGRAM_NAMES.map((name) => [name, each(name)])) as Record<HistogramName, ForEach<HistogramCounts>>;
  }

  private modelMetrics(model: string): ModelMetrics {
    let metrics = this.models.get(model);
    if (metrics === undefined) {
      metrics = new ModelMetrics(model, this.buckets);
      this.models.set(model, metrics);
    }
    return metrics;
  }

  /** The counters the hot path adds to for a model label and extra-label values, created on first use. */
  seriesFor(model: string, extra: ExtraLabelValues = NO_EXTRA_LABELS): CounterSet {
    return this.modelMetrics(model).counterSet(extra);
  }

  /** Counters for tokens whose model label is not known yet; never scraped until added to a model's set. */
  detachedSeries(): CounterSet {
    return new CounterSet(UNKNOWN_MODEL, {}, new HistogramCounts(this.buckets.interTokenLatency), new Calibration());
  }

  requestInFlight(model: string, delta: 1 | -1, queued: boolean): void {
    const metrics = this.modelMetrics(model);
    metrics.inflightRequests.add(delta);
    metrics.activeRequests.add(delta);
    if (queued) metrics.queuedRequests.add(delta);
  }

  requestStarted(labels: RequestLabels): void {
    this.seriesFor(labels.model, labels.extra).requestKind(labels.endpoint, labels.requestType).started.add(1);
  }

  /** The request is no longer waiting for its first token (its gauges sit under `gaugeModel`). */
  firstToken(gaugeModel: string): void {
    this.modelMetrics(gaugeModel).queuedRequests.add(-1);
  }

  observeTimeToFirstToken(model: string, secondsSinceArrival: number): void {
    this.modelMetrics(model).histograms.timeToFirstToken.observe(secondsSinceArrival);
  }

  promptTokens(model: string, inputTokens: number, cachedTokens: number | undefined, extra?: ExtraLabelValues): void {
    const metrics = this.modelMetrics(model);
    metrics.counterSet(extra ?? NO_EXTRA_LABELS).inputTokens.add(inputTokens);
    metrics.histograms.inputSequenceTokens.observe(inputTokens);
    if (cachedTokens !== undefined) metrics.histograms.cachedTokens.observe(cachedTokens);
  }

  overcount(model: string, tokens: number, extra?: ExtraLabelValues): void {
    this.seriesFor(model, extra).outputTokensOvercount.add(tokens);
  }

  /** A request ended without stated usage: all of its counted output tokens are estimated. */
  estimatedOutput(model: string, tokens: number, extra?: ExtraLabelValues): void {
    this.seriesFor(model, extra).outputTokensEstimated.add(tokens);
  }

  parseError(endpoint: string, reason: string): void {
    this.parseErrors.get(endpoint + SEP + reason, () => ({ endpoint, reason })).add(1);
  }

  requestEnded(
    labels: RequestLabels,
    outcome: {
      errorType: ErrorType | undefined;
      clientDisconnected: boolean;
      durationSeconds: number;
      outputTokens: number;
      finishReason: string | undefined;
    },
  ): void {
    const metrics = this.modelMetrics(labels.model);
    const set = metrics.counterSet(labels.extra ?? NO_EXTRA_LABELS);
    const kind = set.requestKind(labels.endpoint, labels.requestType);
    kind.endedTally(outcome.errorType ?? '').add(1);
    if (outcome.clientDisconnected) {
      this.disconnectedClients.add(1);
      kind.cancelled.add(1);
    }
    metrics.histograms.requestDuration.observe(outcome.durationSeconds);
    if (outcome.outputTokens > 0) metrics.histograms.outputSequenceTokens.observe(outcome.outputTokens);
    if (outcome.finishReason !== undefined) set.finishedTally(outcome.finishReason).add(1);
  }
}
