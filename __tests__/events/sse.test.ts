import { SseParser } from '../../lib/events/sse';
import { seededRandom } from '../support/prng';
import { LINE_ENDS } from '../support/streams';

interface Seen {
  events: [string, string | undefined][];
  tooLarge: number;
}

function parserFor(maxEventLength = 1 << 20): { parser: SseParser; seen: Seen } {
  const seen: Seen = { events: [], tooLarge: 0 };
  const parser = new SseParser(
    {
      onEvent: (data, eventType) => seen.events.push([data, eventType]),
      onEventTooLarge: () => {
        seen.tooLarge++;
      },
    },
    maxEventLength,
  );
  return { parser, seen };
}

function parseWhole(text: string, maxEventLength?: number): Seen {
  const { parser, seen } = parserFor(maxEventLength);
  parser.feed(text);
  parser.end();
  return seen;
}

const STREAM = [
  ': comment line\n',
  '\n',
  'data: one\n\n',
  'event: message_start\r\ndata: {"a":1}\r\n\r\n',
  'data:no-space\r\rdata: two lines\ndata: second\n\n',
  'id: 7\nretry: 100\ndata:  leading space kept\n\n',
  'data\n\n', // a field name without colon: empty data
  'event: only-type\n\n', // no data: no event
  ':\n\n',
  'data: ünï 你好 🌍\r\n\r\n',
  'data: [DONE]\n\n',
].join('');

const EXPECTED: [string, string | undefined][] = [
  ['one', undefined],
  ['{"a":1}', 'message_start'],
  ['no-space', undefined],
  ['two lines\nsecond', undefined],
  [' leading space kept', undefined],
  ['', undefined],
  ['ünï 你好 🌍', undefined],
  ['[DONE]', undefined],
];

describe('SseParser', () => {
  it('parses LF, CRLF and CR line ends, comments, multi-line data, event types, and ignores id/retry', () => {
    expect(parseWhole(STREAM)).toEqual({ events: EXPECTED, tooLarge: 0 });
  });

  it('gives the same events whatever the split (character by character)', () => {
    const { parser, seen } = parserFor();
    for (const char of STREAM) parser.feed(char);
    parser.end();
    expect(seen).toEqual({ events: EXPECTED, tooLarge: 0 });
  });

  it('gives the same events for random cuts, including between \\r and \\n (fixed seed)', () => {
    const random = seededRandom(20261127);
    let crLfSplits = 0;
    for (let round = 0; round < 300; round++) {
      const { parser, seen } = parserFor();
      const cuts = new Set<number>();
      const wanted = 1 + Math.floor(random() * 16);
      while (cuts.size < wanted) cuts.add(1 + Math.floor(random() * (STREAM.length - 1)));
      let start = 0;
      for (const cut of [...cuts].sort((a, b) => a - b)) {
        if (STREAM[cut - 1] === '\r' && STREAM[cut] === '\n') crLfSplits++;
        parser.feed(STREAM.slice(start, cut));
        start = cut;
      }
      parser.feed(STREAM.slice(start));
      parser.end();
      expect(seen).toEqual({ events: EXPECTED, tooLarge: 0 });
    }
    expect(crLfSplits).toBeGreaterThan(0);
  });

  it('treats a CR at the end of one piece and a LF at the start of the next as one line end', () => {
    const { parser, seen } = parserFor();
    parser.feed('data: a\r');
    parser.feed('\n\r');
    parser.feed('\ndata: b\r\n\r\n');
    parser.end();
    expect(seen.events).toEqual([
      ['a', undefined],
      ['b', undefined],
    ]);
  });

  it('still reads an event left without its blank line when the stream ends', () => {
    expect(parseWhole('data: one\n\ndata: truncated').events).toEqual([
      ['one', undefined],
      ['truncated', undefined],
    ]);
  });

  it('drops an event larger than the limit, reports it once, and reads the next event', () => {
    const big = 'x'.repeat(200);
    const seen = parseWhole(`data: small\n\ndata: ${big}\ndata: ${big}\n\ndata: after\n\n`, 100);
    expect(seen.tooLarge).toBe(1);
    expect(seen.events).toEqual([
      ['small', undefined],
      ['after', undefined],
    ]);
  });

  it('drops an oversized event that arrives in small pieces without buffering it', () => {
    const { parser, seen } = parserFor(100);
    parser.feed('data: ');
    for (let i = 0; i < 100; i++) parser.feed('y'.repeat(10));
    parser.feed('\n\ndata: after\n\n');
    parser.end();
    expect(seen.tooLarge).toBe(1);
    expect(seen.events).toEqual([['after', undefined]]);
  });

  it.each(LINE_ENDS)('keeps dropping an oversized event until its blank line, not until the end of its long line (%s)', (_name, eol) => {
    const { parser, seen } = parserFor(100);
    parser.feed('data: ');
    for (let i = 0; i < 30; i++) parser.feed('y'.repeat(10));
    parser.feed(`y${eol}`); // the long line ends; the event has not
    parser.feed(`data: same-event${eol}${eol}`);
    parser.feed(`data: after${eol}${eol}`);
    parser.end();
    expect(seen.tooLarge).toBe(1);
    expect(seen.events).toEqual([['after', undefined]]);
  });

  it.each(LINE_ENDS)('does not take the line end of a dropped long line, arriving at the start of the next piece, for a blank line (%s)', (_name, eol) => {
    const { parser, seen } = parserFor(100);
    parser.feed(`data: ${'x'.repeat(150)}`);
    parser.feed('yyy');
    parser.feed(`${eol}data: same-event${eol}${eol}data: after${eol}${eol}`);
    parser.end();
    expect(seen.tooLarge).toBe(1);
    expect(seen.events).toEqual([['after', undefined]]);
  });

  it('splits a CRLF between pieces of a dropped long line without ending the event', () => {
    const { parser, seen } = parserFor(100);
    parser.feed(`data: ${'x'.repeat(150)}\r`);
    parser.feed('\ndata: same-event\r\n\r\ndata: after\r\n\r\n');
    parser.end();
    expect(seen.tooLarge).toBe(1);
    expect(seen.events).toEqual([['after', undefined]]);
  });

  it('reports a long event of many data lines written in small pieces once', () => {
    const { parser, seen } = parserFor(1000);
    const event = `${'data: '.concat('z'.repeat(90), '\n').repeat(100)}\n`;
    for (let i = 0; i < event.length; i += 64) parser.feed(event.slice(i, i + 64));
    parser.feed('data: after\n\n');
    parser.end();
    expect(seen.tooLarge).toBe(1);
    expect(seen.events).toEqual([['after', undefined]]);
  });

  it('reports an oversized event that ends the stream once, and nothing else', () => {
    const { parser, seen } = parserFor(50);
    parser.feed(`data: ${'q'.repeat(200)}`);
    parser.end();
    expect(seen.tooLarge).toBe(1);
    expect(seen.events).toEqual([]);
  });

  it('stays linear when one long event arrives in tiny pieces', () => {
    const { parser, seen } = parserFor(8 << 20);
    const piece = 'z'.repeat(64);
    const started = process.hrtime.bigint();
    parser.feed('data: ');
    for (let i = 0; i < 32768; i++) parser.feed(piece); // 2 MiB
    parser.feed('\n\n');
    const elapsedMs = Number(process.hrtime.bigint() - started) / 1e6;
    expect(seen.events).toHaveLength(1);
    expect(seen.events[0]?.[0].length).toBe(2 << 20);
    expect(elapsedMs).toBeLessThan(2000);
  });
});
