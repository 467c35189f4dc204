import { ResponseTextDecoder } from '../../lib/http/decode';
import { LineSplitter } from '../../lib/events/lines';
import { seededRandom } from '../support/prng';
import { cutAt, cutAtRandom } from '../support/streams';

interface Seen {
  lines: string[];
  tooLarge: number;
}

function splitterFor(maxLineLength = 1 << 20): { splitter: LineSplitter; seen: Seen } {
  const seen: Seen = { lines: [], tooLarge: 0 };
  const splitter = new LineSplitter(
    {
      onEvent: (data, eventType) => {
        expect(eventType).toBeUndefined();
        seen.lines.push(data);
      },
      onEventTooLarge: () => {
        seen.tooLarge++;
      },
    },
    maxLineLength,
  );
  return { splitter, seen };
}

/** Bytes in pieces through the response's UTF-8 decoder and the splitter, as the response reader feeds them. */
function splitPieces(pieces: Buffer[], maxLineLength?: number): Seen {
  const { splitter, seen } = splitterFor(maxLineLength);
  const decoder = new ResponseTextDecoder();
  for (const piece of pieces) splitter.feed(decoder.write(piece, undefined));
  const rest = decoder.end();
  if (rest.length > 0) splitter.feed(rest);
  splitter.end();
  return seen;
}

const LINES = ['{"model":"m","message":{"content":"Hé"},"done":false}', '{"response":"wörld 🌍 你好","done":false}', '{"done":true,"eval_count":3}'];

describe('LineSplitter', () => {
  it('splits LF and CRLF lines, trims trailing whitespace, skips blank lines', () => {
    const seen = splitPieces([Buffer.from(`${LINES[0]}\n\r\n   \n${LINES[1]}\r\n\n${LINES[2]} \t\r\n`)]);
    expect(seen.lines).toEqual(LINES);
  });

  it('reads a last line without its LF when the body ends', () => {
    expect(splitPieces([Buffer.from(`${LINES[0]}\n${LINES[2]}`)]).lines).toEqual([LINES[0], LINES[2]]);
  });

  it('gives the same lines however the bytes are cut: inside a UTF-8 character, between CR and LF, anywhere', () => {
    const bytes = Buffer.from(LINES.map((line) => `${line}\r\n`).join(''));
    // Every cut between a CR and its LF, and inside every multi-byte character, at once.
    const crlf = [...bytes.keys()].filter((i) => bytes[i] === 0x0a);
    const insideCharacters = [...bytes.keys()].filter((i) => ((bytes[i] as number) & 0xc0) === 0x80);
    expect(splitPieces(cutAt(bytes, [...crlf, ...insideCharacters])).lines).toEqual(LINES);
    const random = seededRandom(3);
    for (let round = 0; round < 300; round++) {
      expect(splitPieces(cutAtRandom(bytes, 1 + Math.floor(random() * 40), random)).lines).toEqual(LINES);
    }
  });

  it('a line longer than the limit is reported once and skipped to its end; the next line is read', () => {
    const long = `{"response":"${'x'.repeat(500)}"}`;
    const bytes = Buffer.from(`${LINES[0]}\n${long}\n${LINES[1]}\n`);
    const random = seededRandom(9);
    for (let round = 0; round < 100; round++) {
      const seen = splitPieces(cutAtRandom(bytes, 1 + Math.floor(random() * 30), random), 100);
      expect(seen.tooLarge).toBe(1);
      expect(seen.lines).toEqual([LINES[0], LINES[1]]);
    }
  });

  it('a line that never ends holds no more than the limit, however much arrives', () => {
    const { splitter, seen } = splitterFor(1000);
    for (let i = 0; i < 10_000; i++) splitter.feed('y'.repeat(100));
    expect(seen.tooLarge).toBe(1);
    splitter.feed(`\n${LINES[2]}\n`);
    splitter.end();
    expect(seen.lines).toEqual([LINES[2]]);
  });
});
