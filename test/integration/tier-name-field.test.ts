import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildTiers } from '../support/billing-factories.js';
import { buildUser } from '../support/factories.js';
import { type Agent, csrfTokenOf, signInAs } from '../support/sign-in.js';
import { buildTestApp } from '../support/test-app.js';
import { createTestDatabase, type TestDatabase } from '../support/test-database.js';

/**
 * The Name fields of Add a tier and Rename or describe, as a browser judges them. A rates walk pasted a
 * 33-character name: maxlength="32" cut it silently to 32 and the tier was added under a name no one
 * typed (an identifier clients must then ask for exactly). A name pasted with a space around it was held
 * back by the pattern ("match the requested format"), though the server reads it trimmed, as every field.
 */
let db: TestDatabase;
let app: ReturnType<typeof buildTestApp>;
let ops: Agent;

beforeAll(async () => {
  db = await createTestDatabase();
  await buildTiers(db);
  await buildUser(db.prisma, { username: 'ops', role: 'admin', password: 'ops-password-123' });
  app = buildTestApp(db);
  ops = await signInAs(app, 'ops', 'ops-password-123');
});
afterAll(() => db?.drop());

async function nameFields() {
  const page = (await ops.get('/admin/rates').set('Accept', 'text/html').expect(200)).text;
  return [...page.matchAll(/<input id="(new-tier-name|edit-name-[^"]+)"[^>]*>/g)].map((match) => match[0]);
}

/** Whether a browser lets the field's value through: HTML compiles pattern as ^(?:…)$ with the v flag. */
function isAcceptedByPattern(field: string, value: string): boolean {
  const pattern = /pattern="([^"]*)"/.exec(field)?.[1];
  if (pattern === undefined) return true;
  return new RegExp(`^(?:${pattern.replaceAll('&amp;', '&')})$`, 'v').test(value);
}

describe('a tier name field in the browser', () => {
  it('does not cut a long name silently, and refuses one over 32 characters', async () => {
    const fields = await nameFields();
    expect(fields.length).toBeGreaterThan(1);
    for (const field of fields) {
      expect(field).not.toMatch(/maxlength=/);
      expect(isAcceptedByPattern(field, 'a'.repeat(32)), field).toBe(true);
      expect(isAcceptedByPattern(field, 'a'.repeat(33)), field).toBe(false);
    }
  });

  it('lets a name with spaces around it through, as the server trims it', async () => {
    for (const field of await nameFields()) {
      expect(isAcceptedByPattern(field, ' lab '), field).toBe(true);
      expect(isAcceptedByPattern(field, 'lab one'), field).toBe(false);
      expect(isAcceptedByPattern(field, 'Lab'), field).toBe(false);
      expect(isAcceptedByPattern(field, '-lab'), field).toBe(false);
    }
  });
});

describe('a tier description field in the browser', () => {
  it('does not cut a long description silently: the server refuses it and keeps the text', async () => {
    const page = (await ops.get('/admin/rates').set('Accept', 'text/html').expect(200)).text;
    const fields = [...page.matchAll(/<input id="(new-tier-description|edit-description-[^"]+)"[^>]*>/g)].map(
      (match) => match[0],
    );
    expect(fields.length).toBeGreaterThan(1);
    for (const field of fields) expect(field).not.toMatch(/maxlength=/);
    const long = 'd'.repeat(201);
    const refused = await ops
      .post('/admin/rates/tiers')
      .set('Accept', 'text/html')
      .type('form')
      .send({ name: 'lab', description: long, cpu: '1', gpu: '1', mem: '1', csrf_token: await csrfTokenOf(ops) });
    expect(refused.status).toBe(400);
    expect(refused.text).toContain('Description: must be at most 200 characters');
    expect(refused.text).toMatch(new RegExp(`id="new-tier-description"[^>]* value="${long}"`));
    expect(await db.prisma.pricingTier.count({ where: { name: 'lab' } })).toBe(0);
  });
});
