export { MetricsStore } from './store';
export type { RequestLabels, StoreSettings } from './store';
export type { CounterSet, RequestType } from './series';
export { METRIC_SUFFIXES } from './definitions';
export type { HistogramName } from './definitions';
export { ExtraLabels, NO_EXTRA_LABELS } from './extra-labels';
export type { ExtraLabelOptions, ExtraLabelsOption, ExtraLabelValue, ExtraLabelValues } from './extra-labels';
