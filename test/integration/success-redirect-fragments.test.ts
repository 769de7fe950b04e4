import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildJobs, buildTiers } from '../support/billing-factories.js';
import { buildUser } from '../support/factories.js';
import { elementById, formActionsIn } from '../support/html.js';
import { type Agent, csrfTokenOf, signInAs } from '../support/sign-in.js';
import { buildTestApp } from '../support/test-app.js';
import { createTestDatabase, type TestDatabase } from '../support/test-database.js';

// A form whose action ends in a fragment (#create-receipt) is scrolled back to on a refusal. After
// a success, a 303 whose Location has no fragment keeps the request's (RFC 7231 7.1.2): the
// receipt's address read /me/receipts/67#create-receipt, an id the receipt page does not have. So
// each success redirect names its own fragment, one its page has.
let db: TestDatabase;
let ops: Agent;
let alice: Agent;

beforeAll(async () => {
  db = await createTestDatabase();
  await buildTiers(db);
  await buildUser(db.prisma, { username: 'ops', role: 'admin', password: 'ops-password-123' });
  await buildUser(db.prisma, { username: 'alice', password: 'alice-password' });
  const app = buildTestApp(db, { env: { PRICING_CACHE_CHECK_MS: '0' } });
  ops = await signInAs(app, 'ops', 'ops-password-123');
  alice = await signInAs(app, 'alice', 'alice-password');
});
afterAll(() => db?.drop());

const html = (agent: Agent, path: string) => agent.get(path).set('Accept', 'text/html');

/** A form of `page` sent by a browser to `action`, its fragment left out as browsers leave it out. */
async function sendForm(agent: Agent, page: string, action: string, fields: Record<string, string>) {
  return agent
    .post(action.split('#')[0] as string)
    .set('Accept', 'text/html')
    .type('form')
    .send({ ...fields, csrf_token: await csrfTokenOf(agent, page) });
}

/** The actions on a page that end in a fragment, without it: the forms a success must give their own. */
async function anchoredActionsOn(agent: Agent, page: string): Promise<Set<string>> {
  const actions = formActionsIn((await html(agent, page).expect(200)).text);
  return new Set(actions.filter((action) => action.includes('#')).map((action) => action.split('#')[0] as string));
}

/** A 303 whose Location ends in its own fragment, and the element with that id on the page it names. */
async function expectOwnFragment(agent: Agent, response: { status: number; headers: Record<string, string> }) {
  expect(response.status).toBe(303);
  const location = response.headers.location as string;
  const [path, fragment] = location.split('#');
  expect(fragment, `${location} has no fragment`).toBeTruthy();
  const page = (await html(agent, path as string).expect(200)).text;
  const element = elementById(page, decodeURIComponent(fragment as string));
  expect(element, `${path} has no element with id ${fragment}`).toBeDefined();
  return { location, element: element as string };
}

describe('a success redirect after a form whose action ends in a fragment', () => {
  it('POST /me/receipt opens the receipt at its top, not at #create-receipt', async () => {
    expect(await anchoredActionsOn(alice, '/me')).toEqual(new Set(['/me/receipt']));
    await buildJobs(db, [{ user: 'alice', end: '2025-09-10T03:00:00Z' }]);
    const created = await sendForm(alice, '/me', '/me/receipt#create-receipt', { before: '2025-09-15' });
    const { location, element } = await expectOwnFragment(alice, created);
    const { id } = await db.prisma.receipt.findFirstOrThrow({ where: { username: 'alice' } });
    expect(location).toBe(`/me/receipts/${id}#receipt`);
    // The element holds the whole receipt, from its heading down.
    expect(element).toMatch(
      new RegExp(`^<article [^>]*id="receipt"[^>]*>\\s*<header[^>]*>\\s*<div>\\s*<h1>Receipt #${id}</h1>`),
    );
  });

  it('each anchored form of /admin/rates goes back to the card of the tier it changed', async () => {
    expect(await anchoredActionsOn(ops, '/admin/rates')).toEqual(
      new Set(['/admin/rates', '/admin/rates/tiers', '/admin/rates/tiers/edit']),
    );
    const rates = await sendForm(ops, '/admin/rates', '/admin/rates#tier-gov', {
      type: 'gov',
      cpu: '0.9',
      gpu: '18',
      mem: '0.08',
    });
    expect((await expectOwnFragment(ops, rates)).location).toBe('/admin/rates#tier-gov');

    const added = await sendForm(ops, '/admin/rates', '/admin/rates/tiers#new-tier', {
      name: 'lab',
      description: 'Lab',
      cpu: '0.3',
      gpu: '7',
      mem: '0.01',
    });
    expect((await expectOwnFragment(ops, added)).location).toBe('/admin/rates#tier-lab');

    const renamed = await sendForm(ops, '/admin/rates', '/admin/rates/tiers/edit#rename-lab', {
      type: 'lab',
      name: 'lab2',
      description: 'Lab two',
    });
    expect((await expectOwnFragment(ops, renamed)).location).toBe('/admin/rates#tier-lab2');
  });
});

// The browser opens the page at the element the fragment names, below the top of the page: a
// confirmation shown only at the top is off screen there (test/browser has the same in Chromium).
describe('the confirmation of a change on /admin/rates and /admin/tiers', () => {
  const STATUS = /<div class="alert (\w+)" role="status">([^<]*)<\/div>/g;

  /** Follows the 303 once (the flash shows once) and reads every confirmation on that page. */
  async function landOn(agent: Agent, response: { status: number; headers: Record<string, string> }) {
    expect(response.status).toBe(303);
    const [path, fragment] = (response.headers.location as string).split('#');
    const page = (await html(agent, path as string).expect(200)).text;
    const shown = (text: string) => [...text.matchAll(STATUS)].map((match) => `${match[1]}: ${match[2]}`);
    return {
      everywhere: shown(page),
      inTarget: shown(elementById(page, decodeURIComponent(fragment ?? '')) ?? ''),
      atTop: shown(page.slice(0, page.indexOf('<h1>'))),
    };
  }

  /** The page shows the confirmation once, inside the element the redirect opens at. */
  async function expectShownWhereLanded(agent: Agent, response: Parameters<typeof landOn>[1], expected: RegExp) {
    const { everywhere, inTarget, atTop } = await landOn(agent, response);
    expect(everywhere).toHaveLength(1);
    expect(inTarget).toEqual([expect.stringMatching(expected)]);
    expect(atTop).toEqual([]);
  }

  it('shows new, unchanged, added, renamed and default tiers in the tier card', async () => {
    const setRates = (cpu: string) =>
      sendForm(ops, '/admin/rates', '/admin/rates#tier-private', { type: 'private', cpu, gpu: '35', mem: '0.15' });
    await expectShownWhereLanded(
      ops,
      await setRates('1.7'),
      /^success: Rates of private saved; they apply from now\.$/,
    );
    await expectShownWhereLanded(
      ops,
      await setRates('1.7'),
      /^warning: Rates of private are already these; nothing was saved\.$/,
    );

    const added = await sendForm(ops, '/admin/rates', '/admin/rates/tiers#new-tier', {
      name: 'lab3',
      description: '',
      cpu: '0.3',
      gpu: '7',
      mem: '0.01',
    });
    await expectShownWhereLanded(ops, added, /^success: Tier lab3 added; its rates apply from now\./);

    const renamed = await sendForm(ops, '/admin/rates', '/admin/rates/tiers/edit#rename-lab3', {
      type: 'lab3',
      name: 'lab4',
      description: 'Lab four',
    });
    await expectShownWhereLanded(ops, renamed, /^success: Tier lab3 renamed to lab4 and its description saved\./);

    const madeDefault = await sendForm(ops, '/admin/rates', '/admin/rates/default', { type: 'lab4' });
    await expectShownWhereLanded(ops, madeDefault, /^success: lab4 is now the default tier instead of mu: /);
    await sendForm(ops, '/admin/rates', '/admin/rates/default', { type: 'mu' }).then((back) =>
      expect(back.status).toBe(303),
    );
  });

  it("shows a user's new tier in the user's row of /admin/tiers", async () => {
    await buildUser(db.prisma, { username: 'zoe' });
    const send = () => sendForm(ops, '/admin/tiers', '/admin/tiers', { username: 'zoe', tier: 'private' });
    await expectShownWhereLanded(ops, await send(), /^success: zoe is now on private\.$/);
    await expectShownWhereLanded(ops, await send(), /^warning: zoe is already on private; nothing was changed\.$/);
  });

  it('shows it at the top when the element is gone by the time the page loads', async () => {
    const added = await sendForm(ops, '/admin/rates', '/admin/rates/tiers#new-tier', {
      name: 'brief',
      description: '',
      cpu: '0.3',
      gpu: '7',
      mem: '0.01',
    });
    // Another admin deletes the tier between the redirect and the page it leads to.
    await db.prisma.pricingRate.deleteMany({ where: { tier: { name: 'brief' } } });
    await db.prisma.pricingTier.delete({ where: { name: 'brief' } });
    const { everywhere, atTop } = await landOn(ops, added);
    expect(everywhere).toEqual([expect.stringMatching(/^success: Tier brief added/)]);
    expect(atTop).toEqual(everywhere);
  });
});
