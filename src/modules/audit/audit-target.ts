/**
 * The audit log's target for an entry about a user account, typed as receipts (`receipt:42`) and
 * tiers (`tier:standard`) are. User changes logged the bare username before, tier overrides
 * `user:<name>`: one filter found half of a user's history.
 */
export function userTarget(username: string): string {
  return `user:${username}`;
}

/**
 * The targets a filter for `target` matches: itself, and for a user the other form, since entries
 * written before `userTarget` carry the bare name and the log is a hash chain, never rewritten.
 * A bare name is one with no `:` that is not a path (a forbidden attempt's target starts with `/`).
 */
export function targetsMatching(target: string): string[] {
  const name = target.startsWith('user:') ? target.slice('user:'.length) : target;
  const isUsername = name !== '' && !name.includes(':') && !name.startsWith('/');
  return isUsername ? [userTarget(name), name] : [target];
}
