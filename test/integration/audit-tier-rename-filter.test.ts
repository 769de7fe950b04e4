import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildTiers } from '../support/billing-factories.js';
import { buildUser } from '../support/factories.js';
import { visibleTextOf } from '../support/html.js';
import { type Agent, csrfTokenOf, signInAs } from '../support/sign-in.js';
import { buildTestApp } from '../support/test-app.js';
import { createTestDatabase, type TestDatabase } from '../support/test-database.js';

/**
 * A renamed tier's earlier entries stay under `tier:<old name>` (the log is a hash chain, never
 * rewritten): `?target=tier:<new name>` found neither its creation nor the rename itself. The
 * filter now follows the tier's renames back, each earlier name only while it was this tier's,
 * so a tier given the old name later does not join its history.
 */
let db: TestDatabase;
let ops: Agent;

beforeAll(async () => {
  db = await createTestDatabase();
  await buildTiers(db);
  await buildUser(db.prisma, { username: 'ops', role: 'admin', password: 'ops-password-123' });
  ops = await signInAs(buildTestApp(db, { env: { PRICING_CACHE_CHECK_MS: '0' } }), 'ops', 'ops-password-123');
});
afterAll(() => db?.drop());

async function send(path: string, body: Record<string, unknown>) {
  const token = await csrfTokenOf(ops);
  const response = await ops.post(path).set('Accept', 'application/json').set('X-CSRFToken', token).send(body);
  // Adding a tier creates it: 201, as a new receipt or user.
  expect(response.status, response.text.slice(0, 300)).toBe(path === '/admin/rates/tiers' ? 201 : 200);
}

async function entriesOf(target: string) {
  const answer = await ops
    .get(`/admin/audit?target=${encodeURIComponent(target)}`)
    .set('Accept', 'application/json')
    .expect(200);
  return (answer.body.entries as { action: string; target: string }[]).map(
    (entry) => `${entry.action} ${entry.target}`,
  );
}

describe('the audit log filtered by a renamed tier', () => {
  it("finds the tier's entries under its earlier names, and not those of a later tier of the same name", async () => {
    await send('/admin/rates/tiers', { name: 'lab', description: 'Lab', cpu: '0.3', gpu: '7', mem: '0.01' });
    await send('/admin/rates', { type: 'lab', cpu: '0.4', gpu: '7', mem: '0.01' });
    await send('/admin/rates/tiers/edit', { type: 'lab', name: 'lab2', description: 'Lab' });
    await send('/admin/rates/tiers/edit', { type: 'lab2', name: 'lab3', description: 'Lab three' });
    await send('/admin/rates', { type: 'lab3', cpu: '0.5', gpu: '7', mem: '0.01' });
    // Another tier takes the first name afterwards: its entries are not lab3's.
    await send('/admin/rates/tiers', { name: 'lab', description: 'Another lab', cpu: '1', gpu: '9', mem: '0.02' });

    // Newest first: lab3's own entry, then its rename from lab2 (under lab2), its rename from lab
    // (under lab), its rates and its creation (under lab), and not the later tier named lab.
    expect(await entriesOf('tier:lab3')).toEqual([
      'pricing.rates.set tier:lab3',
      'pricing.tier.update tier:lab2',
      'pricing.tier.update tier:lab',
      'pricing.rates.set tier:lab',
      'pricing.tier.create tier:lab',
    ]);
    // The page says which entries under other names it adds, and so does the JSON.
    const ids = (
      await db.prisma.auditLog.findMany({ where: { action: { startsWith: 'pricing.tier.' } }, orderBy: { id: 'asc' } })
    ).map((entry) => String(entry.id));
    const [created, firstRename, secondRename] = ids;
    const page = await ops.get('/admin/audit?target=tier%3Alab3').set('Accept', 'text/html').expect(200);
    expect(visibleTextOf(page.text)).toContain(
      `With this tier's entries under its earlier names: tier:lab2 (#${firstRename} to #${secondRename}), tier:lab (#${created} to #${firstRename}).`,
    );
    const json = await ops.get('/admin/audit?target=tier%3Alab3').set('Accept', 'application/json').expect(200);
    expect(json.body.earlierTargets).toEqual([
      { target: 'tier:lab2', fromId: firstRename, upToId: secondRename },
      { target: 'tier:lab', fromId: created, upToId: firstRename },
    ]);
    // The CSV exports the same entries.
    const csv = await ops.get('/admin/audit.csv?target=tier%3Alab3').expect(200);
    expect(csv.text.trimEnd().split('\n').slice(1)).toHaveLength(5);
    // A name as the log writes it still finds every entry written under it.
    expect(await entriesOf('tier:lab')).toEqual([
      'pricing.tier.create tier:lab',
      'pricing.tier.update tier:lab',
      'pricing.rates.set tier:lab',
      'pricing.tier.create tier:lab',
    ]);
  });
});
