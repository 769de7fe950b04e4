import type { RequestHandler } from 'express';
import { BadRequestError } from '../shared/errors.js';
import { NUL_CHARACTER_MESSAGE, unstorableTextIn } from '../shared/storable-text.js';

/**
 * No field of this app means a NUL character or an unpaired UTF-16 surrogate, and neither can be
 * stored (storable-text.ts), so a request that carries one is refused here with a 400 before any
 * service or query sees it. Runs after the body parsers.
 *
 * A NUL reaches the URL only percent-encoded, as %00. A lone surrogate reaches a request through
 * a JSON body: %-escapes are decoded as UTF-8, which cannot encode one, so %ED%A0%80 in a query or
 * a form is refused before as not UTF-8 (percent-encoded-utf8.ts), and the router refuses it in a
 * path parameter as a malformed escape (400). The query is still checked, so that another query
 * parser could not let one through.
 */
export const rejectUnstorableText: RequestHandler = (req, _res, next) => {
  const reason = req.originalUrl.includes('%00')
    ? NUL_CHARACTER_MESSAGE
    : (unstorableTextIn(req.body) ?? unstorableTextIn(req.query));
  if (reason !== undefined) {
    next(new BadRequestError(reason));
    return;
  }
  next();
};
