import type { RequestHandler } from 'express';
import { BadRequestError } from '../shared/errors.js';

export const NOT_A_JSON_OBJECT_MESSAGE = 'The request body must be a JSON object.';

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
 * "input: is required", naming no field.
 */
export const requireObjectBody: RequestHandler = (req, _res, next) => {
  if (req.body === undefined) req.body = {};
  if (isFieldObject(req.body)) {
    next();
    return;
  }
  next(new BadRequestError(NOT_A_JSON_OBJECT_MESSAGE));
};
