import { createHash, timingSafeEqual } from 'node:crypto';
import { configError } from './errors';

/** Credentials a scrape must present: a bearer token, or HTTP basic auth. */
export type MetricsAuth =
  | {
      /**
       * The token Prometheus sends as `Authorization: Bearer <token>` (`authorization.credentials` in its scrape
       * config); a non-empty string.
       * @defaultValue none: required in this form
       */
      bearerToken: string;
    }
  | {
      /**
       * Basic-auth user name (`basic_auth.username` in Prometheus' scrape config); a non-empty string.
       * @defaultValue none: required in this form
       */
      username: string;
      /**
       * Basic-auth password (`basic_auth.password`); a non-empty string.
       * @defaultValue none: required in this form
       */
      password: string;
    };

/** SHA-256 first, so the comparison takes the same time whatever the lengths of the two values. */
function sameSecret(given: string, expected: Buffer): boolean {
  return timingSafeEqual(createHash('sha256').update(given).digest(), expected);
}

/**
 * A secret read from a file or an environment variable often ends in a newline; a client never sends one (header
 * values are trimmed), so such a value would refuse every scrape. Refused at creation instead, naming the fix.
 */
function checkSecret(name: string, value: unknown): string {
  if (typeof value !== 'string' || value.length === 0) configError(`auth.${name} must be a non-empty string`);
  if (value.trim() !== value) configError(`auth.${name} starts or ends with whitespace (a newline from a secret file?); pass it trimmed`);
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f]/.test(value)) configError(`auth.${name} contains a control character, which no HTTP header can carry`);
  return value;
}

/** Canonical base64 only: `Buffer.from(…, 'base64')` would skip any character it does not know. */
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/** A check of the Authorization header against the configured credentials; throws at creation on bad options. */
export function checkCredentials(auth: MetricsAuth): (authorization: string | undefined) => boolean {
  if ('bearerToken' in auth && ('username' in auth || 'password' in auth)) {
    configError('auth takes { bearerToken } or { username, password }, not both');
  }
  if ('bearerToken' in auth) {
    const expected = createHash('sha256').update(checkSecret('bearerToken', auth.bearerToken)).digest();
    return (authorization) => {
      const match = /^Bearer +(.*[^ ]) *$/i.exec(authorization ?? '');
      // Node reads header bytes as Latin-1; Prometheus and curl send a token's UTF-8 bytes.
      return sameSecret(Buffer.from(match?.[1] ?? '', 'latin1').toString('utf8'), expected);
    };
  }
  if (typeof auth.username !== 'string' || typeof auth.password !== 'string' || auth.username.length === 0 || auth.password.length === 0) {
    configError('auth needs { bearerToken } or { username, password }, each a non-empty string');
  }
  const username = checkSecret('username', auth.username);
  const password = checkSecret('password', auth.password);
  // Basic auth splits at the first colon: a username with one could never be sent.
  if (username.includes(':')) configError('auth.username must not contain ":" (basic auth splits the credentials at the first colon)');
  const expected = createHash('sha256').update(`${username}:${password}`).digest();
  return (authorization) => {
    const match = /^Basic +(\S+) *$/i.exec(authorization ?? '');
    const encoded = match?.[1];
    const decoded = encoded !== undefined && BASE64.test(encoded) ? Buffer.from(encoded, 'base64').toString('utf8') : '';
    return sameSecret(decoded, expected);
  };
}
