import { performance } from 'node:perf_hooks';

/**
 * When a streamed response's tokens came: the time to its first token-bearing chunk, and the gap before each later
 * one (Dynamo's inter-token latency: the gap divided by the chunk's n tokens, observed n times; zero-token chunks
 * do not reset the clock).
 *
 * The chunks of one write arrived at the same moment, so while the response reader reads a write the clock is
 * read once for all of them: a proxy's writes often hold several events.
 */
export class TokenTiming {
  /** No token-bearing chunk yet: the request is queued, as Dynamo's gauges count it. */
  queued = true;
  /** Seconds from arrival to the first token-bearing chunk, once there was one. */
  timeToFirstToken: number | undefined;
  private lastTokenAt = 0;
  /** Writes read so far (0: not read through the response reader, so every chunk reads the clock). */
  private writes = 0;
  /** The write the clock was last read for, and what it read. */
  private timedWrite = 0;
  private writeTime = 0;

  constructor(readonly arrivedAt: number) {}

  /** The response reader reads another write: the chunks in it arrived together. */
  newWrite(): void {
    this.writes++;
  }

  /**
   * A chunk of `tokens` tokens (more than 0): returns the seconds since the previous token-bearing chunk for an
   * inter-token latency sample, or -1 for the first one, whose time to first token is then set.
   */
  tokenChunk(): number {
    const now = this.now();
    const previous = this.lastTokenAt;
    this.lastTokenAt = now;
    if (!this.queued) return (now - previous) / 1000;
    this.queued = false;
    this.timeToFirstToken = (now - this.arrivedAt) / 1000;
    return -1;
  }

  /** Seconds since the request arrived. */
  elapsed(): number {
    return (performance.now() - this.arrivedAt) / 1000;
  }

  private now(): number {
    if (this.writes === 0) return performance.now();
    if (this.timedWrite !== this.writes) {
      this.timedWrite = this.writes;
      this.writeTime = performance.now();
    }
    return this.writeTime;
  }
}
