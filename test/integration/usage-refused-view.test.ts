import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildJobs, buildTiers } from '../support/billing-factories.js';
import { buildUser } from '../support/factories.js';
import { type Agent, signInAs } from '../support/sign-in.js';
import { buildTestApp } from '../support/test-app.js';
import { createTestDatabase, type TestDatabase } from '../support/test-database.js';

let db: TestDatabase;
let alice: Agent;
const now = () => new Date('2025-09-20T12:00:00Z');

beforeAll(async () => {
  db = await createTestDatabase();
  await buildTiers(db);
  await buildUser(db.prisma, { username: 'alice', password: 'alice-password' });
  await buildJobs(db, [{ user: 'alice', end: '2025-09-02T10:00:00Z', jobId: '8801' }]);
  alice = await signInAs(buildTestApp(db, { now }), 'alice', 'alice-password');
});
afterAll(() => db?.drop());

const html = (path: string) => alice.get(path).set('Accept', 'text/html');

/** The hrefs of the Jobs, Per day and Billed tabs. */
const tabLinksOf = (page: string) =>
  [...page.matchAll(/<a href="([^"]*)" class="tab[^"]*"/g)].map((match) => match[1]?.replaceAll('&amp;', '&'));

describe('My usage refusing the view, sort or page of a window it can show', () => {
  it.each([
    ['view=Per+day', 'View: must be one of detail (Jobs), aggregate (Per day), billed (Billed)'],
    ['sort=elapsed_sec', 'Sort: must be one of'],
    ['page=0', 'Page: must be at least 1'],
  ])('keeps the window in the tabs for %s, as the form and the CSV link do', async (refused, message) => {
    const page = await html(`/me?start=2025-09-01&end=2025-09-10&${refused}`).expect(400);
    expect(page.text).toContain(message);
    expect(page.text).toContain('id="start" name="start" type="date" value="2025-09-01"');
    expect(page.text).toContain('href="/me.csv?start=2025-09-01&amp;end=2025-09-10">Download CSV</a>');
    // They led to the last 7 days, where job 8801 is not: the tab showed another window than the form.
    expect(tabLinksOf(page.text)).toEqual([
      '/me?start=2025-09-01&end=2025-09-10&view=detail',
      '/me?start=2025-09-01&end=2025-09-10&view=aggregate',
      '/me?start=2025-09-01&end=2025-09-10&view=billed',
    ]);
    expect((await html(tabLinksOf(page.text)[0] as string).expect(200)).text).toContain('>8801</td>');
  });

  it('names each view with the tab it is, for a tab name typed in, to a JSON client too', async () => {
    // "must be one of detail, aggregate, billed" named words the page never shows beside its tabs.
    const answer = await alice.get('/me?view=Per%20day').set('Accept', 'application/json').expect(400);
    // JSON names the field by its parameter, as every JSON refusal does.
    expect(answer.body).toMatchObject({
      error: 'view: must be one of detail (Jobs), aggregate (Per day), billed (Billed)',
      code: 400,
    });
  });

  it('sends a view the page shows with the window form: Show sent the refused one and was refused again', async () => {
    const page = await html('/me?start=2025-09-01&end=2025-09-10&view=Per+day').expect(400);
    expect(page.text).toContain('<input type="hidden" name="view" value="detail">');
    expect(page.text).not.toContain('value="Per day"');
    // The form as a browser sends it, with the window typed again.
    await html('/me?view=detail&start=2025-09-01&end=2025-09-10').expect(200);
    // A view the page takes is kept for Show, with the refused sort left out.
    const billed = await html('/me?start=2025-09-01&end=2025-09-10&view=billed&page=x').expect(400);
    expect(billed.text).toContain('<input type="hidden" name="view" value="billed">');
  });

  it('keeps a sort the page takes when the window is refused, so Show after correcting the dates sorts as before', async () => {
    // Sorted by cost, then From typed after To: the page's form, tabs and Create receipt dropped the
    // sort, and the corrected window came back by Ended, as a new window did before it kept the sort.
    const page = await html('/me?start=2025-09-10&end=2025-09-01&sort=cost&dir=asc').expect(400);
    expect(page.text).toContain('Ended from (2025-09-10) is after Ended to (2025-09-01).');
    expect(page.text).toContain('<input type="hidden" name="sort" value="cost">');
    expect(page.text).toContain('<input type="hidden" name="dir" value="asc">');
    expect(tabLinksOf(page.text)).toEqual([
      '/me?view=detail&sort=cost&dir=asc',
      '/me?view=aggregate&sort=cost&dir=asc',
      '/me?view=billed&sort=cost&dir=asc',
    ]);
    expect(page.text).toContain('action="/me/receipt?sort=cost&amp;dir=asc#create-receipt"');
    // A refused sort is left out; the direction beside it, which the page takes, is kept.
    const refusedSort = await html('/me?start=2025-09-01&end=2025-09-10&sort=elapsed_sec&dir=asc').expect(400);
    expect(refusedSort.text).not.toContain('name="sort" value=');
    expect(refusedSort.text).toContain('<input type="hidden" name="dir" value="asc">');
  });

  it('keeps the tabs to the default window when the window itself is refused', async () => {
    for (const query of [
      'start=2025-09-10&end=2025-09-01',
      'start=2025-13-01',
      'start=2025-09-01&view=Per+day&end=x',
    ]) {
      const page = await html(`/me?${query}`).expect(400);
      expect(tabLinksOf(page.text), query).toEqual(['/me?view=detail', '/me?view=aggregate', '/me?view=billed']);
    }
  });
});
