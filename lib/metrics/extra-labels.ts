import { createHash } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { configError, shown } from '../errors';
import { MAX_MODEL_NAME_LENGTH } from '../labels';
import { BUILT_IN_LABELS } from './definitions';

/** Reads one label's value from a request, e.g. the tenant from an API-key header; `undefined` for none. */
export type ExtraLabelValue<Req extends IncomingMessage = IncomingMessage> = (req: Req) => string | undefined;

export interface ExtraLabelOptions<Req extends IncomingMessage = IncomingMessage> {
  /**
   * Reads the value, once per request, when the request arrives.
   * @defaultValue none: required
   */
  value: ExtraLabelValue<Req>;
  /**
   * Distinct values kept; later new values are counted as `other`.
   * @defaultValue 100
   */
  maxValues?: number | undefined;
  /**
   * Show a short stable digest (the first 16 hex digits of its SHA-256) instead of the value, for identities that
   * must not appear in clear.
   * @defaultValue false
   */
  hash?: boolean | undefined;
}

/** `extraLabels` option: label name → a value function, or `{ value, maxValues, hash }`. */
export type ExtraLabelsOption<Req extends IncomingMessage = IncomingMessage> = Readonly<
  Record<string, ExtraLabelValue<Req> | ExtraLabelOptions<Req>>
>;

/** The value of each extra label for one request, resolved once when it arrives. */
export interface ExtraLabelValues {
  /** Identifies the combination of values (empty without extra labels). */
  readonly key: string;
  /** Label name → value, in the order the labels were declared. */
  readonly labels: Readonly<Record<string, string>>;
}

export const NO_EXTRA_LABELS: ExtraLabelValues = Object.freeze({ key: '', labels: Object.freeze({}) });

/** The value of every label past its cap of distinct values. */
export const OTHER_VALUE = 'other';
export const DEFAULT_MAX_VALUES = 100;
const HASH_LENGTH = 16;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;
// A UTF-16 surrogate without its partner: it would print as bytes that are not UTF-8, so it becomes U+FFFD.
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g;

/** What went wrong reading a label, for `onError`. */
export interface ExtraLabelProblem {
  code: 'extra_label_failed' | 'invalid_extra_label';
  message: string;
  cause?: unknown;
}

/**
 * One extra label: its value function and the values admitted so far. Each distinct value takes a slot until
 * `maxValues` are taken; then new values print as `other`, so a client cannot grow the series count, while every
 * request and token is still counted.
 */
class ExtraLabel {
  private readonly admitted = new Map<string, string>();

  constructor(
    readonly name: string,
    private readonly read: ExtraLabelValue,
    readonly maxValues: number,
    readonly hash: boolean,
  ) {}

  valueFor(req: IncomingMessage, report: (problem: ExtraLabelProblem) => void): string {
    let raw: unknown;
    try {
      raw = this.read(req);
    } catch (error) {
      report({ code: 'extra_label_failed', message: `extraLabels.${this.name} threw; counted with ""`, cause: error });
      return '';
    }
    if (raw === undefined || raw === null) raw = '';
    if (typeof raw !== 'string') {
      report({ code: 'invalid_extra_label', message: `extraLabels.${this.name} returned ${typeof raw}, not a string; counted with ""` });
      return '';
    }
    const known = this.admitted.get(raw);
    if (known !== undefined) return known;
    if (this.admitted.size >= this.maxValues) return OTHER_VALUE;
    const value = this.labelValue(raw);
    if (value !== OTHER_VALUE) this.admitted.set(raw, value);
    return value;
  }

  /** Well-formed Unicode, bounded like a model name (longer values are not kept), or the value's digest. */
  private labelValue(raw: string): string {
    const text = raw.replace(LONE_SURROGATE, '\uFFFD');
    if (this.hash) return text === '' ? '' : createHash('sha256').update(text).digest('hex').slice(0, HASH_LENGTH);
    return text.length > MAX_MODEL_NAME_LENGTH ? OTHER_VALUE : text;
  }
}

/** The `extraLabels` option, checked at creation; resolves each request's values. */
export class ExtraLabels {
  readonly names: readonly string[];
  /** What a second middleware on the same registry must match (functions cannot be compared). */
  readonly settings: readonly [string, number, boolean][];
  private readonly labels: ExtraLabel[];

  constructor(option: unknown) {
    if (option !== undefined && (option === null || typeof option !== 'object' || Array.isArray(option))) {
      configError('option "extraLabels" must be an object such as { tenant: (req) => req.headers["x-tenant"] }');
    }
    this.labels = Object.entries((option ?? {}) as Record<string, unknown>).map(([name, spec]) => checkedLabel(name, spec));
    this.names = this.labels.map((label) => label.name);
    this.settings = this.labels.map((label) => [label.name, label.maxValues, label.hash]);
  }

  /** Every label's value for this request; a failing value function gives `""` and a report. */
  valuesFor(req: IncomingMessage, report: (problem: ExtraLabelProblem) => void): ExtraLabelValues {
    if (this.labels.length === 0) return NO_EXTRA_LABELS;
    const labels: Record<string, string> = {};
    const values: string[] = [];
    for (const label of this.labels) {
      const value = label.valueFor(req, report);
      labels[label.name] = value;
      values.push(value);
    }
    return { key: values.length === 1 ? (values[0] as string) : JSON.stringify(values), labels: Object.freeze(labels) };
  }
}

function checkedLabel(name: string, spec: unknown): ExtraLabel {
  const option = `extraLabels.${name}`;
  if (!LABEL_NAME.test(name) || name.startsWith('__')) {
    configError(`option "${option}": a label name must match [a-zA-Z_][a-zA-Z0-9_]* and not start with "__"`);
  }
  if (BUILT_IN_LABELS.has(name)) configError(`option "${option}": "${name}" is a label of the metrics already; choose another name`);
  if (typeof spec === 'function') return new ExtraLabel(name, spec as ExtraLabelValue, DEFAULT_MAX_VALUES, false);
  if (spec === null || typeof spec !== 'object' || typeof (spec as { value?: unknown }).value !== 'function') {
    configError(`option "${option}" must be a function (req) => string | undefined, or { value, maxValues?, hash? }`);
  }
  const { value, maxValues = DEFAULT_MAX_VALUES, hash = false, ...rest } = spec as ExtraLabelOptions;
  const unknown = Object.keys(rest);
  if (unknown.length > 0) configError(`option "${option}" has unknown field "${unknown[0]}"; known fields are value, maxValues, hash`);
  if (typeof maxValues !== 'number' || !Number.isSafeInteger(maxValues) || maxValues < 1) {
    configError(`option "${option}.maxValues" must be a positive integer (got ${shown(maxValues)})`);
  }
  if (typeof hash !== 'boolean') configError(`option "${option}.hash" must be true or false`);
  return new ExtraLabel(name, value, maxValues, hash);
}
