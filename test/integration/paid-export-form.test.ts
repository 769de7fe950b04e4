import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildTiers } from '../support/billing-factories.js';
import { buildUser } from '../support/factories.js';
import { elementById, refusedFormStateOf } from '../support/html.js';
import { type Agent, signInAs } from '../support/sign-in.js';
import { buildTestApp } from '../support/test-app.js';
import { createTestDatabase, type TestDatabase } from '../support/test-database.js';

// The billing page's "Paid receipts export" form is a GET of /admin/paid.csv. Dates picked the wrong
// way round, or a typed one that is not a date, used to land on the bare error page ("Back to the
// start page"), the billing page and what was picked gone.
const NOT_READ_HERE =
  'is not read here: this export reads its window from start and end; from and to are read by the audit log only';

let db: TestDatabase;
let admin: Agent;

beforeAll(async () => {
  db = await createTestDatabase();
  await buildTiers(db);
  await buildUser(db.prisma, { username: 'finance', role: 'admin', password: 'finance-password' });
  admin = await signInAs(buildTestApp(db), 'finance', 'finance-password');
});
afterAll(() => db?.drop());

describe('the paid receipts export form, refused', () => {
  it('comes back as the billing page with the reason beside the form and the dates as picked', async () => {
    const refused = await admin.get('/admin/paid.csv?start=2026-03-05&end=2026-03-01').set('Accept', 'text/html');
    expect(refused.status).toBe(400);
    expect(refused.headers['content-type']).toMatch(/^text\/html/);
    expect(refused.text).toContain('<h1>Billing</h1>');
    const form = /<section class="card" id="paid-export">.*?<\/section>/s.exec(refused.text)?.[0] ?? '';
    expect(form).toContain('Paid receipts not exported. Paid from (2026-03-05) is after Paid to (2026-03-01).');
    expect(form).toContain('id="paid-start" name="start" type="date" value="2026-03-05"');
    expect(form).toContain('id="paid-end" name="end" type="date" value="2026-03-01"');
    // Both dates are marked (either may be the one to fix), described by the reason; From is focused
    // once the page opens at #paid-export.
    const state = refusedFormStateOf(refused.text);
    expect(state).toMatchObject({ invalid: ['paid-start', 'paid-end'], autofocus: ['paid-start'] });
    expect(state.describedBy['paid-end']).toBe(state.describedBy['paid-start']);
    expect(elementById(refused.text, state.describedBy['paid-start'] ?? '')).toContain('Paid receipts not exported.');
    expect(refused.text).toContain('<script src="/static/js/autofocus.js" defer></script>');

    const typo = await admin.get('/admin/paid.csv?start=2026-02-30').set('Accept', 'text/html');
    expect(typo.status).toBe(400);
    expect(typo.text).toContain('Paid receipts not exported. Paid from: is not a real calendar date');
  });

  it('refuses a bom typed by hand the same way: the billing page, the reason in the form, the dates kept', async () => {
    // It used to be the bare error page ("Back to the start page"), unlike a refused date.
    const refused = await admin
      .get('/admin/paid.csv?start=2026-03-01&end=2026-03-05&bom=yes')
      .set('Accept', 'text/html');
    expect(refused.status).toBe(400);
    expect(refused.text).toContain('<h1>Billing</h1>');
    const form = /<section class="card" id="paid-export">.*?<\/section>/s.exec(refused.text)?.[0] ?? '';
    expect(form).toContain('Paid receipts not exported. bom: must be 1 (a byte-order mark for Excel), or left out');
    expect(form).toContain('id="paid-start" name="start" type="date" value="2026-03-01"');
    expect(form).toContain('id="paid-end" name="end" type="date" value="2026-03-05"');

    const twice = await admin.get('/admin/paid.csv?bom=1&bom=1').set('Accept', 'text/html');
    expect(twice.status).toBe(400);
    expect(twice.text).toContain('Paid receipts not exported. bom: must be given once');

    // A script still gets {error, code}.
    const json = await admin.get('/admin/paid.csv?bom=yes').set('Accept', 'application/json');
    expect(json.status).toBe(400);
    expect(json.body).toEqual({ error: 'bom: must be 1 (a byte-order mark for Excel), or left out', code: 400 });
  });

  it('still answers a script with JSON, and a good window with the CSV', async () => {
    const refused = await admin
      .get('/admin/paid.csv?start=2026-03-05&end=2026-03-01')
      .set('Accept', 'application/json');
    expect(refused.status).toBe(400);
    expect(refused.body).toEqual({
      error: 'start (2026-03-05) is after end (2026-03-01).',
      code: 400,
    });
    const csv = await admin.get('/admin/paid.csv?start=2026-03-01&end=2026-03-05').expect(200);
    expect(csv.headers['content-type']).toBe('text/csv; charset=utf-8');
  });

  it("refuses the audit log's from and to by name rather than export the last 7 days instead", async () => {
    // The audit log's window is from/to, every other one start/end. paid.csv?from=2026-03-01&to=2026-03-31
    // answered 200 with the last 7 days (the file named so, its lines not March's): a period reconciled
    // against the bank from the wrong lines, with nothing said.
    const json = await admin.get('/admin/paid.csv?from=2026-03-01&to=2026-03-31').set('Accept', 'application/json');
    expect(json.status).toBe(400);
    expect(json.headers['content-disposition']).toBeUndefined();
    expect(json.body.error).toBe(`from: ${NOT_READ_HERE}; to: ${NOT_READ_HERE}`);

    const page = await admin.get('/admin/paid.csv?from=2026-03-01').set('Accept', 'text/html');
    expect(page.status).toBe(400);
    expect(page.text).toContain('<h1>Billing</h1>');
    const form = /<section class="card" id="paid-export">.*?<\/section>/s.exec(page.text)?.[0] ?? '';
    expect(form).toContain(`Paid receipts not exported. from: ${NOT_READ_HERE}`);

    // start and end, as the form sends them, still export; an unknown field of another name is ignored, as before.
    const csv = await admin.get('/admin/paid.csv?start=2026-03-01&end=2026-03-31&utm_source=mail').expect(200);
    expect(csv.headers['content-disposition']).toContain('paid-2026-03-01-2026-03-31.csv');
  });

  it('says what an empty window exports', async () => {
    const page = (await admin.get('/admin/receipts').set('Accept', 'text/html').expect(200)).text;
    expect(page).toContain(
      'Left empty, the last 7 days, today included; with From only, From up to today; with To only, the 7 days up to it.',
    );
  });
});

describe("the billing page's date fields", () => {
  /** The text of the label for the field `id`, tags dropped, as a screen reader names the field. */
  const labelOf = (html: string, id: string) =>
    new RegExp(`<label for="${id}">(.*?)</label>`, 's')
      .exec(html)?.[1]
      ?.replace(/<[^>]*>/g, '')
      .replace(/\s+/g, ' ')
      .trim();

  it('name each end date by its own label, not a bare "to" that says nothing heard on its own', async () => {
    // A screen reader moving from field to field (or listing them) heard "to, date": to what, of which
    // of the page's two windows, it did not say.
    const page = await admin.get('/admin/receipts').set('Accept', 'text/html').expect(200);
    expect([labelOf(page.text, 'paid-start'), labelOf(page.text, 'paid-end')]).toEqual(['Paid from', 'Paid to']);
    // The receipt filters' window, named as its refusal names it ("Created from (…) is after Created to (…).").
    expect([labelOf(page.text, 'start'), labelOf(page.text, 'end')]).toEqual(['Created from', 'Created to']);
  });
});
