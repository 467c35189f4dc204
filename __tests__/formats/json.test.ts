/**
 * The helpers every wire-format reader shares: how an event's or a body's JSON becomes an object or a reported
 * problem, OpenAI's `[DONE]`, the OpenAI-style error object, what counts as a token count, and how a text field is
 * estimated. A reader never throws: each bad input is reported to the sink and yields nothing.
 */
import { asRecord, bodyObject, estimateText, failedWithError, isCount, isRecord, parseJsonObject, parseStreamChunk } from '../../lib/formats/json';
import { RecordingSink } from '../support/recording-sink';

/** Also records the empty strings a reader reports (the request state learns the stream's delta shape from them). */
class SinkWithEmptyText extends RecordingSink {
  emptyTexts = 0;
  emptyText(): void {
    this.emptyTexts++;
  }
}

describe('parseJsonObject', () => {
  it('returns an event object as JSON.parse reads it, reporting nothing', () => {
    const sink = new RecordingSink();
    expect(parseJsonObject('{"a":1,"b":{"c":[2]}}', sink)).toEqual({ a: 1, b: { c: [2] } });
    expect(sink.seen).toEqual([]);
  });

  it('reports invalid JSON as invalid_json and anything but an object as unexpected_shape', () => {
    for (const [data, reason] of [
      ['{"a":', 'invalid_json'],
      ['', 'invalid_json'],
      ['[DONE]', 'invalid_json'],
      ['[1,2]', 'unexpected_shape'],
      ['null', 'unexpected_shape'],
      ['"text"', 'unexpected_shape'],
      ['42', 'unexpected_shape'],
    ] as const) {
      const sink = new RecordingSink();
      expect(parseJsonObject(data, sink)).toBeUndefined();
      expect(sink.seen).toEqual([['malformed', reason]]);
    }
  });
});

describe('parseStreamChunk', () => {
  it('completes the request at [DONE] and yields nothing', () => {
    const sink = new RecordingSink();
    expect(parseStreamChunk('[DONE]', sink)).toBeUndefined();
    expect(sink.seen).toEqual([['completed']]);
  });

  it('parses every other event as parseJsonObject does; only the exact sentinel completes', () => {
    const sink = new RecordingSink();
    expect(parseStreamChunk('{"type":"text-delta"}', sink)).toEqual({ type: 'text-delta' });
    expect(parseStreamChunk(' [DONE]', sink)).toBeUndefined();
    expect(sink.seen).toEqual([['malformed', 'invalid_json']]);
  });
});

describe('bodyObject', () => {
  it('passes an object body through and reports any other body once', () => {
    const sink = new RecordingSink();
    const body = { model: 'm' };
    expect(bodyObject(body, sink)).toBe(body);
    for (const other of [[body], null, 'text', 3, undefined]) expect(bodyObject(other, sink)).toBeUndefined();
    expect(sink.seen).toEqual(Array.from({ length: 5 }, () => ['malformed', 'unexpected_shape']));
  });
});

describe('failedWithError', () => {
  it('fails the request with the error object type, by status or by name', () => {
    const cases: [unknown, string][] = [
      [{ message: 'slow down', code: 429 }, 'overload'],
      [{ code: '404' }, 'not_found'],
      [{ status: 400 }, 'validation'],
      ['plain text error', 'internal'],
      [{}, 'internal'],
    ];
    for (const [error, type] of cases) {
      const sink = new RecordingSink();
      expect(failedWithError({ error }, sink)).toBe(true);
      expect(sink.seen).toEqual([['failed', type]]);
    }
  });

  it('leaves an object without an error (or with a null one) alone', () => {
    const sink = new RecordingSink();
    expect(failedWithError({ model: 'm' }, sink)).toBe(false);
    expect(failedWithError({ error: null }, sink)).toBe(false);
    expect(sink.seen).toEqual([]);
  });
});

describe('isCount', () => {
  it('takes non-negative safe integers only', () => {
    expect([0, 1, 4096, Number.MAX_SAFE_INTEGER].every(isCount)).toBe(true);
    expect([-1, 1.5, Number.NaN, Infinity, Number.MAX_SAFE_INTEGER + 1, '7', null, undefined].some(isCount)).toBe(false);
  });
});

describe('isRecord and asRecord', () => {
  it('take plain objects, not arrays or null', () => {
    expect(isRecord({})).toBe(true);
    expect([[], null, 'x', 1].some(isRecord)).toBe(false);
    const object = { a: 1 };
    expect(asRecord(object)).toBe(object);
    expect(asRecord([object])).toBeUndefined();
  });
});

describe('estimateText', () => {
  it('estimates a non-empty string with the sink', () => {
    const sink = new SinkWithEmptyText();
    expect(estimateText('Hé 🌍', sink)).toBe(4);
    expect(sink.estimated).toEqual(['Hé 🌍']);
    expect(sink.emptyTexts).toBe(0);
  });

  it('counts an empty string as 0 and reports it; anything else is 0 and not reported', () => {
    const sink = new SinkWithEmptyText();
    expect(estimateText('', sink)).toBe(0);
    expect(sink.emptyTexts).toBe(1);
    for (const other of [undefined, null, 3, ['a'], { text: 'a' }]) expect(estimateText(other, sink)).toBe(0);
    expect(sink.emptyTexts).toBe(1);
    expect(sink.estimated).toEqual([]);
  });

  it('does not fail on a sink without emptyText', () => {
    expect(estimateText('', new RecordingSink())).toBe(0);
  });
});
