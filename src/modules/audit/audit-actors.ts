/** The actor of the entries the user tools write (`npm run user:*`, cli-audit-context.ts). */
export const CLI_ACTOR = 'cli';

/** The actor of the entry the start-up writes when it creates the bootstrap admin (ADMIN_USERNAME). */
export const SYSTEM_ACTOR = 'system';

/** Who each actor the application writes itself is, as a refused username names it. */
const RESERVED_ACTORS: Readonly<Record<string, string>> = {
  [CLI_ACTOR]: 'the user tools',
  [SYSTEM_ACTOR]: 'the start-up',
};

/**
 * Why no account may be named `username` (a valid login name in lower case), or undefined when one may:
 * an account named `cli` or `system` wrote its own entries under the actor the application gives its
 * tools and its start-up, so its password resets, disables and unlocks read as theirs on /admin/audit
 * and in its Actor filter. Checked where a user is created; an account made before is left as it is.
 */
export function reservedActorProblemOf(username: string): string | undefined {
  const who = Object.hasOwn(RESERVED_ACTORS, username) ? RESERVED_ACTORS[username] : undefined;
  return who === undefined
    ? undefined
    : `is the audit log's name for ${who} (${username}), so an account of that name could not be told apart from them there: choose another`;
}
