import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildUser } from '../support/factories.js';
import { type Agent, csrfTokenOf, signInAs } from '../support/sign-in.js';
import { buildTestApp } from '../support/test-app.js';
import { createTestDatabase, type TestDatabase } from '../support/test-database.js';

/**
 * A body sent in a type no parser of the app reads (a script's `curl -F`, which is multipart, or
 * JSON labelled text/plain) was dropped unread, and the route then said a field it had been sent
 * was missing: `before: is required` for `curl -F before=2026-12-01`. It is refused with 415
 * naming the type it came in and the two the app reads.
 */
let db: TestDatabase;
let agent: Agent;
let token: string;
beforeAll(async () => {
  db = await createTestDatabase();
  const user = await buildUser(db.prisma, { username: 'fern' });
  agent = await signInAs(buildTestApp(db), 'fern', user.password);
  token = await csrfTokenOf(agent, '/me');
});
afterAll(() => db?.drop());

const READS =
  'The request body must be JSON (Content-Type: application/json) or a form (application/x-www-form-urlencoded)';

describe('a body of a type the app does not read', () => {
  it.each([
    ['text/plain', '{"before":"2026-12-01"}', `${READS}; it was sent as text/plain.`],
    ['text/plain; charset=utf-8', '{"before":"2026-12-01"}', `${READS}; it was sent as text/plain.`],
    [
      'multipart/form-data; boundary=x',
      '--x\r\nContent-Disposition: form-data; name="before"\r\n\r\n2026-12-01\r\n--x--\r\n',
      `${READS}; it was sent as multipart/form-data.`,
    ],
    ['application/xml', '<before>2026-12-01</before>', `${READS}; it was sent as application/xml.`],
  ])('%s is 415 naming it, not a field said to be missing', async (type, body, error) => {
    const answer = await agent
      .post('/me/receipt')
      .set('Accept', 'application/json')
      .set('X-CSRFToken', token)
      .set('Content-Type', type)
      .send(body)
      .expect(415);
    expect(answer.body).toEqual({ error, code: 415 });
    expect(await db.prisma.receipt.count()).toBe(0);
  });

  it('a body without a Content-Type is 415 saying it had none', async () => {
    const answer = await agent
      .post('/me/receipt')
      .set('Accept', 'application/json')
      .set('X-CSRFToken', token)
      .set('Content-Length', '23')
      .unset('Content-Type')
      .send(Buffer.from('{"before":"2026-12-01"}'))
      .expect(415);
    expect(answer.body).toEqual({ error: `${READS}; it was sent without a Content-Type.`, code: 415 });
  });

  it.each([
    ['nothing at all', undefined, undefined],
    ['an empty text/plain body', 'text/plain', ''],
  ])('%s still reads as no fields: the route names what it needs', async (_label, type, body) => {
    let call = agent.post('/me/receipt').set('Accept', 'application/json').set('X-CSRFToken', token);
    if (type) call = call.set('Content-Type', type);
    const answer = await (body === undefined ? call : call.send(body)).expect(400);
    expect(answer.body).toEqual({ error: 'before: is required', code: 400 });
  });

  it('a browser is shown the same on a page, and a webhook keeps its own 415', async () => {
    const page = await agent
      .post('/me/receipt')
      .set('Accept', 'text/html')
      .set('X-CSRFToken', token)
      .set('Content-Type', 'text/plain')
      .send('before=2026-12-01')
      .expect(415);
    expect(page.text).toContain('it was sent as text/plain.');
    const hook = await request(buildTestApp(db))
      .post('/payments/webhook/dummy')
      .set('Content-Type', 'text/plain')
      .send('hello');
    expect(hook.status).toBe(415);
    expect(hook.body.error).not.toContain(READS);
  });
});
