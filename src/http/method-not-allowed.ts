import type { RequestHandler } from 'express';
import { MethodNotAllowedError } from '../shared/errors.js';

/**
 * Answers 405 (with Allow) for a method that an address mounted before the sessions does not
 * answer. Without it such a request fell through to the session section, whose CSRF check told an
 * operator sending POST /healthz that they were not signed in and that "this form was not sent".
 * OPTIONS is left to Express, which answers it with the address's methods.
 */
export function refuseOtherMethods(allowedByPath: Readonly<Record<string, readonly string[]>>): RequestHandler {
  const paths = new Map(Object.entries(allowedByPath));
  return (req, _res, next) => {
    const allowed = paths.get(req.path);
    if (!allowed || allowed.includes(req.method) || req.method === 'OPTIONS') return next();
    next(new MethodNotAllowedError(req.path, req.method, allowed));
  };
}
