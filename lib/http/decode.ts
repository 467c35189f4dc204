import { StringDecoder } from 'node:string_decoder';

/**
 * Turns what a handler passes to `res.write`/`res.end` into text, the way the client will decode it.
 *
 * Strings in UTF-8 are taken as they are (the common case for handlers that build SSE lines). Buffers go through
 * one `StringDecoder` per response so a character split across writes survives; once a Buffer has been seen, later
 * strings go through the same decoder so that a character left incomplete by the Buffer is completed in order.
 * Invalid UTF-8 becomes U+FFFD, as in the client's decoder.
 */
export class ResponseTextDecoder {
  private decoder: StringDecoder | undefined;
  private started = false;

  write(chunk: unknown, encoding: unknown): string {
    let text: string;
    if (typeof chunk === 'string') {
      text =
        this.decoder === undefined && (encoding === undefined || encoding === 'utf8' || encoding === 'utf-8' || typeof encoding === 'function')
          ? chunk
          : this.decodeBytes(Buffer.from(chunk, typeof encoding === 'string' ? (encoding as BufferEncoding) : 'utf8'));
    } else if (chunk instanceof Uint8Array) {
      text = this.decodeBytes(chunk);
    } else {
      return '';
    }
    if (!this.started && text.length > 0) {
      this.started = true;
      // A leading byte-order mark is not part of the first field name (eventsource-parser 3 drops that event).
      if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
    }
    return text;
  }

  end(): string {
    return this.decoder ? this.decoder.end() : '';
  }

  private decodeBytes(bytes: Uint8Array): string {
    if (this.decoder === undefined) this.decoder = new StringDecoder('utf8');
    return this.decoder.write(bytes as Buffer);
  }
}
