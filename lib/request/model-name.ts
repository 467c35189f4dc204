import { UNKNOWN_MODEL } from '../labels';
import type { ModelLabels } from '../labels';

/**
 * Decides the model label a request is counted under, once: from the request body when a parser ran, else from
 * the first response event that names one, else `unknown_model`. A name without a label of its own yet waits for
 * the response's status (see `ModelLabels`): admitted when the response succeeds, `unknown_model` when it fails.
 */
export class ModelName {
  /** Whether the response succeeded (2xx head, or tokens written); unknown before the head. */
  succeeded: boolean | undefined;
  /** The response's own `model` field, the first one it gave. */
  fromResponse: string | undefined;
  /** A name not admitted to a label of its own yet. */
  private waiting: string | undefined;

  constructor(private readonly labels: ModelLabels) {}

  get isWaiting(): boolean {
    return this.waiting !== undefined;
  }

  /** A name for the request: its label when that is decided, else undefined (the name waits). */
  labelFor(name: string): string | undefined {
    const label = this.succeeded === true ? this.labels.admit(name) : this.labels.labelOf(name);
    if (label === undefined && this.succeeded !== false) {
      this.waiting = name;
      return undefined;
    }
    this.waiting = undefined;
    return label ?? UNKNOWN_MODEL;
  }

  /** The waiting name's label, now that the status may decide it; undefined while it still waits, or without one. */
  retry(): string | undefined {
    return this.waiting === undefined ? undefined : this.labelFor(this.waiting);
  }
}
