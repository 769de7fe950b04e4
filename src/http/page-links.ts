/** The query string of a page with some parameters replaced (for view tabs, sorting, searching and paging links). */
export function linkTo(path: string, current: Record<string, unknown>, changes: Record<string, unknown>): string {
  const params = new URLSearchParams();
  for (const [key, value] of Object.entries({ ...current, ...changes })) {
    if (value !== undefined && value !== null && value !== '') params.set(key, String(value));
  }
  const text = params.toString();
  return text ? `${path}?${text}` : path;
}
