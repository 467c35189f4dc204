/**
 * Malformed input: a bad event or an oversized one or body is skipped and counted, the response untouched, counting
 * resumes; an onError that throws changes nothing.
 */
import type { DynamoMetricsError } from '../../lib/index';
import { CHAT, describeOnEachExpress, writeSse } from '../support/express-suite';
import { postJson } from '../support/http';
import { contentChunk, DONE, finishChunk, roleChunk } from '../support/streams';

describeOnEachExpress((t) => {
  const { chatRoute, ended, gauges, get, start } = t;

  it('skips a malformed JSON event: counted in parse_errors_total, reported to onError, response untouched, counting resumes', async () => {
    const errors: DynamoMetricsError[] = [];
    const pieces = [roleChunk('m'), contentChunk('m', 'ab'), 'data: {"choices": [{"delta": {"content": "xyz"\n\n', contentChunk('m', 'cd'), finishChunk('m'), DONE];
    const port = await start(chatRoute((_req, res) => writeSse(res, pieces)), { metrics: { onError: (e) => errors.push(e) } });
    const response = await postJson(port, CHAT, { model: 'm', stream: true });
    expect(response.body.toString()).toBe(pieces.join(''));
    await ended();
    expect(await get('parse_errors_total', { endpoint: 'chat_completions', reason: 'invalid_json' })).toBe(1);
    expect(await get('output_tokens_total', { model: 'm' })).toBe(4);
    expect(await get('requests_total', { model: 'm', status: 'success' })).toBe(1);
    expect(errors.map((e) => e.code)).toEqual(['invalid_json']);
    expect(errors[0]).toBeInstanceOf(Error);
  });

  it('skips an event larger than maxEventBytes and counts the next one', async () => {
    const errors: DynamoMetricsError[] = [];
    const pieces = [roleChunk('m'), contentChunk('m', 'ab'), contentChunk('m', 'x'.repeat(5000)), contentChunk('m', 'cd'), finishChunk('m'), DONE];
    const port = await start(chatRoute((_req, res) => writeSse(res, pieces)), { metrics: { maxEventBytes: 1024, onError: (e) => errors.push(e) } });
    const response = await postJson(port, CHAT, { model: 'm', stream: true });
    expect(response.body.toString()).toBe(pieces.join(''));
    await ended();
    expect(await get('parse_errors_total', { endpoint: 'chat_completions', reason: 'event_too_large' })).toBe(1);
    expect(await get('output_tokens_total', { model: 'm' })).toBe(4);
    expect(await get('requests_total', { model: 'm', status: 'success' })).toBe(1);
    expect(errors.map((e) => e.code)).toEqual(['event_too_large']);
  });

  it('skips a unary body larger than maxBodyBytes but still counts the request', async () => {
    const errors: DynamoMetricsError[] = [];
    const body = { object: 'chat.completion', model: 'm', choices: [{ index: 0, message: { content: 'y'.repeat(4000) }, finish_reason: 'stop' }], usage: { prompt_tokens: 1, completion_tokens: 50, total_tokens: 51 } };
    const port = await start(
      chatRoute((_req, res) => {
        res.json(body);
      }),
      { metrics: { maxBodyBytes: 1024, onError: (e) => errors.push(e) } },
    );
    const response = await postJson(port, CHAT, { model: 'm' });
    expect(JSON.parse(response.body.toString())).toEqual(body);
    await ended();
    expect(await get('parse_errors_total', { endpoint: 'chat_completions', reason: 'body_too_large' })).toBe(1);
    expect(await get('requests_total', { model: 'm', request_type: 'unary' })).toBe(1);
    expect(errors.map((e) => e.code)).toEqual(['body_too_large']);
    expect(await gauges('m')).toEqual([0, 0, 0]);
  });

  it('survives an onError that throws', async () => {
    const port = await start(chatRoute((_req, res) => writeSse(res, ['data: nope\n\n', contentChunk('m', 'ab'), finishChunk('m'), DONE])), {
      metrics: {
        onError: () => {
          throw new Error('careless onError');
        },
      },
    });
    const response = await postJson(port, CHAT, { model: 'm', stream: true });
    expect(response.status).toBe(200);
    await ended();
    expect(await get('output_tokens_total', { model: 'm' })).toBe(2);
    expect(await get('parse_errors_total')).toBe(1);
  });
});
