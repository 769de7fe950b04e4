import os from 'node:os';
import type { AuditContext } from '../modules/audit/audit.service.js';

/**
 * The OS user running this process, as its audit entries name it: the login name, or `uid:<uid>`
 * when the uid has no entry in the passwd database (os.userInfo throws: a container started with
 * `--user 1234`), `unknown` without a uid (Windows).
 */
export function osUserOf(
  userInfo: () => { username: string } = () => os.userInfo(),
  uidOf: () => number | undefined = () => process.getuid?.(),
): string {
  try {
    return userInfo().username;
  } catch {
    const uid = uidOf();
    return uid === undefined ? 'unknown' : `uid:${uid}`;
  }
}

/**
 * Who a CLI acts as in the audit log: the actor `cli`, as every CLI entry before, so the actor
 * filter and the entries already written read as they did, with the OS user who ran it in each
 * entry's details (`osUser`). As `cli` alone, the log could not say which operator ran a command.
 */
export function cliAuditContext(tool: string, osUser = osUserOf()): AuditContext {
  return { actor: 'cli', ip: null, userAgent: tool, actorDetails: { osUser } };
}
