import type { Request } from 'express';
import type { AuditContext } from '../modules/audit/audit.service.js';

/** Who is acting and from where, for audit entries. */
export function auditContextOf(req: Request): AuditContext {
  return { actor: req.user?.username ?? 'anonymous', ip: req.ip ?? null, userAgent: req.get('user-agent') ?? null };
}
