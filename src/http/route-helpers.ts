import type { Request, RequestHandler } from 'express';
import type { z } from 'zod';
import type { Actor } from '../shared/audit-port.js';
import { BadRequestError, UnauthorizedError } from '../shared/errors.js';

/** The signed-in user as the auth module puts it on the request. */
export interface SessionUser {
  id: number;
  username: string;
  role: 'admin' | 'user';
}

/** The auth module's middlewares; passed in so these routes do not depend on how sign-in works. */
export interface Guards {
  requireUser: RequestHandler;
  requireAdmin: RequestHandler;
}

/** The signed-in user; the guard ran before, so a missing one is a 401, not a crash. */
export function sessionUserOf(req: Request): SessionUser {
  const user = (req as Request & { user?: Partial<SessionUser> }).user;
  if (!user || typeof user.username !== 'string') throw new UnauthorizedError();
  return user as SessionUser;
}

/** Who is acting, for the audit log. */
export function actorOf(req: Request): Actor {
  return { username: sessionUserOf(req).username, ip: req.ip, userAgent: req.get('user-agent')?.slice(0, 512) };
}

/** Parses input with a zod schema; the first problem becomes a 400 naming the field. */
export function parseInput<Schema extends z.ZodType>(schema: Schema, data: unknown): z.output<Schema> {
  const parsed = schema.safeParse(data ?? {});
  if (parsed.success) return parsed.data;
  const issue = parsed.error.issues[0];
  const field = issue?.path.join('.') || 'input';
  throw new BadRequestError(`${field}: ${issue?.message ?? 'is invalid'}`, { field });
}
