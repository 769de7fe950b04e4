import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildJobs, buildTiers } from '../support/billing-factories.js';
import { buildUser } from '../support/factories.js';
import { elementById, formActionsIn, refusedFormStateOf } from '../support/html.js';
import { type Agent, csrfTokenOf, signInAs } from '../support/sign-in.js';
import { buildTestApp } from '../support/test-app.js';
import { createTestDatabase, type TestDatabase } from '../support/test-database.js';

// /admin/tiers pages and searches its users as /admin/users does. Known users: the accounts
// chief, user000..user119, zed, a-zed-00..a-zed-59 (names containing "zed" that sort before it),
// a_b and axb, and gov-zed, who owns a job but has no account: 185, 4 pages of 50.
const KNOWN_COUNT = 185;

let db: TestDatabase;
let agent: Agent;

beforeAll(async () => {
  db = await createTestDatabase();
  await buildTiers(db);
  await buildUser(db.prisma, { username: 'chief', role: 'admin', password: 'chief-password' });
  const names = [
    ...Array.from({ length: 120 }, (_, index) => `user${String(index).padStart(3, '0')}`),
    'zed',
    ...Array.from({ length: 60 }, (_, index) => `a-zed-${String(index).padStart(2, '0')}`),
    'a_b',
    'axb',
  ];
  // Nobody signs in as them: a placeholder hash spares 183 password hashings.
  await db.prisma.user.createMany({ data: names.map((username) => ({ username, passwordHash: 'x' })) });
  await buildJobs(db, [{ user: 'gov-zed', end: '2025-09-10T10:00:00Z' }]);
  agent = await signInAs(buildTestApp(db, { env: { PRICING_CACHE_CHECK_MS: '0' } }), 'chief', 'chief-password');
});
afterAll(() => db?.drop());

const page = (path: string) => agent.get(path).set('Accept', 'text/html');
/** The users listed, in page order: each is a <tbody id="user-NAME">. */
const usersOf = (html: string) => [...html.matchAll(/<tbody id="user-([^"]+)">/g)].map((match) => match[1]);
const statusesIn = (html: string) =>
  [...html.matchAll(/<div class="alert (\w+)" role="status">([^<]*)<\/div>/g)].map(
    (match) => `${match[1]}: ${match[2]}`,
  );
const unescaped = (action: string) => action.replaceAll('&amp;', '&');
/** Where the page's tier forms post (the header's sign-out form aside). */
const tierFormActionsIn = (html: string) => new Set(formActionsIn(html).filter((action) => action !== '/logout'));

/** The tiers form of `username` as the page sends it (to the page's action, with its token), answered `status`. */
async function moveUser(action: string, username: string, tier: string, status: number) {
  const token = await csrfTokenOf(agent, '/admin/tiers');
  return agent
    .post(action)
    .set('Accept', 'text/html')
    .type('form')
    .send({ username, tier, csrf_token: token })
    .expect(status);
}

/** What a refused change must leave as it was. */
async function overridesAndAudit() {
  return {
    overrides: await db.prisma.tierOverride.findMany({ select: { username: true, tierId: true } }),
    audit: await db.prisma.auditLog.count({ where: { action: { startsWith: 'pricing.override' } } }),
  };
}

describe('/admin/tiers paging', () => {
  it('lists 50 users a page by name, says how many there are, and links the pages', async () => {
    const first = (await page('/admin/tiers').expect(200)).text;
    expect(usersOf(first)).toHaveLength(50);
    expect(usersOf(first)[0]).toBe('a-zed-00');
    expect(first).toContain(`${KNOWN_COUNT} users, 50 on this page.`);
    expect(first).toContain('Page 1 of 4');
    expect(first).toContain('<a href="/admin/tiers?page=2" rel="next">');
    expect(first).not.toContain('rel="prev"');
    expect(tierFormActionsIn(first)).toEqual(new Set(['/admin/tiers']));

    const last = (await page('/admin/tiers?page=4').expect(200)).text;
    expect(usersOf(last)).toHaveLength(KNOWN_COUNT - 150);
    expect(usersOf(last).at(-1)).toBe('zed');
    expect(last).toContain('<a href="/admin/tiers?page=3" rel="prev">');
    expect(last).not.toContain('rel="next"');
    // Each form posts to the page it is on, to come back to it.
    expect(tierFormActionsIn(last)).toEqual(new Set(['/admin/tiers?page=4']));

    const everyone = [];
    for (let number = 1; number <= 4; number += 1) {
      everyone.push(...usersOf((await page(`/admin/tiers?page=${number}`).expect(200)).text));
    }
    expect(everyone).toHaveLength(KNOWN_COUNT);
    expect(new Set(everyone).size).toBe(KNOWN_COUNT);
    // A job owner without an account is listed, with the tier the rules give them.
    const owner = (await page('/admin/tiers?q=gov-zed').expect(200)).text;
    // No override: a dash to the eye, "none" to a screen reader, which read the cell as "em dash" or as nothing.
    expect(elementById(owner, 'user-gov-zed')).toMatch(
      /<td[^>]*>gov-zed<\/td>\s*<td[^>]*>gov<\/td>\s*<td[^>]*><span aria-hidden="true">—<\/span><span class="visually-hidden">none<\/span><\/td>/,
    );
  });

  it('answers a page past the last with a 404 saying what there is', async () => {
    const past = await page('/admin/tiers?page=5').expect(404);
    expect(past.text).toContain(`There are ${KNOWN_COUNT} users on 4 pages; there is no page 5.`);
    const json = await agent.get('/admin/tiers?q=zed&page=3').set('Accept', 'application/json').expect(404);
    expect(json.body).toEqual({ error: '62 users match “zed” on 2 pages; there is no page 3.', code: 404 });
  });

  it('leads the error page of a page past the last, or of a refused query, back to the list', async () => {
    // Only "Back to the start page" was offered: the admin lost the list and their search.
    const past = (await page('/admin/tiers?q=zed&page=3').expect(404)).text;
    expect(past).toContain('<a href="/admin/tiers?q=zed">Go to page 1</a>');
    const refused = (await page('/admin/tiers?page=0').expect(400)).text;
    expect(refused).toContain('<a href="/admin/tiers">Open Tier overrides</a>');
  });

  it.each([
    ['page 0', '/admin/tiers?page=0', /^page: must be at least 1/],
    ['a negative page', '/admin/tiers?page=-1', /^page: must be a whole number/],
    ['a page that is not a number', '/admin/tiers?page=abc', /^page: must be a whole number/],
    ['a search longer than a username', `/admin/tiers?q=${'a'.repeat(65)}`, /^q: must be at most 64 characters/],
    ['a NUL in the search', '/admin/tiers?q=ze%00d', /NUL character/],
  ])('refuses %s with a 400, to a browser as to a script', async (_name, path, message) => {
    const refused = await agent.get(path).set('Accept', 'application/json').expect(400);
    expect(refused.body.code).toBe(400);
    expect(refused.body.error).toMatch(message);
    const shown = await page(path).expect(400);
    expect(shown.text).not.toContain('<tbody id="user-');
  });
});

describe('/admin/tiers search', () => {
  it('finds the users whose name contains the text, in any case, and omits the others', async () => {
    const found = (await page('/admin/tiers?q=USER01').expect(200)).text;
    expect(usersOf(found)).toEqual(Array.from({ length: 10 }, (_, index) => `user01${index}`));
    expect(found).toContain('10 users match “USER01”.');
    expect(found).not.toContain('rel="next"');
    expect(found).toContain('value="USER01"');
    expect(found).toContain('<a href="/admin/tiers">All users</a>');
  });

  it('keeps the search in the page links and the forms, and lists the exact name first', async () => {
    const searched = (await page('/admin/tiers?q=zed').expect(200)).text;
    expect(usersOf(searched)[0]).toBe('zed');
    expect(searched).toContain('62 users match “zed”, 50 on this page.');
    expect(searched).toContain('<a href="/admin/tiers?q=zed&amp;page=2" rel="next">');
    expect(tierFormActionsIn(searched)).toEqual(new Set(['/admin/tiers?q=zed']));
    const second = (await page('/admin/tiers?q=zed&page=2').expect(200)).text;
    expect(usersOf(second)).toEqual([...Array.from({ length: 11 }, (_, index) => `a-zed-${49 + index}`), 'gov-zed']);
    expect(tierFormActionsIn(second)).toEqual(new Set(['/admin/tiers?q=zed&amp;page=2']));
  });

  it('matches usernames only, not tiers, and takes _ and % literally', async () => {
    // user005 is on gov by an override; a search for "gov" still finds only the name containing it.
    await moveUser('/admin/tiers', 'user005', 'gov', 303);
    expect(usersOf((await page('/admin/tiers?q=gov').expect(200)).text)).toEqual(['gov-zed']);
    expect(usersOf((await page('/admin/tiers?q=a_b').expect(200)).text)).toEqual(['a_b']);
    const none = (await page('/admin/tiers?q=%25').expect(200)).text;
    expect(usersOf(none)).toEqual([]);
    expect(none).toContain('No users match.');
    expect(none).toContain('0 users match “%”.');
    await moveUser('/admin/tiers', 'user005', 'mu', 303);
  });
});

describe('a change on a searched page', () => {
  it('comes back to the same search and page, at the user, with the confirmation there', async () => {
    const listed = (await page('/admin/tiers?q=zed&page=2').expect(200)).text;
    const action = unescaped(formActionsIn(elementById(listed, 'user-a-zed-55') ?? '')[0] ?? '');
    expect(action).toBe('/admin/tiers?q=zed&page=2');

    const moved = await moveUser(action, 'a-zed-55', 'private', 303);
    expect(moved.headers.location).toBe('/admin/tiers?q=zed&page=2&updated=a-zed-55#user-a-zed-55');
    const landed = (await page('/admin/tiers?q=zed&page=2&updated=a-zed-55').expect(200)).text;
    expect(usersOf(landed)).toContain('a-zed-55');
    expect(landed).toContain('Page 2 of 2');
    const block = elementById(landed, 'user-a-zed-55') ?? '';
    expect(statusesIn(block)).toEqual(['success: a-zed-55 is now on private.']);
    expect(statusesIn(landed)).toHaveLength(1);
    expect(block).toMatch(/<td[^>]*>private<\/td>\s*<td[^>]*><strong>private<\/strong><\/td>/);

    // Unsearched, on a later page: the page, and no q.
    const later = await moveUser('/admin/tiers?page=3', 'user050', 'gov', 303);
    expect(later.headers.location).toBe('/admin/tiers?page=3&updated=user050#user-user050');
    const shown = (await page('/admin/tiers?page=3&updated=user050').expect(200)).text;
    expect(statusesIn(elementById(shown, 'user-user050') ?? '')).toEqual(['success: user050 is now on gov.']);

    // Back on the natural tier (the override goes), from a search that names no page.
    const back = await moveUser('/admin/tiers?q=user050', 'user050', 'mu', 303);
    expect(back.headers.location).toBe('/admin/tiers?q=user050&updated=user050#user-user050');
    expect(await db.prisma.tierOverride.findUnique({ where: { username: 'user050' } })).toBeNull();
  });

  it.each([
    [
      'an unknown tier',
      { username: 'a-zed-50', tier: 'platinum' },
      400,
      // What to choose instead, as every other form naming a tier says it: a script sending the
      // override has no list of tiers to pick from.
      'Tier: unknown tier &#34;platinum&#34;. Known tiers: mu, gov, private.',
      ['tier-for-a-zed-50'],
    ],
    [
      'an unknown user',
      { username: 'nobody-here', tier: 'gov' },
      404,
      'No user or job owner is called &#34;nobody-here&#34;.',
      [],
    ],
    ['no username', { username: '', tier: 'gov' }, 400, 'Username: is required', []],
  ])(
    'refused for %s, shows the same search and page with the reason and changes nothing',
    async (_name, form, status, reason, invalid) => {
      const before = await overridesAndAudit();
      const refused = await moveUser('/admin/tiers?q=zed&page=2', form.username, form.tier, status);
      expect(refused.text).toMatch(new RegExp(`<div class="alert error" role="alert"[^>]*>${reason}`));
      expect(usersOf(refused.text)[0]).toBe('a-zed-49');
      expect(refused.text).toContain('Page 2 of 2');
      expect(refused.text).toContain('value="zed"');
      expect(tierFormActionsIn(refused.text)).toEqual(new Set(['/admin/tiers?q=zed&amp;page=2']));
      // The user's tier is marked, described by the reason and focused; a reason about no row on
      // the page (no such user) takes the focus itself.
      const state = refusedFormStateOf(refused.text);
      expect(state.invalid).toEqual(invalid);
      for (const id of invalid) expect(elementById(refused.text, state.describedBy[id] ?? '')).toContain(reason);
      expect(state.autofocus).toEqual(invalid.length > 0 ? invalid.slice(0, 1) : ['tiers-error']);
      expect(await overridesAndAudit()).toEqual(before);
    },
  );

  it('tells a JSON client moving a user to an unknown tier which tiers exist, and changes nothing', async () => {
    const before = await overridesAndAudit();
    const json = await agent
      .post('/admin/tiers')
      .set('Accept', 'application/json')
      .set('X-CSRFToken', await csrfTokenOf(agent))
      .send({ username: 'a-zed-50', tier: 'platinum' })
      .expect(400);
    expect(json.body.error).toBe('tier: unknown tier "platinum". Known tiers: mu, gov, private.');
    expect(await overridesAndAudit()).toEqual(before);
  });

  it.each([
    ['page 0', '/admin/tiers?page=0', /page: must be at least 1/i],
    ['a page that is not a number', '/admin/tiers?q=zed&page=abc', /page: must be a whole number/i],
  ])('posted from %s, is refused with a 400 and changes nothing', async (_name, action, message) => {
    const before = await overridesAndAudit();
    const refused = await moveUser(action, 'a-zed-50', 'gov', 400);
    expect(refused.text).toMatch(message);
    const json = await agent
      .post(action)
      .set('Accept', 'application/json')
      .set('X-CSRFToken', await csrfTokenOf(agent))
      .send({ username: 'a-zed-50', tier: 'gov' })
      .expect(400);
    expect(json.body.error).toMatch(message);
    expect(await overridesAndAudit()).toEqual(before);
  });
});
