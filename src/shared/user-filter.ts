/**
 * What a filter by user means on the admin pages (billing's and usage's User, the audit log's Actor),
 * given the names on the page that contain the text typed, in any case. One rule for all three: an
 * admin types part of a name ("ali", or "Alice", for alice) where a whole name alone found nothing,
 * while a link to one user's rows (?user=bob from /admin/usage or a month-end run) still lists bob's
 * alone, not bobby's summed in.
 */
export interface UserFilterMatch {
  /** The names whose rows the page lists and sums: the whole name typed, or else every name containing it. */
  usernames: string[];
  /** The other names containing a whole name typed, offered as links, not summed; empty otherwise. */
  alsoContaining: string[];
}

/**
 * The names a filter for `search` means among `containing` (the names containing it in any case): a
 * whole name (in any case: bob and Bob are both bob's) alone, the others offered; part of a name,
 * every name containing it. Names keep the order `containing` gives them.
 */
export function userFilterMatchOf(search: string, containing: readonly string[]): UserFilterMatch {
  const whole = containing.filter((name) => isWholeName(search, name));
  if (whole.length === 0) return { usernames: [...containing], alsoContaining: [] };
  return { usernames: whole, alsoContaining: containing.filter((name) => !isWholeName(search, name)) };
}

/** Whether `name` is the whole name `search` typed, in any case (bob and Bob are both bob's). */
export function isWholeName(search: string, name: string): boolean {
  return name.toLowerCase() === search.toLowerCase();
}
