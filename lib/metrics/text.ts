import { createRequire } from 'node:module';
import type { Registry } from 'prom-client';
import type { MetricValue } from 'prom-client';

/**
 * The fast text path for histograms, used only with the prom-client versions it is tested against.
 *
 * prom-client's formatter builds and escapes a label object per sample line, which for the ~10,000 histogram lines
 * of 100 models is far over the scrape budget. Its 15.1 registry asks a metric for `getForPromString()` before
 * `get()` and prints a value as `${metricName}${labels} ${value}`; a value whose `metricName` holds every line
 * already rendered (label text escaped once per series, kept) and whose labels are empty prints as it is. That hook
 * and the registry's default labels are not public, so any other version gets the public path: `get()` only.
 */

/** prom-client versions whose formatter the fast path reproduces (checked by the exposition tests). */
const FAST_TEXT_VERSIONS = /^15\.1\.\d+$/;

function installedPromClientVersion(): string | undefined {
  try {
    return (createRequire(__filename)('prom-client/package.json') as { version?: unknown }).version as string | undefined;
  } catch {
    return undefined;
  }
}

/** Whether the installed prom-client is one the fast text path was tested against. */
export const fastTextSupported = FAST_TEXT_VERSIONS.test(installedPromClientVersion() ?? '');

/** Escapes a label value exactly as prom-client's registry does: backslash, newline, double quote. */
export function escapeLabelValue(value: string): string {
  return value.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"');
}

/** `a="x",b="y"` in the key order of `labels`, the order prom-client prints them in. */
export function labelText(labels: Record<string, string>): string {
  return Object.entries(labels)
    .map(([name, value]) => `${name}="${escapeLabelValue(value)}"`)
    .join(',');
}

/** A sample value as prom-client prints it (its `getValueAsString`, including the spelling `Nan`). */
function sampleValue(value: number): string {
  if (Number.isNaN(value)) return 'Nan';
  if (value === Infinity) return '+Inf';
  if (value === -Infinity) return '-Inf';
  return `${value}`;
}

// Shared and frozen: the formatter only reads them, and one object hits its per-object cache of shared labels.
const NO_LABELS = Object.freeze({});

/**
 * Sample lines handed to the registry as one value: its `metricName` holds every line but the last complete
 * (`name value\n` each), then the last line's name; the registry appends the last value.
 */
export class SampleLines {
  private text = '';
  private lastName: string | undefined;
  private lastValue = 0;

  /** `name` is the sample name with its `{…}` label part, already escaped. */
  add(name: string, value: number): void {
    if (this.lastName !== undefined) this.text += `${this.lastName} ${sampleValue(this.lastValue)}\n`;
    this.lastName = name;
    this.lastValue = value;
  }

  values(): MetricValue<string>[] {
    if (this.lastName === undefined) return [];
    return [{ metricName: this.text + this.lastName, labels: NO_LABELS, sharedLabels: NO_LABELS, value: this.lastValue } as MetricValue<string>];
  }
}

/** Whether the registry would print pre-rendered lines as it prints structured ones: not with default labels. */
export function preRenderedTextMatches(registry: Registry): boolean {
  const defaults = (registry as unknown as { _defaultLabels?: unknown })._defaultLabels;
  return defaults !== null && typeof defaults === 'object' && Object.keys(defaults).length === 0;
}
