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
