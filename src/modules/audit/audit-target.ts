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
 * A user is also the name in lower case (`user:Zoe` and `USER:Zoe` are zoe's entries too), as sign-in,
 * the Actor filter and Tier overrides read a typed name; the name as typed still matches, for a job
 * owner Slurm spells with a capital (`user:Kai`, written by its tier override).
 */
export function targetsMatching(target: string): string[] {
  const name = /^user:/i.test(target) ? target.slice('user:'.length) : target;
  const isUsername = name !== '' && !name.includes(':') && !name.startsWith('/');
  if (!isUsername) return [target];
  return [...new Set([name, name.toLowerCase()])].flatMap((each) => [userTarget(each), each]);
}
