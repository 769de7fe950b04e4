import { NotFoundError } from './errors.js';

/** How many pages `count` rows fill; a page past the last is a 404 saying what there is. */
export function pageCountOrNotFound(
  count: number,
  pageSize: number,
  page: number,
  whatThereIs: (pages: number) => string,
): number {
  const pageCount = Math.max(1, Math.ceil(count / pageSize));
  if (page > pageCount) throw new NotFoundError(`${whatThereIs(pageCount)}; there is no page ${page}.`);
  return pageCount;
}

/**
 * Page `page` of `rows` held in memory, `pageSize` a page (`page` of `pageCount`); a page past the last
 * is a 404 saying what there is (pageCountOrNotFound).
 */
export function pageOfRows<T>(
  rows: readonly T[],
  pageSize: number,
  page: number,
  whatThereIs: (pages: number) => string,
): { page: number; pageCount: number; rows: T[] } {
  const pageCount = pageCountOrNotFound(rows.length, pageSize, page, whatThereIs);
  const start = (page - 1) * pageSize;
  return { page, pageCount, rows: rows.slice(start, start + pageSize) };
}
