import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildTiers } from '../support/billing-factories.js';
import { buildUser } from '../support/factories.js';
import { elementById, formActionsIn, refusedFormStateOf } from '../support/html.js';
import { type Agent, csrfTokenOf, signInAs } from '../support/sign-in.js';
import { buildTestApp } from '../support/test-app.js';
import { createTestDatabase, type TestDatabase } from '../support/test-database.js';

// A refused form comes back as the page at the form's POST address. The forms far down a page
// end their action in the id of the card that holds them and shows their reason, so the browser
// opens the page there rather than at the top with the reason off-screen.
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

/** A form of `page` as a browser sends it. */
async function sendForm(agent: Agent, page: string, action: string, fields: Record<string, string>) {
  return agent
    .post(action)
    .set('Accept', 'text/html')
    .type('form')
    .send({ ...fields, csrf_token: await csrfTokenOf(agent, page) });
}

/** The element with `id`; fails the test when the page has none. */
function cardOf(page: string, id: string): string {
  const card = elementById(page, id);
  if (card === undefined) throw new Error(`no element with id ${id}`);
  return card;
}

const alertsIn = (page: string) => [...page.matchAll(/<div class="alert error" role="alert"[^>]*>([^<]*)<\/div>/g)];

/** The card holds exactly one alert, saying `message`, above its form with `action`. */
function expectReasonAboveForm(card: string, message: string, action: string) {
  expect(alertsIn(card).map((match) => match[1])).toEqual([message]);
  expect(card).toContain(`<form method="post" action="${action}"`);
  expect(card.indexOf('role="alert"')).toBeLessThan(card.indexOf(`action="${action}"`));
}

describe('/admin/rates', () => {
  it('ends the action of each form far down the page in the id of the card holding it', async () => {
    const page = (await html(ops, '/admin/rates').expect(200)).text;
    const actions = formActionsIn(page);
    const anchored = actions.filter((action) => action.includes('#'));
    expect([...anchored].sort()).toEqual(
      [
        '/admin/rates#tier-mu',
        '/admin/rates#tier-gov',
        '/admin/rates#tier-private',
        '/admin/rates/tiers/edit#rename-mu',
        '/admin/rates/tiers/edit#rename-gov',
        '/admin/rates/tiers/edit#rename-private',
        '/admin/rates/tiers#new-tier',
      ].sort(),
    );
    for (const action of anchored) {
      const id = action.slice(action.indexOf('#') + 1);
      expect(cardOf(page, id), id).toContain(`<form method="post" action="${action}"`);
    }
    // Their refusals show at the top of the page, where the browser opens it without a fragment.
    // No tier here can be deleted (mu is the default, PRICING_TIER_RULES names gov and private), so
    // none has a Delete button: pricing-tier-changes.test.ts has the tiers that do.
    expect(new Set(actions.filter((action) => !action.includes('#')))).toEqual(
      new Set(['/logout', '/admin/rates/default']),
    );
  });

  it("shows a refused rates form's reason at the top of its tier's card, and nowhere else", async () => {
    const response = await sendForm(ops, '/admin/rates', '/admin/rates', {
      type: 'gov',
      cpu: '-3',
      gpu: '18',
      mem: '0.08',
    });
    expect(response.status).toBe(400);
    const card = cardOf(response.text, 'tier-gov');
    expectReasonAboveForm(
      card,
      'Rates of gov not changed. CPU core-hour: must be a plain decimal from 0 to 1000000 with at most 6 decimal places, such as 0.25',
      '/admin/rates#tier-gov',
    );
    expect(card).toMatch(/id="cpu-gov"[^>]* value="-3"/);
    expect(alertsIn(response.text)).toHaveLength(1);
  });

  it('shows the reason at the top of the page for a tier that has no card', async () => {
    const response = await sendForm(ops, '/admin/rates', '/admin/rates', {
      type: 'gold',
      cpu: '1',
      gpu: '1',
      mem: '1',
    });
    expect(response.status).toBe(400);
    expect(elementById(response.text, 'tier-gold')).toBeUndefined();
    const [alert] = alertsIn(response.text);
    expect(alert?.[1]).toMatch(/^Tier: unknown tier &#34;gold&#34;\./);
    expect(response.text.indexOf('role="alert"')).toBeLessThan(response.text.indexOf('id="tier-'));
    // A reason about no field on the page takes the focus, as on the other refused forms.
    expect(response.text).toMatch(/<div class="alert error" role="alert" tabindex="-1" autofocus>Tier: unknown/);
  });

  it('gives the focus to a refused default-tier change, whose reason is at the top of the page', async () => {
    const response = await sendForm(ops, '/admin/rates', '/admin/rates/default', { type: 'gold' });
    expect(response.status).toBe(400);
    expect(alertsIn(response.text)).toHaveLength(1);
    expect(response.text).toMatch(
      /<div class="alert error" role="alert" tabindex="-1" autofocus>Default tier not changed\./,
    );
    expect(response.text.match(/ autofocus/g)).toHaveLength(1);
  });

  it("shows a refused new tier's reason in the add-a-tier card", async () => {
    const response = await sendForm(ops, '/admin/rates', '/admin/rates/tiers', {
      name: 'gov',
      cpu: '9',
      gpu: '9',
      mem: '9',
    });
    expect(response.status).toBe(409);
    expectReasonAboveForm(
      cardOf(response.text, 'new-tier'),
      'A tier named &#34;gov&#34; already exists, so nothing was added. To change its rates, use its own form.',
      '/admin/rates/tiers#new-tier',
    );
    expect(alertsIn(response.text)).toHaveLength(1);
  });

  it("shows a refused rename's reason in the tier's rename form, opened", async () => {
    const response = await sendForm(ops, '/admin/rates', '/admin/rates/tiers/edit', {
      type: 'gov',
      name: 'private',
      description: '',
    });
    expect(response.status).toBe(409);
    const details = cardOf(response.text, 'rename-gov');
    expect(details).toMatch(/^<details id="rename-gov" open>/);
    expectReasonAboveForm(
      details,
      'A tier named &#34;private&#34; already exists, so gov was not renamed. Choose another name.',
      '/admin/rates/tiers/edit#rename-gov',
    );
    expect(alertsIn(response.text)).toHaveLength(1);
  });

  it('sends a form that succeeded to the card of the tier, not to the fragment the form was sent with', async () => {
    const rates = await sendForm(ops, '/admin/rates', '/admin/rates', {
      type: 'gov',
      cpu: '0.9',
      gpu: '18',
      mem: '0.08',
    });
    expect(rates.status).toBe(303);
    expect(rates.headers.location).toBe('/admin/rates#tier-gov');
    const added = await sendForm(ops, '/admin/rates', '/admin/rates/tiers', {
      name: 'lab',
      cpu: '1',
      gpu: '1',
      mem: '1',
    });
    expect(added.headers.location).toBe('/admin/rates#tier-lab');
    const renamed = await sendForm(ops, '/admin/rates', '/admin/rates/tiers/edit', { type: 'lab', name: 'lab2' });
    expect(renamed.headers.location).toBe('/admin/rates#tier-lab2');
  });
});

describe('a refused tier form on /admin/rates, for a screen reader and the keyboard', () => {
  /** The tiers as they are stored, to show a refusal changed none of them. */
  const tiersNow = () =>
    db.prisma.pricingTier.findMany({
      select: { name: true, description: true, _count: { select: { rates: true } } },
      orderBy: { id: 'asc' },
    });

  /** The page marks exactly `fields` invalid, each described by the alert saying `message`, and focuses the first. */
  function expectFieldsTiedToReason(page: string, fields: string[], message: string) {
    const state = refusedFormStateOf(page);
    expect(state.invalid).toEqual(fields);
    const reasonId = state.describedBy[fields[0] as string];
    expect(reasonId).toBeTruthy();
    for (const field of fields) expect(state.describedBy[field]).toBe(reasonId);
    const reason = cardOf(page, reasonId as string);
    expect(reason).toMatch(/^<div class="alert error" role="alert"/);
    expect(reason).toContain(message);
    expect(state.autofocus).toEqual([fields[0]]);
  }

  it('a new tier with a bad rate or a taken name marks that field, tied to the reason, and focuses it', async () => {
    const before = await tiersNow();
    const badRate = await sendForm(ops, '/admin/rates', '/admin/rates/tiers', {
      name: 'lab9',
      description: 'a lab',
      cpu: '1',
      gpu: 'twelve',
      mem: '1',
    });
    expect(badRate.status).toBe(400);
    expectFieldsTiedToReason(badRate.text, ['new-tier-gpu'], 'Tier not added. GPU-hour:');
    expect(badRate.text).toMatch(/id="new-tier-gpu"[^>]* value="twelve"/);
    expect(badRate.text).toMatch(/id="new-tier-description"[^>]* value="a lab"/);
    // The page opens at #new-tier, where a browser skips autofocus: the script moves the focus.
    expect(badRate.text).toContain('<script src="/static/js/autofocus.js" defer></script>');

    const taken = await sendForm(ops, '/admin/rates', '/admin/rates/tiers', {
      name: 'gov',
      cpu: '9',
      gpu: '9',
      mem: '9',
    });
    expect(taken.status).toBe(409);
    expectFieldsTiedToReason(taken.text, ['new-tier-name'], 'A tier named &#34;gov&#34; already exists');
    expect(await tiersNow()).toEqual(before);
  });

  it("a refused rename marks the tier's name or description, tied to the reason, and focuses it", async () => {
    const before = await tiersNow();
    const taken = await sendForm(ops, '/admin/rates', '/admin/rates/tiers/edit', {
      type: 'gov',
      name: 'private',
      description: '',
    });
    expect(taken.status).toBe(409);
    expectFieldsTiedToReason(taken.text, ['edit-name-gov'], 'A tier named &#34;private&#34; already exists');
    expect(taken.text).toMatch(/id="edit-name-gov"[^>]* value="private"/);
    expect(taken.text).toContain('<script src="/static/js/autofocus.js" defer></script>');

    const badName = await sendForm(ops, '/admin/rates', '/admin/rates/tiers/edit', {
      type: 'gov',
      name: 'Gov Two',
      description: 'x',
    });
    expect(badName.status).toBe(400);
    expectFieldsTiedToReason(badName.text, ['edit-name-gov'], 'Tier gov not changed. Name:');
    expect(await tiersNow()).toEqual(before);
  });
});

describe('/me', () => {
  it("ends the receipt form's action in the id of its card, which shows a refusal's reason", async () => {
    const page = (await html(alice, '/me').expect(200)).text;
    expect(formActionsIn(page)).toContain('/me/receipt#create-receipt');
    expect(cardOf(page, 'create-receipt')).toContain('<form method="post" action="/me/receipt#create-receipt"');

    const response = await sendForm(alice, '/me', '/me/receipt', { before: '2025-09-15' });
    expect(response.status).toBe(422);
    expectReasonAboveForm(
      cardOf(response.text, 'create-receipt'),
      'No receipt created. Nothing to bill: no finished, unbilled jobs ended on or before 2025-09-15.',
      '/me/receipt#create-receipt',
    );
    expect(alertsIn(response.text)).toHaveLength(1);
  });
});
