/**
 * `extraLabels`: labels of the user's own (a tenant, a team) on every counter that carries `model`, read once per
 * request, bounded by `maxValues` (then `other`), optionally hashed, and never losing a request or a token: each
 * counter summed over the extra labels equals the same counter of a second middleware without them on the same
 * traffic.
 */
import type { IncomingMessage } from 'node:http';
import express from 'express';
import type { Request, Response } from 'express';
import { Registry } from 'prom-client';
import { dynamoMetrics } from '../../lib';
import type { DynamoMetricsError, DynamoMetricsOptions } from '../../lib';
import { createHash } from 'node:crypto';
import { ExtraLabels, MetricsStore } from '../../lib/metrics';
import { resolveOptions } from '../../lib/options';
import { RequestState } from '../../lib/request/request-state';
import { garbageCollector, heapAfterGc, MB } from '../support/gc';
import { listen } from '../support/http';
import type { RunningServer } from '../support/http';
import { OtelHarness } from '../support/otel-reader';
import { seededRandom } from '../support/prng';
import { labelSets, P, samples, value } from '../support/registry-values';
import { pipelined } from '../support/sockets';
import { chatEvent } from '../support/streams';

const SEED = Number(process.env.HARDENING_SEED ?? 20261201);
const header = (name: string) => (req: IncomingMessage): string | undefined => req.headers[name] as string | undefined;

/** The counters that carry `model`, hence the extra labels too. */
const LABELLED_COUNTERS = [
  'output_tokens_total',
  'reasoning_tokens_total',
  'input_tokens_total',
  'requests_total',
  'requests_started_total',
  'requests_finished_total',
  'model_cancellation_total',
  'output_tokens_overcount_total',
];

describe('the extraLabels option', () => {
  const create = (extraLabels: unknown): unknown => dynamoMetrics({ registry: new Registry(), extraLabels } as DynamoMetricsOptions);

  it.each([
    [{ '9lives': header('x') }, /extraLabels\.9lives.*label name/],
    [{ 'te-nant': header('x') }, /label name/],
    [{ __tenant: header('x') }, /"__"/],
    [{ model: header('x') }, /extraLabels\.model.*already/],
    [{ error_type: header('x') }, /already/],
    [{ le: header('x') }, /already/],
    [{ tenant: 'x-tenant' }, /extraLabels\.tenant.*function/],
    [{ tenant: {} }, /extraLabels\.tenant.*function/],
    [{ tenant: { value: header('x'), maxValues: 0 } }, /extraLabels\.tenant\.maxValues/],
    [{ tenant: { value: header('x'), maxValues: 1.5 } }, /maxValues.*positive integer/],
    [{ tenant: { value: header('x'), hash: 'yes' } }, /extraLabels\.tenant\.hash/],
    [{ tenant: { value: header('x'), max: 3 } }, /unknown field "max"/],
    [[header('x')], /"extraLabels" must be an object/],
    ['tenant', /"extraLabels" must be an object/],
  ])('refuses %p at creation with a TypeError naming the option', (extraLabels, message) => {
    expect(() => create(extraLabels)).toThrow(TypeError);
    expect(() => create(extraLabels)).toThrow(message);
  });

  it('accepts a function or { value, maxValues, hash }, and none at all', () => {
    expect(() => create({ tenant: header('x-tenant'), team: { value: header('x-team'), maxValues: 5, hash: true } })).not.toThrow();
    expect(() => create({})).not.toThrow();
  });

  it('warns when a second middleware on the same registry asks for other extra labels', () => {
    const registry = new Registry();
    const warn = jest.spyOn(process, 'emitWarning').mockImplementation(() => undefined);
    try {
      dynamoMetrics({ registry, extraLabels: { tenant: header('x-tenant') } });
      dynamoMetrics({ registry, extraLabels: { tenant: header('x-other') } });
      expect(warn).not.toHaveBeenCalled();
      dynamoMetrics({ registry, extraLabels: { tenant: { value: header('x-tenant'), maxValues: 3 } } });
      expect(warn).toHaveBeenCalledTimes(1);
      expect(String(warn.mock.calls[0]?.[0])).toContain('extraLabels');
    } finally {
      warn.mockRestore();
    }
  });
});

describe('ExtraLabels values', () => {
  const requestWith = (tenant: string): IncomingMessage => ({ headers: { 'x-tenant': tenant } }) as unknown as IncomingMessage;
  const noReport = (): void => undefined;

  it('keeps the first maxValues distinct values ("" among them), then counts new ones as other, old ones as themselves', () => {
    const labels = new ExtraLabels({ tenant: { value: header('x-tenant'), maxValues: 3 } });
    const value = (tenant: string): string | undefined => labels.valuesFor(requestWith(tenant), noReport).labels.tenant;
    expect(['a', '', 'b', 'c', 'd', 'a', 'b', ''].map(value)).toEqual(['a', '', 'b', 'other', 'other', 'a', 'b', '']);
  });

  it('hashes to the first 16 hex digits of the SHA-256, the same in every process', () => {
    const labels = new ExtraLabels({ tenant: { value: header('x-tenant'), hash: true } });
    const expected = createHash('sha256').update('acme').digest('hex').slice(0, 16);
    expect(labels.valuesFor(requestWith('acme'), noReport).labels.tenant).toBe(expected);
    expect(labels.valuesFor(requestWith(''), noReport).labels.tenant).toBe('');
  });

  it('prints lone surrogates as U+FFFD and a value longer than a model name as other, without taking a slot', () => {
    const labels = new ExtraLabels({ tenant: { value: header('x-tenant'), maxValues: 1 } });
    expect(labels.valuesFor(requestWith('x'.repeat(257)), noReport).labels.tenant).toBe('other');
    expect(labels.valuesFor(requestWith('a\uD800b'), noReport).labels.tenant).toBe('a\uFFFDb');
    expect(labels.valuesFor(requestWith('z'), noReport).labels.tenant).toBe('other');
  });

  it('keys each combination of values apart, including values that contain separators', () => {
    const labels = new ExtraLabels({ a: header('a'), b: header('b') });
    const key = (a: string, b: string): string => labels.valuesFor({ headers: { a, b } } as unknown as IncomingMessage, noReport).key;
    expect(key('x,', 'y')).not.toBe(key('x', ',y'));
    expect(key('x', 'y')).toBe(key('x', 'y'));
  });
});

describe('extra labels over HTTP', () => {
  let server: RunningServer | undefined;
  afterEach(async () => {
    await server?.close();
    server = undefined;
  });

  /**
   * One app, two middlewares on two registries: `labelled` with the given extra labels, `plain` without, so every
   * counter of `labelled` summed over its extra labels must equal `plain`'s. Streams when the body says so (tokens
   * estimated from the text), else a JSON body with usage.
   */
  async function start(extraLabels: DynamoMetricsOptions['extraLabels']): Promise<{ labelled: Registry; plain: Registry; errors: DynamoMetricsError[] }> {
    const labelled = new Registry();
    const plain = new Registry();
    const errors: DynamoMetricsError[] = [];
    const app = express();
    app.use(express.json());
    app.use(dynamoMetrics({ registry: labelled, extraLabels, onError: (error) => errors.push(error) }));
    app.use(dynamoMetrics({ registry: plain }));
    app.post('/v1/chat/completions', (req: Request, res: Response) => {
      const { model, stream } = req.body as { model: string; stream?: boolean };
      if (req.headers['x-status'] === '503') {
        res.status(503).json({ error: { message: 'busy' } });
      } else if (stream === true) {
        res.writeHead(200, { 'Content-Type': 'text/event-stream' });
        res.write(chatEvent(model, 'hello there'));
        res.write(chatEvent(model, undefined, 'length'));
        res.end('data: [DONE]\n\n');
      } else {
        res.json({
          id: 'c1',
          object: 'chat.completion',
          model,
          choices: [{ index: 0, message: { role: 'assistant', content: 'hi' }, finish_reason: 'stop' }],
          usage: { prompt_tokens: 3, completion_tokens: 2, total_tokens: 5, completion_tokens_details: { reasoning_tokens: 1 } },
        });
      }
    });
    server = await listen(app);
    return { labelled, plain, errors };
  }

  /** Every labelled counter summed over the extra labels equals the counter without them, series by series. */
  async function expectNothingLost(labelled: Registry, plain: Registry, extraNames: string[]): Promise<void> {
    for (const suffix of LABELLED_COUNTERS) {
      const byBuiltInLabels = new Map<string, number>();
      for (const sample of await samples(labelled, `${P}_${suffix}`)) {
        const labels = { ...(sample.labels as Record<string, string>) };
        for (const name of extraNames) delete labels[name];
        const key = JSON.stringify(labels);
        byBuiltInLabels.set(key, (byBuiltInLabels.get(key) ?? 0) + sample.value);
      }
      const expected = new Map((await samples(plain, `${P}_${suffix}`)).map((sample) => [JSON.stringify(sample.labels), sample.value]));
      expect({ suffix, totals: Object.fromEntries(byBuiltInLabels) }).toEqual({ suffix, totals: Object.fromEntries(expected) });
    }
  }

  it('10,000 requests with random tenants: at most maxValues + 1 values per label, every token counted, memory flat', async () => {
    const random = seededRandom(SEED);
    const { labelled, plain, errors } = await start({
      tenant: { value: header('x-tenant'), maxValues: 40 },
      team: { value: header('x-team'), maxValues: 5, hash: true },
    });
    const requestsOf = (count: number): { path: string; body: unknown; headers: Record<string, string> }[] =>
      Array.from({ length: count }, () => {
        const stream = random() < 0.5;
        const headers: Record<string, string> = {
          'x-tenant': `tenant-${Math.floor(random() * 1e9)}`,
          'x-team': `team-${Math.floor(random() * 20)}`,
        };
        if (random() < 0.05) headers['x-status'] = '503';
        return { path: '/v1/chat/completions', body: { model: `m${Math.floor(random() * 3)}`, stream, messages: [] }, headers };
      });
    const send = async (count: number): Promise<void> => {
      const requests = requestsOf(count);
      const connections = 8;
      const per = Math.ceil(count / connections);
      await Promise.all(Array.from({ length: connections }, (_, c) => pipelined(server!.port, requests.slice(c * per, (c + 1) * per))));
    };
    const gc = garbageCollector();

    await send(2_000);
    await labelled.metrics();
    const heapAfterWarmUp = heapAfterGc(gc);
    await send(8_000);
    await labelled.metrics();
    const heapGrowth = heapAfterGc(gc) - heapAfterWarmUp;

    expect(await value(plain, `${P}_requests_total`)).toBe(10_000);
    expect(await value(labelled, `${P}_requests_total`)).toBe(10_000);
    for (const suffix of LABELLED_COUNTERS.filter((s) => s !== 'model_cancellation_total' && s !== 'output_tokens_overcount_total')) {
      const sets = await labelSets(labelled, `${P}_${suffix}`);
      const tenants = new Set(sets.map((labels) => labels.tenant));
      const teams = new Set(sets.map((labels) => labels.team));
      expect({ suffix, tenants: tenants.size <= 41, teams: teams.size <= 6 }).toEqual({ suffix, tenants: true, teams: true });
      expect(tenants.has('other')).toBe(true);
      expect([...teams].every((team) => team === 'other' || /^[0-9a-f]{16}$/.test(String(team)))).toBe(true);
    }
    await expectNothingLost(labelled, plain, ['tenant', 'team']);
    const text = await labelled.metrics();
    expect(text).not.toMatch(/team="team-/);
    // Histograms and gauges stay per model.
    expect(text).not.toMatch(/(_bucket|_sum|_count|inflight_requests|queued_requests)\{[^}]*tenant=/);
    expect(errors).toEqual([]);
    // The admitted values and the series are bounded, so more requests do not grow the heap.
    expect(heapGrowth).toBeLessThan(4 * MB);
  }, 120_000);

  it('counts a request whose label function throws or returns a non-string under "", and reports it', async () => {
    const { labelled, plain, errors } = await start({
      tenant: (req) => {
        const value = req.headers['x-tenant'];
        if (value === 'boom') throw new Error('no tenant store');
        if (value === 'number') return 42 as unknown as string;
        return value as string | undefined;
      },
    });
    for (const tenant of ['boom', 'number', 'acme', undefined]) {
      const headers: Record<string, string> = tenant === undefined ? {} : { 'x-tenant': tenant };
      const response = await postWithHeaders(server!.port, { model: 'm', messages: [] }, headers);
      expect(response).toBe(200);
    }
    expect(errors.map((error) => error.code)).toEqual(['extra_label_failed', 'invalid_extra_label']);
    expect(errors[0]?.message).toContain('extraLabels.tenant');
    expect(await value(labelled, `${P}_output_tokens_total`, { model: 'm', tenant: '' })).toBe(6);
    expect(await value(labelled, `${P}_output_tokens_total`, { model: 'm', tenant: 'acme' })).toBe(2);
    await expectNothingLost(labelled, plain, ['tenant']);
  });

  it('gives the same bounded values to the OpenTelemetry meter, as attributes', async () => {
    const otel = new OtelHarness();
    const registry = new Registry();
    const app = express();
    app.use(express.json());
    app.use(dynamoMetrics({ registry, meter: otel.meter, extraLabels: { tenant: { value: header('x-tenant'), maxValues: 1, hash: true } } }));
    app.post('/v1/chat/completions', (_req: Request, res: Response) => {
      res.json({ model: 'm', choices: [{ index: 0, message: { content: 'hi' }, finish_reason: 'stop' }], usage: { prompt_tokens: 3, completion_tokens: 2 } });
    });
    server = await listen(app);
    await postWithHeaders(server.port, { model: 'm', messages: [] }, { 'x-tenant': 'acme' });
    await postWithHeaders(server.port, { model: 'm', messages: [] }, { 'x-tenant': 'globex' });
    const tenants = (await otel.histogram('gen_ai.server.request.duration')).map((point) => point.attributes.tenant);
    expect(tenants.sort()).toEqual(['other', expect.stringMatching(/^[0-9a-f]{16}$/)].sort());
    expect(tenants).not.toContain('acme');
  });

  it('prints the labels after the built-in ones, and a long value as other', async () => {
    const { labelled } = await start({ tenant: header('x-tenant') });
    await postWithHeaders(server!.port, { model: 'm', messages: [] }, { 'x-tenant': 'acme' });
    await postWithHeaders(server!.port, { model: 'm', messages: [] }, { 'x-tenant': 'x'.repeat(300) });
    const text = await labelled.metrics();
    expect(text).toContain(`${P}_requests_total{model="m",endpoint="chat_completions",request_type="unary",status="success",error_type="",tenant="acme"} 1\n`);
    expect(text).toContain(`${P}_output_tokens_total{model="m",tenant="other"} 2\n`);
    expect(text).toContain(`${P}_requests_finished_total{model="m",finish_reason="stop",tenant="acme"} 1\n`);
  });
});

it('gives each request state its extra-label values, for recorders besides Prometheus', () => {
  const options = resolveOptions({ registry: new Registry(), extraLabels: { tenant: header('x-tenant'), team: { value: header('x-team'), hash: true } } });
  const store = MetricsStore.for(options);
  const req = { headers: { 'x-tenant': 'acme', 'x-team': 'blue' } } as unknown as IncomingMessage;
  const extraLabels = store.extraLabels.valuesFor(req, () => undefined);
  const state = new RequestState({ store, endpoint: 'chat_completions', estimate: () => 1, malformed: () => undefined, extraLabels }, undefined);
  expect(state.extraLabels).toEqual({ tenant: 'acme', team: expect.stringMatching(/^[0-9a-f]{16}$/) });
  expect(Object.isFrozen(state.extraLabels)).toBe(true);
  state.end('finished', 200);
});

async function postWithHeaders(port: number, body: unknown, headers: Record<string, string>): Promise<number> {
  const count = await pipelined(port, [{ path: '/v1/chat/completions', body, headers }]);
  return count === 1 ? 200 : 0;
}
