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
