/** A configuration mistake, thrown once at creation time with the option's name and how to fix it. */
export function configError(message: string): never {
  throw new TypeError(`express-dynamo-metrics: ${message}`);
}
