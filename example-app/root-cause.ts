/** The innermost reason of an error chain: `connect ECONNREFUSED 127.0.0.1:3000` rather than `fetch failed`. */
export function rootCause(error: unknown): string {
  let current = error;
  while (current instanceof Error && current.cause !== undefined) current = current.cause;
  return current instanceof Error ? current.message : String(current);
}
