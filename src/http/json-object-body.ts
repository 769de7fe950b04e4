import type { Request, RequestHandler } from 'express';
import { BadRequestError, UnsupportedMediaTypeError } from '../shared/errors.js';

export const NOT_A_JSON_OBJECT_MESSAGE = 'The request body must be a JSON object.';

const READ_BODY_TYPES =
  'The request body must be JSON (Content-Type: application/json) or a form (application/x-www-form-urlencoded)';

/** Bytes were sent (GET and HEAD bodies mean nothing, RFC 9110, and are left alone). */
function hasBodyBytes(req: Request): boolean {
  if (req.method === 'GET' || req.method === 'HEAD') return false;
  return Number(req.headers['content-length']) > 0 || req.headers['transfer-encoding'] !== undefined;
}

/** Its media type alone (no parameters), cut to a length fit for a message. */
function mediaTypeOf(req: Request): string | undefined {
  const type = req.headers['content-type']?.split(';')[0]?.trim().toLowerCase();
  return type ? type.slice(0, 100) : undefined;
}

/** An object of fields: what JSON.parse and the form parser make, not a list or a JsonNumberText. */
export function isFieldObject(value: unknown): value is Record<string, unknown> {
  if (typeof value !== 'object' || value === null) return false;
  const prototype = Object.getPrototypeOf(value);
  return prototype === Object.prototype || prototype === null;
}

/**
 * Every body this app reads is an object of named fields. The JSON parsers take any JSON value
 * (a list, a string, a number, null), so a body that is one is refused here, once, with a 400
 * that says so: a list read field by field came out as "input: must be given once", and
 * `"gov"` as "not valid JSON", which it is. Runs after the body parsers. No body at all
 * (a POST with nothing sent: Express leaves `req.body` undefined) reads as an object of no
 * fields, so each route names the fields it needs ("before: is required"), where it said
 * "input: is required", naming no field. A body the parsers left unread (`req.body` still
 * undefined with bytes sent) came in a type they do not read: a script's `curl -F` (multipart), or
 * JSON labelled text/plain or sent without a Content-Type. It is refused with 415 naming that type;
 * read as no fields, it made the route say that a field it had been sent was missing
 * ("before: is required" for `curl -F before=2026-12-01`).
 */
export const requireObjectBody: RequestHandler = (req, _res, next) => {
  if (req.body === undefined && hasBodyBytes(req)) {
    const type = mediaTypeOf(req);
    next(
      new UnsupportedMediaTypeError(
        `${READ_BODY_TYPES}; it was sent ${type ? `as ${type}` : 'without a Content-Type'}.`,
      ),
    );
    return;
  }
  if (req.body === undefined) req.body = {};
  if (isFieldObject(req.body)) {
    next();
    return;
  }
  next(new BadRequestError(NOT_A_JSON_OBJECT_MESSAGE));
};
