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

/** A check of the Authorization header against the configured credentials; throws at creation on bad options. */
export function checkCredentials(auth: MetricsAuth): (authorization: string | undefined) => boolean {
  if ('bearerToken' in auth) {
    if (typeof auth.bearerToken !== 'string' || auth.bearerToken.length === 0) configError('auth.bearerToken must be a non-empty string');
    const expected = createHash('sha256').update(auth.bearerToken).digest();
    return (authorization) => {
      const match = /^Bearer\s+(.+)$/i.exec(authorization ?? '');
      return sameSecret(match?.[1]?.trim() ?? '', expected);
    };
  }
  if (typeof auth.username !== 'string' || typeof auth.password !== 'string' || auth.username.length === 0 || auth.password.length === 0) {
    configError('auth needs { bearerToken } or { username, password }, each a non-empty string');
  }
  const expected = createHash('sha256').update(`${auth.username}:${auth.password}`).digest();
  return (authorization) => {
    const match = /^Basic\s+(.+)$/i.exec(authorization ?? '');
    const decoded = match?.[1] ? Buffer.from(match[1].trim(), 'base64').toString('utf8') : '';
    return sameSecret(decoded, expected);
  };
}
