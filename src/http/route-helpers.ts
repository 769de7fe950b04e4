import type { Request } from 'express';
import { UnauthorizedError } from '../shared/errors.js';

/** The signed-in user; the guard ran before, so a missing one is a 401, not a crash. */
export function sessionUserOf(req: Request): Express.User {
  if (!req.user) throw new UnauthorizedError();
  return req.user;
}
