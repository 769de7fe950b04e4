import { z } from 'zod';
import { MAX_INT4 } from './whole-number.js';

/**
 * Paging of the lists a finance officer reconciles page by page (/admin/receipts, My receipts, the
 * month-end runs) by a place in the list rather than by OFFSET: receipts made (or voided out of a
 * status filter) between two page loads moved every later row, so the next page repeated rows of the
 * one before or skipped some. Older and Newer links carry the sort key of the row they page on from.
 */

/** Where a page starts: a row's sort key, its creation time (for receipts) and its id. */
export interface ListPlace {
  /** The row's creation time (Timestamptz(3), so milliseconds hold it exactly); absent for a list ordered by id alone. */
  at?: Date;
  id: number;
}

/** Which rows a page shows: from an offset (`?page=`, kept for bookmarks and scripts), or after or before a place. */
export type ListSlice = { offset: number } | { older: ListPlace } | { newer: ListPlace };

/** What a place that the list did not give is told, for a malformed one and a forged one alike. */
export const NOT_A_PLACE_REASON =
  'is not a place in this list: it was edited or cut short. Open the first page and page on from there.';

/**
 * The latest time a place may name, in ms: the last of the year 9999. A JavaScript Date holds times up
 * to the year 275760, but Prisma refuses one past 9999 as no DateTime, so an edited link naming one was
 * a 500 where any other place the list did not give is a 400. No receipt is made that late.
 */
const MAX_TIME_MS = Date.UTC(9999, 11, 31, 23, 59, 59, 999);

/** The opaque text of `place` for a link's `older=` or `newer=`: base64url of "<ms>.<id>", or of "<id>". */
export function encodePlace(place: ListPlace): string {
  const text = place.at === undefined ? String(place.id) : `${place.at.getTime()}.${place.id}`;
  return Buffer.from(text, 'latin1').toString('base64url');
}

/** The place `text` names, or undefined when it is not one encodePlace writes (`isTimed`: with a time). */
export function decodePlace(text: string, isTimed: boolean): ListPlace | undefined {
  if (!/^[A-Za-z0-9_-]{1,40}$/.test(text)) return undefined;
  const plain = Buffer.from(text, 'base64url').toString('latin1');
  const match = (isTimed ? /^(0|[1-9]\d{0,15})\.([1-9]\d{0,9})$/ : /^()([1-9]\d{0,9})$/).exec(plain);
  if (!match) return undefined;
  const id = Number(match[2]);
  const ms = Number(match[1]);
  if (id > MAX_INT4 || (isTimed && ms > MAX_TIME_MS)) return undefined;
  const place = isTimed ? { at: new Date(ms), id } : { id };
  // One text a place: base64url that decodes alike with other padding bits is not one the list wrote.
  return encodePlace(place) === text ? place : undefined;
}

/** `older=` or `newer=` of a list's query: a place (`isTimed`: a receipt's, with its creation time); empty is left out. */
export function zListPlace(isTimed: boolean) {
  return z.preprocess(
    (value) => (typeof value === 'string' && value.trim() === '' ? undefined : value),
    z
      .string()
      .transform((text, context): ListPlace => {
        const place = decodePlace(text, isTimed);
        if (place) return place;
        context.addIssue({ code: 'custom', message: NOT_A_PLACE_REASON, input: text });
        return z.NEVER;
      })
      .optional(),
  );
}

/** Refuses a query that says where its page starts twice (`page=` and `older=`, or `older=` and `newer=`). */
export function refuseTwoPlaces(
  query: { page: number; older?: ListPlace | undefined; newer?: ListPlace | undefined },
  context: z.RefinementCtx,
): void {
  if (query.older && query.newer) {
    context.addIssue({ code: 'custom', path: ['newer'], message: 'cannot be given with older: follow one link' });
  } else if ((query.older || query.newer) && query.page !== 1) {
    context.addIssue({
      code: 'custom',
      path: [query.older ? 'older' : 'newer'],
      message: 'cannot be given with page: a page number and a place in the list are two ways to say one page',
    });
  }
}

/** The slice of the list `query` asks for, `pageSize` rows a page. */
export function sliceOf(
  query: { page: number; older?: ListPlace | undefined; newer?: ListPlace | undefined },
  pageSize: number,
): ListSlice {
  if (query.older) return { older: query.older };
  if (query.newer) return { newer: query.newer };
  return { offset: (query.page - 1) * pageSize };
}

/**
 * A page of a list as its links need it: the rows, how many match, the 1-based places of its first
 * and last row in the list as it is now (null when empty), and where Older and Newer lead (null:
 * no such rows; a Newer link whose rows reach the top leads to the first page, `newer` null).
 */
export interface ListPage<Row> {
  rows: Row[];
  count: number;
  firstRow: number | null;
  lastRow: number | null;
  older: { older: string } | null;
  newer: { newer?: string } | null;
}

/**
 * Shapes a page of at most `limit` rows newest first, with `newerCount` rows of the list before its
 * first and whether any come after its last (`hasOlder`). `placeOf` is a row's sort key.
 */
export function pageOf<Row>(
  read: { rows: Row[]; count: number; newerCount: number; hasOlder: boolean },
  limit: number,
  placeOf: (row: Row) => ListPlace,
): ListPage<Row> {
  const { rows, newerCount } = read;
  const first = rows[0];
  const last = rows.at(-1);
  return {
    rows,
    count: read.count,
    firstRow: first === undefined ? null : newerCount + 1,
    lastRow: last === undefined ? null : newerCount + rows.length,
    older: read.hasOlder && last !== undefined ? { older: encodePlace(placeOf(last)) } : null,
    // An empty page past newer rows (the older rows left the filter since) leads to the first page.
    newer:
      newerCount === 0
        ? null
        : newerCount <= limit || first === undefined
          ? {}
          : { newer: encodePlace(placeOf(first)) },
  };
}
