import express from 'express';
import { Registry } from 'prom-client';
import { dynamoMetrics } from '../../lib/index';
import { listen, postJson } from '../support/http';
import type { RunningServer } from '../support/http';
import { m, value } from '../support/registry-values';
import { chatChunk, DONE, sse } from '../support/streams';

/**
 * Once a stream's chunk shape is known, a plain string write of that shape is counted before any decoding or SSE
 * splitting (response-reader.ts). Every other kind of write must still go through the decoder, so the text counted
 * is always the text the client decodes, whatever mix of strings, encodings and Buffers the handler writes.
 */

const MODEL = 'shortcut-model';

type Write = { chunk: string | Buffer; encoding?: BufferEncoding };

const delta = (content: string): string => sse(chatChunk(MODEL, [{ delta: { content } }]));

/** The content deltas a client reads from the body: what the middleware must have counted, in order. */
function clientDeltas(body: string): string[] {
  const texts: string[] = [];
  for (const block of body.split('\n\n')) {
    const data = block.startsWith('data: ') ? block.slice('data: '.length) : '';
    if (data === '' || data === '[DONE]') continue;
    const chunk = JSON.parse(data) as { choices: { delta: { content?: string } }[] };
    const content = chunk.choices[0]?.delta.content;
    if (content !== undefined && content !== '') texts.push(content);
  }
  return texts;
}

describe('the write shortcut counts what the client decodes', () => {
  let server: RunningServer;
  let registry: Registry;
  let counted: string[];
  let writes: Write[];

  beforeEach(async () => {
    registry = new Registry();
    counted = [];
    const app = express();
    app.use(express.json());
    app.use(
      dynamoMetrics({
        registry,
        countTokens: (text) => {
          counted.push(text);
          return 1;
        },
      }),
    );
    app.post('/v1/chat/completions', (_req, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      for (const write of writes) {
        if (write.encoding === undefined) res.write(write.chunk);
        else res.write(write.chunk as string, write.encoding);
      }
      res.end(DONE);
    });
    server = await listen(app);
  });

  afterEach(() => server.close());

  async function run(): Promise<string> {
    const response = await postJson(server.port, '/v1/chat/completions', { model: MODEL, stream: true, messages: [] });
    expect(response.status).toBe(200);
    // As an EventSource or the openai SDK decodes it: UTF-8, invalid bytes as U+FFFD.
    return new TextDecoder().decode(response.body);
  }

  const prelude: Write[] = [
    { chunk: sse(chatChunk(MODEL, [{ delta: { role: 'assistant', content: '' } }])) },
    { chunk: delta('Hello') }, // the shape is learned here
    { chunk: delta(' world') }, // and taken from here on
  ];

  it('takes other encodings and Buffers through the decoder', async () => {
    writes = [
      ...prelude,
      { chunk: delta(' utf8'), encoding: 'utf8' },
      // Latin-1 bytes of "ö" are not UTF-8: the client sees U+FFFD, and so must the count.
      { chunk: delta(' wörld'), encoding: 'latin1' },
      { chunk: Buffer.from(delta(' bytes')).toString('hex'), encoding: 'hex' },
      { chunk: Buffer.from(delta(' buffer')) },
      { chunk: delta(' after') },
    ];
    const body = await run();
    expect(clientDeltas(body)).toEqual(['Hello', ' world', ' utf8', ' w\uFFFDrld', ' bytes', ' buffer', ' after']);
    expect(counted).toEqual(clientDeltas(body));
    expect(await value(registry, m('output_tokens_total'), { model: MODEL })).toBe(7);
  });

  it('does not count a shaped string write on its own while the decoder holds part of a character', async () => {
    writes = [
      ...prelude,
      // A lead byte left over: the client prefixes the next line with U+FFFD, so "\uFFFDdata" is no data field.
      { chunk: Buffer.concat([Buffer.from(delta(' x')), Buffer.from([0xc3])]) },
      { chunk: delta(' unseen') },
      { chunk: delta(' seen') },
    ];
    const body = await run();
    expect(clientDeltas(body)).toEqual(['Hello', ' world', ' x', ' seen']);
    expect(counted).toEqual(clientDeltas(body));
  });

  it('does not count a shaped string write on its own while a line is still open', async () => {
    writes = [
      ...prelude,
      // A comment line not yet ended: the shaped write that follows only continues the comment.
      { chunk: ': keep-alive' },
      { chunk: delta(' unseen') },
      { chunk: delta(' seen') },
    ];
    const body = await run();
    expect(clientDeltas(body)).toEqual(['Hello', ' world', ' seen']);
    expect(counted).toEqual(clientDeltas(body));
    expect(await value(registry, m('parse_errors_total'))).toBe(0);
  });
});
