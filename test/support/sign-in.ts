import type express from 'express';
import request from 'supertest';
import { expect } from 'vitest';
import type { Database } from '../../src/db/database.js';
import { buildUser } from './factories.js';

const CSRF_FIELD = /<input type="hidden" name="csrf_token" value="([^"]+)">/;

/** The CSRF token on a page, read the way load scripts and curl recipes read it. */
export function csrfTokenIn(html: string): string {
  const match = CSRF_FIELD.exec(html);
  if (!match?.[1]) throw new Error('no csrf_token field on the page');
  return match[1];
}

export type Agent = ReturnType<typeof request.agent>;

/** GET /login, then POST it; returns the agent (cookies kept) and the response. */
export async function postLogin(
  app: express.Express,
  username: string,
  password: string,
  options: { agent?: Agent; next?: string; ip?: string } = {},
) {
  const agent = options.agent ?? request.agent(app);
  const form = await agent.get('/login').set('Accept', 'text/html');
  const response = await agent
    .post('/login')
    .set('Accept', 'text/html')
    .set(options.ip ? { 'X-Forwarded-For': options.ip } : {})
    .type('form')
    .send({ username, password, csrf_token: csrfTokenIn(form.text), ...(options.next ? { next: options.next } : {}) });
  return { agent, response };
}

/** A signed-in agent; fails the test when sign-in does not redirect. */
export async function signInAs(app: express.Express, username: string, password: string): Promise<Agent> {
  const { agent, response } = await postLogin(app, username, password);
  expect(response.status, `sign-in of ${username}: ${response.text.slice(0, 300)}`).toBe(302);
  return agent;
}

/** A new admin `username` (password `<username>-password`), signed in. */
export async function signInNewAdmin(app: express.Express, db: Pick<Database, 'prisma'>, username: string) {
  const admin = await buildUser(db.prisma, { username, role: 'admin' });
  return signInAs(app, admin.username, admin.password);
}

/** A fresh CSRF token for a signed-in agent. */
export async function csrfTokenOf(agent: Agent, path = '/account'): Promise<string> {
  const page = await agent.get(path).set('Accept', 'text/html');
  return csrfTokenIn(page.text);
}

/**
 * Signs in over real HTTP as a browser does (for a server started in a test, not supertest);
 * the Cookie header of the session. The password is the factories' `<username>-password`.
 */
export async function signInOverHttp(base: string, username: string): Promise<string> {
  const jar = new Map<string, string>();
  const keep = (response: Response) => {
    for (const cookie of response.headers.getSetCookie()) {
      const pair = cookie.split(';')[0] as string;
      jar.set(pair.slice(0, pair.indexOf('=')), pair);
    }
  };
  const header = () => [...jar.values()].join('; ');
  const form = await fetch(`${base}/login`, { headers: { accept: 'text/html' } });
  keep(form);
  const token = /name="csrf_token" value="([^"]+)"/.exec(await form.text())?.[1] ?? '';
  const signedIn = await fetch(`${base}/login`, {
    method: 'POST',
    redirect: 'manual',
    headers: { accept: 'text/html', cookie: header(), 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ username, password: `${username}-password`, csrf_token: token }),
  });
  expect(signedIn.status).toBe(302);
  // express-session saves the session before the last byte of the body: read it all first.
  await signedIn.text();
  keep(signedIn);
  return header();
}
