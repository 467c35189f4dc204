import { ChunkShape } from '../../lib/events/chunk-shape';
import type { WireFormatReader } from '../../lib/formats/types';
import { RecordingSink } from './recording-sink';

export interface PlainText {
  text: string;
  reasoning: boolean;
}

/**
 * Reads one event through the chunk shape, as the middleware does, reporting to `sink`; returns the text and
 * reasoning flag the shape learned from it (the event meant "these tokens of this text, nothing else"), or
 * undefined. The shape is then offered the very event it learned from: what it counts there is what it learned.
 */
export function plainTextOf(reader: WireFormatReader, data: string, eventType: string | undefined, sink: RecordingSink = new RecordingSink()): PlainText | undefined {
  const shaped: PlainText[] = [];
  const state = Object.assign(sink, { textDelta: (text: string, reasoning: boolean) => void shaped.push({ text, reasoning }) });
  const shape = new ChunkShape(reader, state);
  shape.readEvent(data, eventType);
  if (!shape.known) return undefined;
  expect(shape.takeEvent(data, eventType)).toBe(true);
  return shaped[0];
}
