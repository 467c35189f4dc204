import { aiSdkStreamLabel, responseFormat } from '../../lib/formats/recognise';
import type { RequestFormat } from '../../lib/formats/recognise';
import { aiSdkUiReader } from '../../lib/formats/ai-sdk';
import { aiSdkDataReader } from '../../lib/formats/ai-sdk-data';
import { anthropicReader } from '../../lib/formats/anthropic';
import { FormatByContent } from '../../lib/formats/by-content';
import { geminiReader } from '../../lib/formats/gemini';
import { ollamaReader } from '../../lib/formats/ollama';
import { openAiReader } from '../../lib/formats/openai';

const headers =
  (values: Record<string, string>) =>
  (name: string): string | undefined =>
    values[name];

function format(request: Partial<RequestFormat> & { endpoint: string }, contentType: string, extra: Record<string, string> = {}, status = 200) {
  return responseFormat({ byOption: false, url: undefined, ...request }, status, contentType, headers({ 'content-type': contentType, ...extra }));
}

const AI_SDK = { 'x-vercel-ai-ui-message-stream': 'v1' };
const AI_SDK_DATA = { 'x-vercel-ai-data-stream': 'v1' };

describe('responseFormat', () => {
  it('keeps the path-chosen format for the existing formats: their reader, SSE or JSON', () => {
    expect(format({ endpoint: 'chat_completions' }, 'text/event-stream')).toEqual({ endpoint: 'chat_completions', reader: openAiReader, body: 'events', streaming: true });
    expect(format({ endpoint: 'anthropic_messages' }, 'application/json')).toEqual({ endpoint: 'anthropic_messages', reader: anthropicReader, body: 'json', streaming: false });
    expect(format({ endpoint: 'chat_completions' }, 'text/html').body).toBe('ignore');
    expect(format({ endpoint: 'chat_completions' }, 'application/json', {}, 204).body).toBe('ignore');
  });

  it('an AI SDK UI message stream is one on any path, relabelled unless the endpoint option chose the label', () => {
    expect(format({ endpoint: 'ollama_chat' }, 'text/event-stream', AI_SDK)).toEqual({ endpoint: 'ai_sdk_ui', reader: aiSdkUiReader, body: 'events', streaming: true });
    expect(format({ endpoint: 'my_label', byOption: true }, 'text/event-stream', AI_SDK)).toMatchObject({ endpoint: 'my_label', reader: aiSdkUiReader });
    // The header on something that is not an event stream is not the UI message stream.
    expect(format({ endpoint: 'ollama_chat' }, 'application/json', AI_SDK).reader).toBe(ollamaReader);
  });

  it('an AI SDK 4 data stream is read line by line on any path, relabelled unless the endpoint option chose the label', () => {
    const data = { endpoint: 'ai_sdk_data', reader: aiSdkDataReader, body: 'lines', streaming: true };
    expect(format({ endpoint: 'ollama_chat' }, 'text/plain; charset=utf-8', AI_SDK_DATA)).toEqual(data);
    expect(format({ endpoint: 'chat_completions' }, '', AI_SDK_DATA)).toEqual(data);
    expect(format({ endpoint: 'my_label', byOption: true }, 'text/plain', AI_SDK_DATA)).toMatchObject({ endpoint: 'my_label', reader: aiSdkDataReader, body: 'lines' });
    // The header on SSE or NDJSON, or on a response without a body, is not the data stream.
    expect(format({ endpoint: 'chat_completions' }, 'text/event-stream', AI_SDK_DATA).reader).toBe(openAiReader);
    expect(format({ endpoint: 'ollama_chat' }, 'application/x-ndjson', AI_SDK_DATA).reader).toBeInstanceOf(FormatByContent);
    expect(format({ endpoint: 'chat_completions' }, 'text/plain', AI_SDK_DATA, 204)).toMatchObject({ endpoint: 'chat_completions', body: 'ignore' });
    // Nor is an error page or a redirect an error handler sent after the route had set the header.
    expect(format({ endpoint: 'chat_completions' }, 'text/html; charset=utf-8', AI_SDK_DATA, 500)).toMatchObject({ endpoint: 'chat_completions', body: 'ignore' });
    expect(format({ endpoint: 'chat_completions' }, 'application/json', AI_SDK_DATA, 400)).toMatchObject({ reader: openAiReader, body: 'json' });
    expect(format({ endpoint: 'chat_completions' }, 'text/plain', AI_SDK_DATA, 302).reader).toBe(openAiReader);
    expect(format({ endpoint: 'chat_completions' }, 'text/html', AI_SDK_DATA).reader).toBe(openAiReader);
  });

  it('aiSdkStreamLabel: which AI SDK stream a head declares, for a request on a path of no format', () => {
    const label = (contentType: string, extra: Record<string, string>, status = 200) => aiSdkStreamLabel(status, headers({ 'content-type': contentType, ...extra }));
    expect(label('text/event-stream', AI_SDK)).toBe('ai_sdk_ui');
    expect(label('text/plain; charset=utf-8', AI_SDK_DATA)).toBe('ai_sdk_data');
    expect(label('application/json', AI_SDK)).toBeUndefined();
    expect(label('text/event-stream', AI_SDK_DATA)).toBeUndefined();
    expect(label('text/plain', AI_SDK_DATA, 304)).toBeUndefined();
    expect(label('text/html', AI_SDK_DATA, 500)).toBeUndefined();
    expect(label('text/plain', {})).toBeUndefined();
  });

  it('NDJSON is read line by line, in the format its lines show, whatever the label', () => {
    expect(format({ endpoint: 'ollama_generate' }, 'application/x-ndjson')).toEqual({ endpoint: 'ollama_generate', reader: expect.any(FormatByContent), body: 'lines', streaming: true });
    expect(format({ endpoint: 'local', byOption: true }, 'application/x-ndjson; charset=utf-8')).toMatchObject({ reader: expect.any(FormatByContent), body: 'lines' });
    expect(format({ endpoint: 'chat_completions' }, 'application/x-ndjson')).toMatchObject({ endpoint: 'chat_completions', reader: expect.any(FormatByContent), body: 'lines' });
  });

  it("SSE on Ollama's routes is read in the format its events show (Ollama never sends SSE)", () => {
    expect(format({ endpoint: 'ollama_chat' }, 'text/event-stream')).toMatchObject({ endpoint: 'ollama_chat', reader: expect.any(FormatByContent), body: 'events' });
    expect(format({ endpoint: 'ollama_generate' }, 'application/json').reader).toBe(ollamaReader);
  });

  it('a label of the endpoint option that names none of ours is read by the path format, else as OpenAI', () => {
    expect(format({ endpoint: 'gemini', byOption: true, url: '/v1beta/models/g:streamGenerateContent?alt=sse' }, 'text/event-stream').reader).toBe(geminiReader);
    expect(format({ endpoint: 'chat', byOption: true, url: '/llm' }, 'text/event-stream').reader).toBe(openAiReader);
    expect(format({ endpoint: 'ollama_chat', byOption: true, url: '/v1/chat/completions' }, 'application/json').reader).toBe(ollamaReader);
  });

  it('plain text is the AI SDK text protocol on Ollama paths (2xx) and under the ai_sdk_text label; else not read', () => {
    expect(format({ endpoint: 'ollama_chat' }, 'text/plain; charset=utf-8')).toMatchObject({ endpoint: 'ai_sdk_text', body: 'text', streaming: true });
    expect(format({ endpoint: 'ai_sdk_text', byOption: true }, 'text/plain; charset=utf-8')).toMatchObject({ endpoint: 'ai_sdk_text', body: 'text' });
    expect(format({ endpoint: 'ollama_chat' }, 'text/plain', {}, 404)).toMatchObject({ endpoint: 'ollama_chat', body: 'ignore' });
    expect(format({ endpoint: 'ollama_chat', byOption: true }, 'text/plain')).toMatchObject({ body: 'ignore' });
    expect(format({ endpoint: 'chat_completions' }, 'text/plain')).toMatchObject({ endpoint: 'chat_completions', body: 'ignore' });
  });
});
