import { ResponseTextDecoder } from '../../lib/http/decode';
import { seededRandom } from '../support/prng';
import { cutAtRandom } from '../support/streams';

const TEXT = 'data: ünï 你好世界 🌍🚀 Ω ✓\r\n\r\n'.repeat(3);

function decodeAll(pieces: readonly (string | Buffer)[], encoding?: BufferEncoding): string {
  const decoder = new ResponseTextDecoder();
  let text = '';
  for (const piece of pieces) text += decoder.write(piece, encoding);
  return text + decoder.end();
}

describe('ResponseTextDecoder', () => {
  it('takes UTF-8 strings as they are', () => {
    expect(decodeAll([TEXT])).toBe(TEXT);
    expect(decodeAll([TEXT], 'utf8')).toBe(TEXT);
    expect(decodeAll([TEXT], 'utf-8' as BufferEncoding)).toBe(TEXT);
  });

  it('decodes Buffers and Uint8Arrays', () => {
    expect(decodeAll([Buffer.from(TEXT)])).toBe(TEXT);
    const decoder = new ResponseTextDecoder();
    expect(decoder.write(new Uint8Array(Buffer.from('abc')), undefined)).toBe('abc');
  });

  it('keeps a character split across Buffers, at every byte offset', () => {
    const bytes = Buffer.from(TEXT);
    for (let cut = 1; cut < bytes.length; cut++) {
      expect(decodeAll([bytes.subarray(0, cut), bytes.subarray(cut)])).toBe(TEXT);
    }
  });

  it('gives the same text for random byte cuts (fixed seed), inside UTF-8 characters too', () => {
    const random = seededRandom(7);
    const bytes = Buffer.from(TEXT);
    let insideCharacter = 0;
    for (let round = 0; round < 200; round++) {
      const pieces = cutAtRandom(bytes, 1 + Math.floor(random() * 20), random);
      for (const piece of pieces.slice(1)) if (((piece[0] as number) & 0xc0) === 0x80) insideCharacter++;
      expect(decodeAll(pieces)).toBe(TEXT);
    }
    expect(insideCharacter).toBeGreaterThan(0);
  });

  it('completes a character left open by a Buffer when the rest comes as a string', () => {
    const bytes = Buffer.from('a🌍b');
    // The emoji's first two bytes as a Buffer; later text written as strings goes through the same decoder.
    expect(decodeAll([bytes.subarray(0, 3), bytes.subarray(3).toString('latin1')], 'latin1')).toBe('a🌍b');
    expect(decodeAll([Buffer.from('x'), 'ünï'])).toBe('xünï');
  });

  it('decodes strings written with another encoding the way the client will see them', () => {
    const latin1 = Buffer.from('data: ünï\n\n', 'utf8').toString('latin1');
    expect(decodeAll([latin1], 'latin1')).toBe('data: ünï\n\n');
    const base64 = Buffer.from('data: 你好\n\n').toString('base64');
    expect(decodeAll([base64], 'base64')).toBe('data: 你好\n\n');
    const hex = Buffer.from('data: ok\n\n').toString('hex');
    expect(decodeAll([hex], 'hex')).toBe('data: ok\n\n');
  });

  it('strips a leading byte-order mark, as a string or as bytes split across writes', () => {
    expect(decodeAll(['\ufeffdata: a\n\n'])).toBe('data: a\n\n');
    const bytes = Buffer.from('\ufeffdata: a\n\n');
    expect(decodeAll([bytes.subarray(0, 1), bytes.subarray(1, 2), bytes.subarray(2)])).toBe('data: a\n\n');
  });

  it('strips only the first byte-order mark, not one later in the stream', () => {
    expect(decodeAll(['data: a\n\n', '\ufeffdata: b\n\n'])).toBe('data: a\n\n\ufeffdata: b\n\n');
  });

  it('strips a BOM that follows empty writes', () => {
    expect(decodeAll(['', Buffer.alloc(0), '\ufeffdata: a\n\n'])).toBe('data: a\n\n');
  });

  it('turns invalid UTF-8 into U+FFFD as the client does', () => {
    const bytes = Buffer.from([0x64, 0xff, 0x61]);
    expect(decodeAll([bytes])).toBe(bytes.toString('utf8'));
    expect(decodeAll([bytes])).toBe('d\ufffda');
  });

  it('flushes an incomplete character at the end', () => {
    const bytes = Buffer.from('🌍').subarray(0, 2);
    expect(decodeAll([bytes])).toBe(bytes.toString('utf8'));
  });

  it('reads nothing from values that are not text', () => {
    const decoder = new ResponseTextDecoder();
    expect(decoder.write(undefined, undefined)).toBe('');
    expect(decoder.write(42, undefined)).toBe('');
    expect(decoder.write({}, undefined)).toBe('');
  });

  it('accepts a callback in the encoding position (res.write(chunk, cb))', () => {
    const decoder = new ResponseTextDecoder();
    expect(decoder.write('data: x\n\n', () => undefined)).toBe('data: x\n\n');
  });
});
