import type { IncomingMessage } from 'node:http';
import { Registry, register as globalRegistry } from 'prom-client';
import { defaultBuckets } from '../lib/metrics/buckets';
import { DEFAULTS, resolveOptions } from '../lib/options';
import type { BucketOptions, DynamoMetricsOptions } from '../lib/options';
import type { HistogramName } from '../lib/metrics/definitions';

const req = (url: string, method = 'POST'): IncomingMessage => ({ url, method }) as IncomingMessage;

/** True when two unions hold the same members. */
type SameMembers<A, B> = [Exclude<A, B> | Exclude<B, A>] extends [never] ? true : false;

it('documents in BucketOptions exactly the histograms of the definitions table (checked by the type checker)', () => {
  const sameHistograms: SameMembers<keyof BucketOptions, HistogramName> = true;
  expect(sameHistograms).toBe(true);
});

describe('resolveOptions', () => {
  const savedPrefix = process.env.DYN_METRICS_PREFIX;
  afterEach(() => {
    if (savedPrefix === undefined) delete process.env.DYN_METRICS_PREFIX;
    else process.env.DYN_METRICS_PREFIX = savedPrefix;
  });

  it('fills every default', () => {
    delete process.env.DYN_METRICS_PREFIX;
    const resolved = resolveOptions(undefined);
    expect(resolved.registry).toBe(globalRegistry);
    expect(resolved.prefix).toBe('dynamo_frontend');
    expect(resolved.models).toBeUndefined();
    expect(resolved.maxModels).toBe(100);
    expect(resolved.maxEventBytes).toBe(DEFAULTS.maxEventBytes);
    expect(resolved.maxBodyBytes).toBe(DEFAULTS.maxBodyBytes);
    expect(resolved.buckets.timeToFirstToken).toEqual(defaultBuckets('timeToFirstToken'));
    expect(resolved.onError).toBeUndefined();
  });

  it('takes the prefix from DYN_METRICS_PREFIX when the option is absent, and the option over the environment', () => {
    process.env.DYN_METRICS_PREFIX = 'from_env';
    expect(resolveOptions({}).prefix).toBe('from_env');
    expect(resolveOptions({ prefix: 'from_option' }).prefix).toBe('from_option');
  });

  it('names DYN_METRICS_PREFIX when the prefix it gives is invalid', () => {
    process.env.DYN_METRICS_PREFIX = 'bad-x';
    expect(() => resolveOptions({})).toThrow(/: DYN_METRICS_PREFIX "bad-x" is not a valid/);
    expect(() => resolveOptions({ prefix: 'bad-y' })).toThrow(/: option "prefix" "bad-y" is not a valid/);
  });

  it('raises the default cap to hold a longer allow-list', () => {
    const names = Array.from({ length: 150 }, (_, i) => `model-${i}`);
    expect(resolveOptions({ models: names }).maxModels).toBe(150);
    expect(resolveOptions({ models: ['a'] }).maxModels).toBe(100);
  });

  it('keeps the given registry, models and bounds', () => {
    const registry = new Registry();
    const resolved = resolveOptions({
      registry,
      models: ['a', 'b'],
      maxModels: 5,
      buckets: { timeToFirstToken: [0.1, 1] },
      maxEventBytes: 10,
      maxBodyBytes: 20,
    });
    expect(resolved.registry).toBe(registry);
    expect([...(resolved.models ?? [])]).toEqual(['a', 'b']);
    expect(resolved.maxModels).toBe(5);
    expect(resolved.buckets.timeToFirstToken).toEqual([0.1, 1]);
    expect(resolved.buckets.requestDuration).toEqual(defaultBuckets('requestDuration'));
    expect(resolved.maxEventBytes).toBe(10);
    expect(resolved.maxBodyBytes).toBe(20);
  });

  it('does not alias a caller-owned bounds array', () => {
    const bounds = [0.1, 1];
    const resolved = resolveOptions({ buckets: { timeToFirstToken: bounds } });
    bounds.push(2);
    expect(resolved.buckets.timeToFirstToken).toEqual([0.1, 1]);
  });

  it('selects LLM requests by path by default and leaves OPTIONS/HEAD alone', () => {
    const { endpoint } = resolveOptions({});
    expect(endpoint(req('/v1/chat/completions'))).toBe('chat_completions');
    expect(endpoint(req('/health', 'GET'))).toBeUndefined();
    expect(endpoint(req('/v1/chat/completions', 'OPTIONS'))).toBeUndefined();
    expect(endpoint(req('/v1/chat/completions', 'HEAD'))).toBeUndefined();
  });

  it('uses a custom endpoint(req); false, null, undefined and "" leave the request alone', () => {
    const answers: unknown[] = ['generate', false, null, undefined, ''];
    let call = 0;
    const { endpoint } = resolveOptions({ endpoint: () => answers[call++] as string | undefined });
    expect(endpoint(req('/x'))).toBe('generate');
    expect(endpoint(req('/x'))).toBeUndefined();
    expect(endpoint(req('/x'))).toBeUndefined();
    expect(endpoint(req('/x'))).toBeUndefined();
    expect(endpoint(req('/x'))).toBeUndefined();
  });

  const invalid: [string, unknown, RegExp][] = [
    ['the middleware itself instead of options', (): void => undefined, /dynamoMetrics\(\)/],
    ['a non-object', 42, /options must be an object/],
    ['null', null, /options must be an object/],
    ['an unknown option', { prefx: 'x' }, /unknown option "prefx"/],
    ['a registry that is not a Registry', { registry: {} }, /"registry"/],
    ['an invalid prefix', { prefix: 'has-dash' }, /prefix/],
    ['an empty prefix', { prefix: '' }, /prefix/],
    ['models that are not strings', { models: ['a', 3] }, /"models"/],
    ['models that is not an array', { models: 'a' }, /"models"/],
    ['an array', [], /options must be an object/],
    ['models with a name too long to be a label', { models: ['a', 'x'.repeat(257)] }, /"models" lists "x{40}…", which is no usable label/],
    ['models with a lone surrogate', { models: ['\ud800'] }, /"models" lists .*no usable label/],
    ['models longer than maxModels', { models: ['a', 'b', 'c'], maxModels: 2 }, /"models" lists 3 names, more than maxModels \(2\)/],
    ['a null registry', { registry: null }, /"registry" must be a prom-client Registry/],
    ['models with an empty name', { models: ['a', ''] }, /"models" must hold model names only \(got "" at index 1\)/],
    ['maxModels 0', { maxModels: 0 }, /"maxModels"/],
    ['maxModels 1.5', { maxModels: 1.5 }, /"maxModels"/],
    ['maxEventBytes negative', { maxEventBytes: -1 }, /"maxEventBytes"/],
    ['maxBodyBytes a string', { maxBodyBytes: '10' }, /"maxBodyBytes" must be a positive integer \(got "10"\)/],
    ['an unknown histogram in buckets', { buckets: { ttft: [1] } }, /"buckets.ttft"/],
    ['decreasing bounds', { buckets: { requestDuration: [2, 1] } }, /"buckets.requestDuration"/],
    ['empty bounds', { buckets: { requestDuration: [] } }, /"buckets.requestDuration"/],
    ['buckets that is not an object', { buckets: 3 }, /"buckets"/],
    ['endpoint not a function', { endpoint: '/v1' }, /"endpoint"/],
    ['onError not a function', { onError: true }, /"onError"/],
    ['countTokens not a function', { countTokens: 4 }, /"countTokens"/],
  ];

  it.each(invalid)('throws a TypeError naming the problem for %s', (_what, options, message) => {
    let thrown: unknown;
    try {
      resolveOptions(options as DynamoMetricsOptions);
    } catch (error) {
      thrown = error;
    }
    expect(thrown).toBeInstanceOf(TypeError);
    expect((thrown as TypeError).message).toMatch(message);
  });
});
