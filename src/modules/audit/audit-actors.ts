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

/** The start of a payment provider's actor (`provider:stripe`, payments.service.ts). */
const PROVIDER_ACTOR_PREFIX = 'provider:';

/**
 * The actor of a sign-in at a name no account has that is one of the application's own actors (`cli`,
 * `system`, `provider:<name>`), the name typed being in its details (`typedUsername`). In parentheses,
 * as `(empty)`, so no account can have it (ZUsername); typed itself, it is written the same way.
 */
export const RESERVED_NAME_ACTOR = '(reserved name)';

/**
 * Whether `name` (a typed username, trimmed and in lower case) is an actor the application writes
 * itself, or the one it writes in their place: a stranger's sign-in under it would read as theirs.
 */
function isReservedActorName(name: string): boolean {
  return Object.hasOwn(RESERVED_ACTORS, name) || name.startsWith(PROVIDER_ACTOR_PREFIX) || name === RESERVED_NAME_ACTOR;
}

/**
 * Who a sign-in's entries name as their actor, for the username as sign-in reads it
 * (normalizedUsernameOf), and what their details add: the name itself, as before, unless no account
 * has it and it is one of the audit log's own actors (`cli`, `system`, `provider:<name>`). Written
 * under that actor, a stranger's failed sign-in typed as `cli` was listed among the user tools'
 * entries by the Actor filter `cli`. It is `(reserved name)`, the name typed in `details.typedUsername`;
 * the lockout still counts it under the name typed. An account of such a name made before the rule
 * keeps its own name (its entries also target it).
 */
export function signInActorOf(
  username: string,
  isAccount: boolean,
): { actor: string; details: { typedUsername?: string } } {
  if (!isAccount && isReservedActorName(username))
    return { actor: RESERVED_NAME_ACTOR, details: { typedUsername: username } };
  return { actor: username || '(empty)', details: {} };
}
