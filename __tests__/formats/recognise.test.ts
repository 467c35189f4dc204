import { responseFormat } from '../../lib/formats/recognise';
import type { RequestFormat } from '../../lib/formats/recognise';
import { aiSdkUiReader } from '../../lib/formats/ai-sdk';
import { anthropicReader } from '../../lib/formats/anthropic';
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

  it('NDJSON is read line by line with the Ollama reader, whatever the label', () => {
    expect(format({ endpoint: 'ollama_generate' }, 'application/x-ndjson')).toEqual({ endpoint: 'ollama_generate', reader: ollamaReader, body: 'lines', streaming: true });
    expect(format({ endpoint: 'local', byOption: true }, 'application/x-ndjson; charset=utf-8')).toMatchObject({ reader: ollamaReader, body: 'lines' });
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
