/**
 * Whether the account ingestion reads Slurm's accounting as may read every user's jobs. With
 * `PrivateData=jobs` in slurmdbd.conf, slurmdbd gives a user who is not an operator or administrator
 * (nor root, nor the SlurmUser) their own jobs alone: `sacct --allusers` and slurmrestd's
 * `/slurmdb/.../jobs` then answer with that user's jobs, with no error and exit 0 (seen on the lab,
 * test/fixtures/slurm/22.05/private-data-jobs), and every other user's jobs go unread and unbilled.
 * Pure: reads what sacctmgr printed and what slurmrestd answered.
 */

/** The administrator levels that may read every job whatever PrivateData says. */
const PRIVILEGED_LEVELS = new Set(['operator', 'administrator']);

/**
 * slurmdbd's PrivateData, from `sacctmgr show configuration` (its "SlurmDBD configuration:" part: the
 * first part is slurm.conf's, which slurmctld applies, not slurmdbd), lower-cased, `[]` for `none`;
 * null when the text does not say.
 */
export function readDbdPrivateData(configuration: string): string[] | null {
  const dbdPart = configuration.split(/^SlurmDBD configuration:\s*$/m)[1];
  if (dbdPart === undefined) return null;
  const match = /^PrivateData\s*=\s*(.*)$/m.exec(dbdPart);
  if (!match) return null;
  const value = (match[1] ?? '').trim().toLowerCase();
  return value === '' || value === 'none' || value === '(null)'
    ? []
    : value
        .split(',')
        .map((part) => part.trim())
        .filter(Boolean);
}

/** The SlurmUser's uid, from `sacctmgr show configuration` (`SlurmUserId = slurm(64030)`), or null. */
export function readSlurmUserId(configuration: string): number | null {
  const match = /^SlurmUserId\s*=\s*[^(\n]*\((\d+)\)\s*$/m.exec(configuration);
  return match ? Number(match[1]) : null;
}

/** Whether slurmdbd keeps jobs private (PrivateData names `jobs`). */
export function isJobsPrivate(privateData: readonly string[]): boolean {
  return privateData.includes('jobs');
}

/**
 * A user's administrator level from `sacctmgr --noheader --parsable2 show user NAME format=user,adminlevel`
 * (`alice|None`), or null when the user is not listed (not in the accounting database at all).
 */
export function readSacctmgrAdminLevel(output: string, user: string): string | null {
  for (const line of output.split('\n')) {
    const [name, level] = line.split('|');
    if (name?.trim() === user && level !== undefined) return level.trim();
  }
  return null;
}

/**
 * The accounts a user coordinates, from `sacctmgr --noheader --parsable2 show user NAME withcoord
 * format=user,adminlevel,coordinators` (`carol|None|chemistry,physics`, `billing|Operator|`): as the lab's
 * 22.05 printed them (test/fixtures/slurm/22.05/coordinators), comma-separated in name order, accounts
 * made under a coordinated one since included; empty when none or not listed.
 */
export function readSacctmgrCoordinatedAccounts(output: string, user: string): string[] {
  for (const line of output.split('\n')) {
    const [name, , accounts] = line.split('|');
    if (name?.trim() === user) {
      return (accounts ?? '')
        .split(',')
        .map((account) => account.trim())
        .filter(Boolean);
    }
  }
  return [];
}

/**
 * A user's administrator level from slurmrestd's `/slurmdb/v0.0.NN/user/{name}` answer: a string
 * in 22.05 (`"administrator_level": "None"`, seen on the lab for v0.0.36-38), a list of them in the
 * later versions' schema; null when the answer has no such user or field.
 */
export function readRestAdminLevel(body: unknown, user: string): string | null {
  const users = (body as { users?: unknown } | null)?.users;
  if (!Array.isArray(users)) return null;
  const entry = users.find((candidate) => (candidate as { name?: unknown })?.name === user) as
    | { administrator_level?: unknown }
    | undefined;
  const level = entry?.administrator_level;
  if (typeof level === 'string') return level;
  if (Array.isArray(level) && level.every((part) => typeof part === 'string')) {
    return level.find((part) => PRIVILEGED_LEVELS.has(part.toLowerCase())) ?? level[0] ?? null;
  }
  return null;
}

/**
 * The accounts a user coordinates, from slurmrestd's `/slurmdb/v0.0.NN/user/{name}` answer: its
 * `coordinators` (`[{ "name": "physics", "direct": 1 }, { "name": "astro", "direct": 0 }]`, recorded on
 * the lab's 22.05 for v0.0.38, test/fixtures/slurm/22.05/coordinators; `direct` 0 is an account under a
 * coordinated one), every one of them, in name order as sacctmgr lists them; empty when none, or when
 * the answer has no such user or field.
 */
export function readRestCoordinatedAccounts(body: unknown, user: string): string[] {
  const users = (body as { users?: unknown } | null)?.users;
  if (!Array.isArray(users)) return [];
  const entry = users.find((candidate) => (candidate as { name?: unknown })?.name === user) as
    | { coordinators?: unknown }
    | undefined;
  if (!Array.isArray(entry?.coordinators)) return [];
  const names = entry.coordinators
    .map((coordinator) => (coordinator as { name?: unknown } | null)?.name)
    .filter((name): name is string => typeof name === 'string' && name !== '');
  return [...new Set(names)].sort();
}

/** Whether an administrator level may read every user's jobs (Operator, Administrator). */
export function isPrivilegedLevel(level: string): boolean {
  return PRIVILEGED_LEVELS.has(level.trim().toLowerCase());
}

/**
 * How to give `user` the right to read every job, as an admin types it. A user Slurm's accounting does
 * not know cannot be modified (sacctmgr says "Nothing modified", seen on the lab) and is added with an
 * account (without one sacctmgr says "Need name of account to add user to."): root, which every
 * accounting database has, as the lab's billing user is.
 */
export function operatorCommand(user: string, isInAccounting = true): string {
  return isInAccounting
    ? `sacctmgr modify user ${user} set adminlevel=Operator`
    : `sacctmgr add user ${user} account=root adminlevel=Operator`;
}

/**
 * Whether slurmrestd's `/slurmdb/v0.0.NN/user/{name}` answer says Slurm's accounting has no such user:
 * a `users` list without it (22.05 answers error 9003 "Nothing found" and `users: []`, seen on the lab),
 * not an answer without a `users` list at all.
 */
export function isRestUserMissing(body: unknown, user: string): boolean {
  const users = (body as { users?: unknown } | null)?.users;
  return Array.isArray(users) && !users.some((candidate) => (candidate as { name?: unknown })?.name === user);
}

/**
 * Why sacct, run as `user` under PrivateData=jobs, would read `user`'s jobs alone, or, for a
 * coordinator, those of the accounts it coordinates too: slurmdbd.conf(5) says PrivateData=jobs hides
 * other users' jobs "unless they are coordinators of the account running the job", so a coordinator's
 * `sacct --allusers` is as partial as anyone's, only less visibly.
 */
export function privateJobsSacctMessage(
  user: string,
  level: string | null,
  coordinatedAccounts: readonly string[] = [],
): string {
  const standing =
    level === null ? `${user} is not a user of Slurm's accounting` : `${user}'s administrator level is ${level}`;
  const isCoordinator = coordinatedAccounts.length > 0;
  const seen = isCoordinator
    ? `; ${coordinatorReach(user, coordinatedAccounts)}, so sacct --allusers prints those alone`
    : `, so sacct --allusers prints ${user}'s jobs alone`;
  return (
    `sacct runs as ${user}, who may read only ${isCoordinator ? "some users'" : 'their own'} jobs: slurmdbd.conf sets ` +
    `PrivateData=jobs and ${standing}${seen} (exit 0, no error) and every other user's would go unread and ` +
    `unbilled. Nothing was read. As root: ${operatorCommand(user, level !== null)} (or run the app as root or such a user)`
  );
}

/** What a coordinator may read under PrivateData=jobs, in the words both sources' warnings use. */
function coordinatorReach(user: string, coordinatedAccounts: readonly string[]): string {
  return (
    `${user} coordinates the accounts ${coordinatedAccounts.join(', ')}, and a coordinator reads only the jobs of ` +
    'those accounts (and their sub-accounts) and its own'
  );
}

/**
 * The warning for a slurmrestd user who is no operator: slurmrestd cannot say whether PrivateData is
 * set. A coordinator's names the accounts it coordinates, as sacct's does: its answer holds their jobs
 * too, so "own jobs alone" misled the admin who checked it against the jobs read.
 */
export function restUserWarning(
  user: string,
  level: string | null,
  coordinatedAccounts: readonly string[] = [],
): string {
  if (level === null) {
    // No user of the accounting: it has no job of its own, so under PrivateData=jobs it reads none.
    return (
      `SLURMRESTD_USER ${user} is not a user of Slurm's accounting (sacctmgr show user ${user} lists no one): where ` +
      'slurmdbd.conf sets PrivateData=jobs (sacctmgr show configuration says; slurmrestd cannot tell), slurmrestd ' +
      `answers ${user}'s own jobs alone (none), with no error, and every other user's go unread and unbilled. ` +
      `As root: ${operatorCommand(user, false)}`
    );
  }
  const answered =
    coordinatedAccounts.length > 0
      ? `; ${coordinatorReach(user, coordinatedAccounts)}: where slurmdbd.conf sets PrivateData=jobs (sacctmgr show ` +
        'configuration says; slurmrestd cannot tell), slurmrestd answers those alone'
      : ': where slurmdbd.conf sets PrivateData=jobs (sacctmgr show configuration says; slurmrestd cannot tell), ' +
        `slurmrestd answers ${user}'s own jobs alone`;
  return (
    `SLURMRESTD_USER ${user} has administrator level ${level} in Slurm's accounting${answered}, with no error, ` +
    `and every other user's go unread and unbilled. As root: ${operatorCommand(user)}`
  );
}
