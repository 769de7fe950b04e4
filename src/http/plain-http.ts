import type { IncomingMessage } from 'node:http';
import type { Request } from 'express';
import type { AppConfig } from '../config/config.js';
import type { Logger } from '../shared/logger.js';

/**
 * What the sign-in page says to a request that came over plain HTTP where HTTPS is required.
 * The session cookie is Secure there, and express-session does not send a Secure cookie on a
 * request it sees as plain HTTP: a sign-in would check the password and redirect to a page
 * that, without the cookie, sends the user straight back to the sign-in form, saying nothing.
 */
export const PLAIN_HTTP_SIGN_IN_MESSAGE =
  'Signing in needs HTTPS, and this request came over plain HTTP: open this site with https://. ' +
  'Operators: behind a TLS proxy, set TRUST_PROXY so the app sees https; ' +
  'for a trial over plain HTTP, set REQUIRE_HTTPS=0 (docs/operations.md, "HTTPS").';

/**
 * The same refusal for a request that came through a proxy TRUST_PROXY trusts: TRUST_PROXY is
 * set, so telling the operator to set it sends them looking in the wrong place. The proxy did not
 * say the request was https: it must send X-Forwarded-Proto: https.
 */
export const TRUSTED_PROXY_WITHOUT_HTTPS_MESSAGE =
  'Signing in needs HTTPS, and this request came over plain HTTP: open this site with https://. ' +
  'Operators: the proxy in front, which TRUST_PROXY trusts, did not send X-Forwarded-Proto: https; ' +
  'make it send that header (nginx: proxy_set_header X-Forwarded-Proto $scheme) (docs/operations.md, "HTTPS").';

/** What to tell a request refused by isPlainHttpRefused, naming what the operator must change. */
export function plainHttpSignInMessageFor(req: Request): string {
  const isTrusted = req.app.get('trust proxy fn') as
    | ((address: string | undefined, hop: number) => boolean)
    | undefined;
  return isTrusted?.(req.socket.remoteAddress, 0) ? TRUSTED_PROXY_WITHOUT_HTTPS_MESSAGE : PLAIN_HTTP_SIGN_IN_MESSAGE;
}

/**
 * True when HTTPS is required (REQUIRE_HTTPS) and this request is plain HTTP as Express sees
 * it: through a proxy only when TRUST_PROXY names it and it sends X-Forwarded-Proto: https.
 */
export function isPlainHttpRefused(req: Request, isHttpsRequired: boolean): boolean {
  return isHttpsRequired && !req.secure;
}

/**
 * Says at start-up when sign-in cannot work as configured (HTTPS required, but the app serves
 * only plain HTTP itself and trusts no proxy to say otherwise), or works without HTTPS's
 * protections in production. True when it warned.
 */
export function warnAboutPlainHttp(
  logger: Pick<Logger, 'warn'>,
  config: Pick<AppConfig, 'isProduction' | 'isHttpsRequired' | 'trustProxy'>,
): boolean {
  if (config.isHttpsRequired && config.trustProxy === false) {
    logger.warn(
      'REQUIRE_HTTPS is on (the production default) and TRUST_PROXY is off: the app serves plain HTTP ' +
        'itself, so no one can sign in until it runs behind a TLS proxy named in TRUST_PROXY that sends ' +
        'X-Forwarded-Proto: https. For a trial over plain HTTP set REQUIRE_HTTPS=0 (docs/operations.md, "HTTPS")',
    );
    return true;
  }
  if (config.isProduction && !config.isHttpsRequired) {
    logger.warn(
      'REQUIRE_HTTPS=0 in production: cookies lack Secure and responses carry no HSTS, so over plain ' +
        'HTTP anyone on the network path can read a session. Only for a trial, or behind a TLS terminator ' +
        'that cannot send X-Forwarded-Proto (docs/operations.md, "HTTPS")',
    );
    return true;
  }
  return false;
}

/**
 * Writes X-Forwarded-Proto in lower case, before anything reads it. A URI scheme is case-insensitive
 * (RFC 3986 3.1), but Express compares the header to 'https' as sent, so a trusted proxy that wrote
 * `HTTPS` was read as plain HTTP: no Secure cookie, and every sign-in refused as "this request came
 * over plain HTTP". Only a proxy named in TRUST_PROXY is believed at all, as before.
 */
export function lowerCaseForwardedProto(req: IncomingMessage): void {
  const proto = req.headers['x-forwarded-proto'];
  if (typeof proto === 'string' && proto !== proto.toLowerCase())
    req.headers['x-forwarded-proto'] = proto.toLowerCase();
}
