/** The query string of a page with some parameters replaced (for view tabs, sorting, searching and paging links). */
export function linkTo(path: string, current: Record<string, unknown>, changes: Record<string, unknown>): string {
  const params = new URLSearchParams();
  for (const [key, value] of Object.entries({ ...current, ...changes })) {
    if (value !== undefined && value !== null && value !== '') params.set(key, String(value));
  }
  const text = params.toString();
  return text ? `${path}?${text}` : path;
}

/**
 * Where a list's Older and Newer links lead (null: no such rows), at the filters `current`: the
 * place each carries (list-place.ts), the first page when Newer reaches the top.
 */
export function olderNewerLinks(
  path: string,
  current: Record<string, unknown>,
  page: { older: { older: string } | null; newer: { newer?: string } | null },
): { olderUrl: string | null; newerUrl: string | null } {
  return {
    olderUrl: page.older && linkTo(path, current, page.older),
    newerUrl: page.newer && linkTo(path, current, page.newer),
  };
}
