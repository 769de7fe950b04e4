import { describe, expect, it } from 'vitest';
import { decodePlace, encodePlace, pageOf } from '../../src/shared/list-place.js';

describe('a place in a list, as the Older and Newer links carry it', () => {
  it.each([
    [{ at: new Date('2026-10-01T00:00:00.123Z'), id: 7 }, true],
    [{ at: new Date(0), id: 2147483647 }, true],
    [{ at: new Date('9999-12-31T23:59:59.999Z'), id: 3 }, true],
    [{ id: 1 }, false],
  ])('reads back %o as written', (place, isTimed) => {
    expect(decodePlace(encodePlace(place), isTimed)).toEqual(place);
  });

  it.each([
    ['empty', '', true],
    ['not base64url', 'a+b/', true],
    ['a run id where a receipt place goes', encodePlace({ id: 5 }), true],
    ['a receipt place where a run id goes', encodePlace({ at: new Date(5), id: 5 }), false],
    ['an id past int4', Buffer.from('5.2147483648').toString('base64url'), true],
    ['an id of 0', Buffer.from('5.0').toString('base64url'), true],
    ['leading zeros', Buffer.from('05.7').toString('base64url'), true],
    ['a time past any date', Buffer.from('9999999999999999.7').toString('base64url'), true],
    // A JavaScript date the database is never asked about: Prisma refuses a year past 9999 (a 500).
    ['a time past the year 9999', Buffer.from('253402300800000.7').toString('base64url'), true],
    ['the last time a JavaScript date holds', Buffer.from('8640000000000000.7').toString('base64url'), true],
    ['other padding bits of the same bytes', `${encodePlace({ id: 12 }).slice(0, -1)}x`, false],
  ])('refuses %s', (_, text, isTimed) => {
    expect(decodePlace(text, isTimed)).toBeUndefined();
  });
});

describe('the links of a page', () => {
  const placeOf = (row: { id: number }) => ({ id: row.id });
  const rows = (ids: number[]) => ids.map((id) => ({ id }));

  it('leads Older from its last row, and Newer to the first page when no more than a page is newer', () => {
    const page = pageOf({ rows: rows([30, 29]), count: 40, newerCount: 2, hasOlder: true }, 2, placeOf);
    expect(page).toMatchObject({ firstRow: 3, lastRow: 4, older: { older: encodePlace({ id: 29 }) }, newer: {} });
  });

  it('leads Newer from its first row when more than a page is newer, and has no Older at the end', () => {
    const page = pageOf({ rows: rows([30, 29]), count: 5, newerCount: 3, hasOlder: false }, 2, placeOf);
    expect(page).toMatchObject({ firstRow: 4, lastRow: 5, older: null, newer: { newer: encodePlace({ id: 30 }) } });
  });

  it('leads an empty page past newer rows (its rows left the filter) to the first page', () => {
    const page = pageOf({ rows: [], count: 30, newerCount: 30, hasOlder: false }, 25, placeOf);
    expect(page).toMatchObject({ firstRow: null, lastRow: null, older: null, newer: {} });
  });
});
