import type { RequestHandler } from 'express';
import { UnsupportedMediaTypeError } from '../shared/errors.js';

/** The charset a Content-Type names (`charset="UTF-16"` reads utf-16), or undefined when it names none. */
export function charsetOf(contentType: string): string | undefined {
  for (const parameter of contentType.split(';').slice(1)) {
    const [name, ...value] = parameter.split('=');
    if (name?.trim().toLowerCase() !== 'charset') continue;
    return value
      .join('=')
      .trim()
      .replace(/^"(.*)"$/, '$1')
      .toLowerCase();
  }
  return undefined;
}

/** The 415's message for a body in `charset`, cut to a length fit for a message. */
export function unreadCharsetMessage(charset: string): string {
  if (charset === '') return "The request body's Content-Type gives an empty charset: send the body as UTF-8.";
  return `The request body is in the charset ${charset.slice(0, 40)}, which is not read here: send it as UTF-8.`;
}

/**
 * Refuses (415), before the body parsers read it, a JSON body or a form whose Content-Type names
 * another charset than UTF-8, as the payment webhooks refuse theirs: bodies are read in UTF-8 alone
 * (RFC 8259, 8.1 for JSON; docs/security.md). The parsers took more: JSON in any charset beginning
 * "utf-" (UTF-16 was decoded and acted on), the rate routes' JSON in any charset at all, and forms in
 * iso-8859-1. No charset, or `utf-8` in any case, is read.
 */
export const refuseBodyCharsetNotUtf8: RequestHandler = (req, _res, next) => {
  if (!req.is(['application/json', 'application/x-www-form-urlencoded'])) {
    next();
    return;
  }
  const charset = charsetOf(req.get('content-type') ?? '');
  if (charset !== undefined && charset !== 'utf-8') {
    next(new UnsupportedMediaTypeError(unreadCharsetMessage(charset)));
    return;
  }
  next();
};
