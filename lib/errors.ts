/** A configuration mistake, thrown once at creation time with the option's name and how to fix it. */
export function configError(message: string): never {
  throw new TypeError(`express-dynamo-metrics: ${message}`);
}

/** A value as an error message shows it: a string quoted, so that `"10"` is not mistaken for `10`. */
export function shown(value: unknown): string {
  return typeof value === 'string' ? JSON.stringify(value) : String(value);
}
