import { InvalidFieldsError } from '../../shared/errors.js';
import { type ListPlace, NOT_A_PLACE_REASON } from '../../shared/list-place.js';
import { RECEIPT_FIELD_LABELS } from './receipts.schema.js';

/** A list's ?page=, or the place its Older or Newer link carries (list-place.ts). */
export type ListQuery = { page: number; older?: ListPlace | undefined; newer?: ListPlace | undefined };

/** Which of older= and newer= a query gives, with its place; [field, undefined] when neither. */
export function placeAsked(query: ListQuery): ['older' | 'newer', ListPlace | undefined] {
  return query.newer ? ['newer', query.newer] : ['older', query.older];
}

/** The 400 for a place in a list that names no row of it, worded as a malformed one is. */
export function notAPlace(field: 'older' | 'newer'): InvalidFieldsError {
  return new InvalidFieldsError({ [field]: NOT_A_PLACE_REASON }, RECEIPT_FIELD_LABELS);
}

/**
 * The page number and count a list answers: `?page=`'s own, or for a page reached by a place (an
 * Older or Newer link) no number (null), since rows made since move where its pages start.
 */
export function pagedAs(query: ListQuery, pageCount: number): { page: number | null; pageCount: number } {
  return { page: query.older || query.newer ? null : query.page, pageCount };
}
