import type { ResponseOutcome } from '../http/hook';
import type { ErrorType } from '../labels';
import { errorTypeForStatus } from '../labels';

/** What the response showed that bears on how the request ended. */
export interface ResponseSeen {
  streaming: boolean;
  /** The format's end marker arrived. */
  completed: boolean;
  /** An error the body or stream reported. */
  reportedError: ErrorType | undefined;
  /** The body could not be read (compressed beneath us): a missing end marker says nothing then. */
  bodyUnread: boolean;
}

/** The `error_type` a request ended with, or undefined for a success. */
export function errorTypeOf(outcome: ResponseOutcome, statusCode: number, seen: ResponseSeen): ErrorType | undefined {
  if (outcome === 'client_left' || outcome === 'never_sent') return 'cancelled';
  if (outcome === 'timed_out') return 'response_timeout';
  if (statusCode >= 400) return errorTypeForStatus(statusCode);
  if (seen.reportedError !== undefined) return seen.reportedError;
  if (outcome === 'server_aborted') return 'internal';
  // Informational and redirect statuses (a 304 too) are answers, and have no stream to complete.
  if (statusCode < 200 || statusCode >= 300) return undefined;
  // A 2xx stream that ended without its end marker was cut upstream.
  if (seen.streaming && !seen.completed && !seen.bodyUnread) return 'internal';
  return undefined;
}
