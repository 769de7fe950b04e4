import os from 'node:os';
import type { AuditContext } from '../modules/audit/audit.service.js';
import { CLI_ACTOR } from '../modules/audit/audit-actors.js';

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

/** Who ran a CLI, as the process knows it (cliAuditContext reads it; a test passes its own). */
export interface CliInvoker {
  /** osUserOf(): the OS user the process runs as. */
  osUser: string;
  /** SUDO_USER, as src/config/ reads it (config.sudoUser). */
  sudoUser: string | undefined;
  /** process.geteuid(); undefined where there is none (Windows). */
  effectiveUid: number | undefined;
}

/**
 * What an audit entry of a CLI says of who ran it: the OS user (`osUser`) and, under sudo, the user
 * who invoked it (`sudoUser`): run as root with SUDO_USER set, as sudo does. Under sudo the OS user
 * is root, which says nothing of who typed the command. SUDO_USER in a process that is not root is
 * one left in the environment (`sudo -u`, `su` without `-`) and is left out: it would name someone
 * other than the user the process runs as.
 */
export function cliActorDetailsOf(invoker: CliInvoker): { osUser: string; sudoUser?: string } {
  const sudoUser = invoker.sudoUser?.trim();
  return sudoUser && invoker.effectiveUid === 0 ? { osUser: invoker.osUser, sudoUser } : { osUser: invoker.osUser };
}

/**
 * Who a CLI acts as in the audit log: the actor `cli`, as every CLI entry before, so the actor
 * filter and the entries already written read as they did, with the OS user who ran it in each
 * entry's details (`osUser`, and `sudoUser` under sudo). As `cli` alone, the log could not say which
 * operator ran a command. `sudoUser` comes from the config (SUDO_USER; the environment is read in
 * src/config/ only).
 */
export function cliAuditContext(
  tool: string,
  {
    sudoUser,
    osUser = osUserOf(),
    effectiveUid = process.geteuid?.(),
  }: Partial<CliInvoker> & Pick<CliInvoker, 'sudoUser'>,
): AuditContext {
  return {
    actor: CLI_ACTOR,
    ip: null,
    userAgent: tool,
    actorDetails: cliActorDetailsOf({ osUser, sudoUser, effectiveUid }),
  };
}
